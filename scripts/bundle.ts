/**
 * The one way berth is bundled with esbuild: ESM for Node 20, npm packages external,
 * linked source maps, and code splitting so that `await import(...)` stays lazy (the
 * agent, the controllers and @kubernetes/client-node load only when they run). Chunks
 * sit flat beside their entry, one directory below the repository root, so code that
 * finds files relative to itself (`new URL('../package.json', import.meta.url)`) finds
 * them from a bundle as it does from the sources. Used by `scripts/build.ts` and the
 * benchmarks.
 */
import { buildSync } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bundles `entries` (output name → source path) into `outdir` (a directory directly
 * under the repository root, emptied first); entry `x` becomes `outdir/x.mjs`.
 */
export function bundleSync(entries: Readonly<Record<string, string>>, outdir: string): void {
  if (dirname(outdir) !== REPO_ROOT) throw new Error(`bundle: ${outdir} must be a directory directly under ${REPO_ROOT}`);
  rmSync(outdir, { recursive: true, force: true });
  buildSync({
    entryPoints: { ...entries },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: '[name]-[hash]',
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
}

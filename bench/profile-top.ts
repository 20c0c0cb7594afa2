/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by `npm run bench -- --profile`):
 * the functions and the files with the most self time. Given a directory, it reads the
 * profiles of one thread in it: the main thread (0) unless `--thread=N` says otherwise
 * (1 is the SQLite writer thread).
 *
 * The server runs as an esbuild bundle (`server-process.ts`); a frame in a bundle is
 * attributed to the source file whose `// path/to/file.ts` section holds its line.
 *
 * Run: node --import tsx bench/profile-top.ts FILE_OR_DIR… [--top=N] [--thread=N]
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time in ms per function and per file, over one or more profiles. */
export function selfTimes(profiles: readonly Profile[]): { byFunction: Map<string, number>; byFile: Map<string, number>; totalMs: number } {
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let totalMs = 0;
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const f = nodes.get(id)!.callFrame;
      const url = f.url.replace(/^file:\/\//, '');
      const source = bundleSource(url, f.lineNumber);
      const file = (source ?? url).replace(`${root}/`, '').replace(/^.*node_modules\//, 'node_modules/') || '(native)';
      const fn = `${f.functionName || '(anonymous)'} ${file}${f.url && !source ? `:${f.lineNumber + 1}` : ''}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
      const pkg = file.startsWith('node_modules/') ? file.split('/').slice(0, file.startsWith('node_modules/@') ? 3 : 2).join('/') : file;
      byFile.set(pkg, (byFile.get(pkg) ?? 0) + ms);
      totalMs += ms;
    });
  }
  return { byFunction, byFile, totalMs };
}

/** Per bundle: the first line (0-based) of each source file's section, ascending. */
const bundleSections = new Map<string, { line: number; file: string }[] | undefined>();

/** The source file of line `line` (0-based) of an esbuild bundle, or undefined when `url` is no bundle. */
function bundleSource(url: string, line: number): string | undefined {
  if (!url.endsWith('.mjs')) return undefined;
  if (!bundleSections.has(url)) {
    let sections: { line: number; file: string }[] | undefined;
    try {
      sections = [];
      fs.readFileSync(url, 'utf8')
        .split('\n')
        .forEach((text, i) => {
          const m = /^\/\/ ([\w@./-]+\.[cm]?[jt]s)$/.exec(text);
          if (m) sections!.push({ line: i, file: m[1]!.replace(/^(\.\.\/)+/, '') });
        });
    } catch {
      sections = undefined;
    }
    bundleSections.set(url, sections?.length ? sections : undefined);
  }
  const sections = bundleSections.get(url);
  if (!sections) return undefined;
  let file: string | undefined;
  for (const s of sections) {
    if (s.line > line) break;
    file = s.file;
  }
  return file;
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const thread = Number(args.find((a) => a.startsWith('--thread='))?.slice(9) ?? 0);
const files = args
  .filter((a) => !a.startsWith('--'))
  // In a directory, the profiles of one thread (`CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile`).
  .flatMap((a) =>
    fs.statSync(a).isDirectory()
      ? fs.readdirSync(a).filter((f) => new RegExp(`\\.\\d+\\.${thread}\\.\\d+\\.cpuprofile$`).test(f)).map((f) => path.join(a, f))
      : [a],
  );
if (!files.length) {
  process.stderr.write('usage: profile-top.ts FILE_OR_DIR… [--top=N]\n');
  process.exit(2);
}
const { byFunction, byFile, totalMs } = selfTimes(files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Profile));
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${(totalMs / 1000).toFixed(1)} s sampled)`);
  for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((ms / totalMs) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  }
};
print('Self time by function', byFunction);
print('Self time by file or package', byFile);

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { dockerignoreMatcher, matchComponent, matchSources, prepareContext } from './context.ts';

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-h5-ctx-'));
  onTestFinished(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('.dockerignore matching', () => {
  it.each([
    { name: 'a plain name matches at the root only', patterns: ['abc'], path: 'x/abc', want: false },
    { name: 'a plain name at the root', patterns: ['abc'], path: 'abc', want: true },
    { name: '* does not cross directories', patterns: ['*.log'], path: 'a/b.log', want: false },
    { name: '** crosses directories', patterns: ['**/*.log'], path: 'a/b/c.log', want: true },
    { name: 'an exception re-includes', patterns: ['*.md', '!README.md'], path: 'README.md', want: false },
    { name: 'the last matching pattern wins', patterns: ['!a.txt', '*.txt'], path: 'a.txt', want: true },
    { name: 'a directory pattern covers its contents', patterns: ['node_modules'], path: 'node_modules/x/y.js', want: true },
    { name: 'a file inside an excluded directory can be re-included', patterns: ['dir', '!dir/keep'], path: 'dir/keep', want: false },
    { name: 'leading ./ and / are cleaned', patterns: ['./build', '/dist'], path: 'dist', want: true },
  ])('$name', ({ patterns, path, want }) => {
    expect(dockerignoreMatcher(patterns)(path)).toBe(want);
  });
});

describe('source matching', () => {
  it.each([
    { pattern: '*.txt', name: 'a.txt', want: true },
    { pattern: '*.txt', name: 'a.md', want: false },
    { pattern: 'file?', name: 'file1', want: true },
    { pattern: '[ab]*', name: 'b1', want: true },
    { pattern: '[^ab]*', name: 'b1', want: false },
  ])('matchComponent($pattern, $name) is $want', ({ pattern, name, want }) => {
    expect(matchComponent(pattern, name)).toBe(want);
  });

  it('expands wildcards per component, hides ignored files and stays inside the root', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'src/sub'), { recursive: true });
    for (const f of ['src/a.ts', 'src/b.ts', 'src/c.log', 'src/sub/d.ts']) writeFileSync(join(d, f), f);
    symlinkSync('/etc', join(d, 'escape'));
    const ignored = dockerignoreMatcher(['src/b.ts']);
    expect((await matchSources(d, 'src/*.ts', ignored)).map((m) => m.rel)).toEqual(['src/a.ts']);
    expect((await matchSources(d, 'src/*/*.ts')).map((m) => m.rel)).toEqual(['src/sub/d.ts']);
    expect(await matchSources(d, 'nothing*')).toEqual([]);
    await expect(matchSources(d, 'missing.txt')).rejects.toThrow('not found');
    await expect(matchSources(d, 'src/b.ts', ignored)).rejects.toThrow('not found');
    // A symlink to /etc resolves inside the context, where there is no passwd.
    await expect(matchSources(d, 'escape/passwd')).rejects.toThrow('not found');
    expect((await matchSources(d, '../../src/a.ts')).map((m) => m.host)).toEqual([join(d, 'src/a.ts')]);
  });
});

describe('prepareContext', () => {
  it('exports a local git repository at a ref, and a sub-path', async () => {
    const d = tempDir();
    const repo = join(d, 'repo');
    mkdirSync(join(repo, 'app'), { recursive: true });
    const git = (...args: string[]): string => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { encoding: 'utf8' });
    git('init', '-q');
    writeFileSync(join(repo, 'app', 'Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(repo, 'v.txt'), 'one');
    git('add', '.');
    git('commit', '-qm', 'one');
    git('tag', 'v1');
    writeFileSync(join(repo, 'v.txt'), 'two');
    git('commit', '-qam', 'two');
    const tmp = join(d, 'tmp');
    mkdirSync(tmp);
    const at = await prepareContext({ kind: 'git', repository: repo, ref: 'v1' }, { tmpDir: tmp });
    expect(readFileSync(join(at.root, 'v.txt'), 'utf8')).toBe('one');
    await at.dispose();
    const sub = await prepareContext({ kind: 'git', repository: repo, ref: 'HEAD', subPath: 'app' }, { tmpDir: tmp });
    expect(readFileSync(join(sub.root, 'Dockerfile'), 'utf8')).toBe('FROM scratch\n');
    await sub.dispose();
    await expect(prepareContext({ kind: 'git', repository: repo, ref: 'nope' }, { tmpDir: tmp })).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('extracts a gzip tar archive and reads its .dockerignore', async () => {
    const d = tempDir();
    const src = join(d, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(src, '.dockerignore'), 'secret\n');
    writeFileSync(join(src, 'secret'), 's');
    execFileSync('tar', ['-czf', join(d, 'ctx.tar.gz'), '-C', src, '.']);
    const tmp = join(d, 'tmp');
    mkdirSync(tmp);
    const ctx = await prepareContext({ kind: 'tar', path: join(d, 'ctx.tar.gz') }, { tmpDir: tmp });
    expect(readFileSync(join(ctx.root, 'Dockerfile'), 'utf8')).toBe('FROM scratch\n');
    expect(ctx.isIgnored('secret')).toBe(true);
    expect(ctx.isIgnored('Dockerfile')).toBe(false);
    await ctx.dispose();
  });
});

import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveSubPath, SubPathError, subPathProblem } from './sub-path.ts';

describe('subPathProblem', () => {
  it.each([
    { name: 'a plain relative path', subPath: 'a/b', want: undefined },
    { name: 'the root as empty', subPath: '', want: undefined },
    { name: 'a name with dots', subPath: 'a/..b/c..', want: undefined },
    { name: 'an absolute path', subPath: '/etc', want: 'must be relative' },
    { name: 'a .. component', subPath: 'a/../../etc', want: 'must not contain ".."' },
  ])('judges $name', ({ subPath, want }) => {
    const got = subPathProblem(subPath);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(want);
  });
});

describe('resolveSubPath', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'berth-subpath-')));
    root = join(dir, '_data');
    await mkdir(join(root, 'inside'), { recursive: true });
    await mkdir(join(dir, 'outside'));
    await writeFile(join(root, 'file.txt'), 'x');
    await symlink(join(dir, 'outside'), join(root, 'escape'));
    await symlink('inside', join(root, 'alias'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it.each([
    { name: 'the root for no subPath', subPath: undefined, want: '' },
    { name: 'an existing directory', subPath: 'inside', want: 'inside' },
    { name: 'a file', subPath: 'file.txt', want: 'file.txt' },
    { name: 'a symlink that stays inside, resolved', subPath: 'alias', want: 'inside' },
    { name: 'a missing directory, created', subPath: 'new/deeper', want: 'new/deeper' },
  ])('resolves $name', async ({ subPath, want }) => {
    expect(await resolveSubPath(root, subPath)).toBe(want ? join(root, want) : root);
  });

  it.each([
    { name: 'a symlink out of the volume', subPath: 'escape', message: 'through a symlink' },
    { name: 'a path below a symlink out of the volume', subPath: 'escape/x', message: 'through a symlink' },
    { name: 'a .. component', subPath: 'inside/../..', message: '".."' },
    { name: 'an absolute path', subPath: '/etc', message: 'absolute' },
    { name: 'a path through a file', subPath: 'file.txt/x', message: 'through a file' },
  ])('rejects $name with SubPathError', async ({ subPath, message }) => {
    const err = await resolveSubPath(root, subPath).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubPathError);
    expect((err as Error).message).toContain(message);
  });

  it('creates nothing outside the volume when rejecting', async () => {
    await resolveSubPath(root, 'escape/made').catch(() => undefined);
    await expect(realpath(join(dir, 'outside', 'made'))).rejects.toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { anonymousVolumePaths, sortMounts } from './anonymous-volumes.ts';

describe('anonymousVolumePaths', () => {
  it.each([
    { name: 'no VOLUME', volumes: undefined, mounts: [], want: [] },
    { name: 'each VOLUME once, normalized', volumes: ['/data/', '/data', '/var//lib/x'], mounts: [], want: ['/data', '/var/lib/x'] },
    { name: 'not a VOLUME a mount covers', volumes: ['/data', '/logs'], mounts: [{ containerPath: '/data/' }], want: ['/logs'] },
    { name: 'not the root', volumes: ['/'], mounts: [], want: [] },
  ])('gives $name', ({ volumes, mounts, want }) => {
    expect(anonymousVolumePaths(volumes, mounts)).toEqual(want);
  });

  it('rejects a relative VOLUME as InvalidArgument', () => {
    expect(() => anonymousVolumePaths(['data'], [])).toThrow(/not an absolute path/);
  });
});

describe('sortMounts', () => {
  it('puts shallower mount paths first and keeps the order otherwise', () => {
    const m = (p: string, h = '') => ({ containerPath: p, hostPath: h });
    expect(sortMounts([m('/a/b/c'), m('/x', '1'), m('/a'), m('/y', '2'), m('/a/b')]).map((x) => x.containerPath)).toEqual(['/x', '/a', '/y', '/a/b', '/a/b/c']);
  });
});

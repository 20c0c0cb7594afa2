import { describe, expect, it } from 'vitest';
import { bindMountErrors, isAllowed } from './bind-mounts.ts';

const ctr = (...hostPaths: string[]) => ({ kind: 'Container', spec: { image: 'x', bindMounts: hostPaths.map((hostPath) => ({ hostPath, mountPath: '/m' })) } });

describe('bindMountErrors', () => {
  it.each([
    { name: 'no bind mounts', obj: { spec: { image: 'x' } }, allowed: [], want: [] },
    { name: 'a path below an allowed one', obj: ctr('/srv/www/site'), allowed: ['/srv/www'], want: [] },
    { name: 'the allowed path itself, with a trailing slash', obj: ctr('/srv/www/'), allowed: ['/srv/www'], want: [] },
    { name: 'any path when / is allowed', obj: ctr('/etc'), allowed: ['/'], want: [] },
    {
      name: 'any path when nothing is allowed',
      obj: ctr('/srv/www'),
      allowed: [],
      want: [{ reason: 'FieldValueForbidden', field: 'spec.bindMounts[0].hostPath', message: expect.stringContaining('"/srv/www" may not be bind-mounted: the server allows no host paths') }],
    },
    {
      name: 'a sibling sharing a prefix',
      obj: ctr('/srv/ok', '/srv/www2'),
      allowed: ['/srv/www', '/srv/ok'],
      want: [{ reason: 'FieldValueForbidden', field: 'spec.bindMounts[1].hostPath', message: expect.stringContaining('"/srv/www2" is not under a path the server allows') }],
    },
    {
      name: 'a path climbing out with ..',
      obj: ctr('/srv/www/../../etc'),
      allowed: ['/srv/www'],
      want: [{ reason: 'FieldValueInvalid', field: 'spec.bindMounts[0].hostPath', message: expect.stringContaining('without "." or ".."') }],
    },
    { name: 'a relative path', obj: ctr('srv'), allowed: ['/'], want: [expect.objectContaining({ reason: 'FieldValueInvalid' })] },
  ])('judges $name', ({ obj, allowed, want }) => {
    expect(bindMountErrors('Container', obj, undefined, allowed)).toEqual(want);
  });

  it('checks the container template of a Service', () => {
    const svc = { spec: { template: { spec: { image: 'x', bindMounts: [{ hostPath: '/etc', mountPath: '/e' }] } } } };
    expect(bindMountErrors('Service', svc, undefined, [])).toEqual([expect.objectContaining({ field: 'spec.template.spec.bindMounts[0].hostPath' })]);
  });

  it('does not check again a path the stored object already had, so it can still be updated', () => {
    expect(bindMountErrors('Container', ctr('/srv/a'), ctr('/srv/a'), [])).toEqual([]);
    expect(bindMountErrors('Container', ctr('/srv/a', '/srv/b'), ctr('/srv/a'), [])).toEqual([expect.objectContaining({ field: 'spec.bindMounts[1].hostPath' })]);
  });

  it('ignores other kinds', () => {
    expect(bindMountErrors('Image', ctr('/etc'), undefined, [])).toEqual([]);
  });
});

describe('isAllowed', () => {
  it.each([
    { path: '/a/b', allowed: ['/a/'], want: true },
    { path: '/ab', allowed: ['/a'], want: false },
    { path: '/a', allowed: ['/a/b'], want: false },
  ])('$path under $allowed: $want', ({ path, allowed, want }) => {
    expect(isAllowed(path, allowed)).toBe(want);
  });
});

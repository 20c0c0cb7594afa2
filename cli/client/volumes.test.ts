import { describe, expect, it } from 'vitest';
import type { Container, Volume } from '../../api/types/index.ts';
import { keyValues, volumeRow, volumeUsers } from './volumes.ts';

describe('volumes', () => {
  it('reads KEY=VALUE flags, values keeping their own = signs', () => {
    expect(keyValues('--opt', ['type=tmpfs', 'o=size=100m'])).toEqual({ type: 'tmpfs', o: 'size=100m' });
    expect(() => keyValues('--opt', ['=x'])).toThrow('--opt "=x": expected KEY=VALUE');
  });

  it('counts a volume as used when a Container mounts it or the agent says so', () => {
    const v = (name: string, usedBy?: string[]) => ({ metadata: { name }, ...(usedBy ? { status: { usedBy } } : {}) }) as Volume;
    const c = { metadata: { name: 'web' }, spec: { image: 'x', volumeMounts: [{ name: 'data', mountPath: '/d' }] } } as Container;
    expect(Object.fromEntries(volumeUsers([v('data'), v('cache', ['old']), v('spare')], [c]))).toEqual({ data: ['web'], cache: ['old'], spare: [] });
  });

  it('shows Docker\'s ls columns', () => {
    expect(volumeRow({ apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name: 'data' }, status: { mountpoint: '/var/lib/berth/volumes/data' } })).toMatchObject({ Driver: 'local', Name: 'data', Mountpoint: '/var/lib/berth/volumes/data', Scope: 'local' });
  });
});

import { describe, expect, it } from 'vitest';
import type { Container, Network } from '../../api/types/index.ts';
import { editAttachments, networkRow, networkUsers, toNetwork } from './networks.ts';

describe('network create', () => {
  it('makes a bridge Network that reaches the outside unless --internal, as Docker\'s', () => {
    expect(toNetwork('front', 'default', { subnet: '10.9.0.0/24', label: ['a=b'] })).toEqual({
      apiVersion: 'berth.dev/v1', kind: 'Network', metadata: { name: 'front', namespace: 'default', labels: { a: 'b' } }, spec: { driver: 'bridge', outbound: true, subnet: '10.9.0.0/24' },
    });
    expect(toNetwork('back', 'default', { internal: true }).spec).toEqual({ driver: 'bridge', outbound: false });
  });

  it.each([
    [{ driver: 'overlay' }, /only the bridge driver is supported/],
    [{ label: ['novalue'] }, /--label "novalue": expected KEY=VALUE/],
  ])('refuses %j', (flags, want) => {
    expect(() => toNetwork('n', 'default', flags)).toThrow(want);
  });

  it('shows Docker\'s ls columns with a 12-character ID', () => {
    const n: Network = { apiVersion: 'berth.dev/v1', kind: 'Network', metadata: { name: 'front', uid: '0123abcd-4567-89ef-0123-456789abcdef' }, spec: { outbound: true }, status: { phase: 'Ready', subnet: '10.9.0.0/24' } };
    expect(networkRow(n)).toMatchObject({ ID: '0123abcd4567', Name: 'front', Driver: 'bridge', Scope: 'local', Subnet: '10.9.0.0/24', Internal: 'false' });
  });
});

describe('network connect and disconnect', () => {
  it.each([
    ['connect appends with aliases', [{ name: 'a' }], 'b', { aliases: ['db'] }, [{ name: 'a' }, { name: 'b', aliases: ['db'] }]],
    ['disconnect removes', [{ name: 'a' }, { name: 'b' }], 'a', undefined, [{ name: 'b' }]],
  ])('%s', (_n, have, net, attach, want) => {
    expect(editAttachments(have, 'web', net, attach)).toEqual(want);
  });

  it('refuses a second connect and a disconnect from a network the container is not on', () => {
    expect(() => editAttachments([{ name: 'a' }], 'web', 'a', {})).toThrow('endpoint with name web already exists in network a');
    expect(() => editAttachments([], 'web', 'a', undefined)).toThrow('container web is not connected to network a');
  });

  it('finds the containers attached to a network', () => {
    const c = (name: string, nets: string[]) => ({ metadata: { name }, spec: { image: 'x', networks: nets.map((n) => ({ name: n })) } }) as Container;
    expect(networkUsers('a', [c('one', ['a']), c('two', ['b']), c('three', ['b', 'a'])])).toEqual(['one', 'three']);
  });
});

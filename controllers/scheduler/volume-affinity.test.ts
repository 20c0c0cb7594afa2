import { describe, expect, it } from 'vitest';
import type { Container, Lister, Node, Volume } from '../framework/index.ts';
import { chooseNode, NO_REQUEST, type NodeLoad } from './fit.ts';
import { volumePlacement } from './volume-affinity.ts';

const ready = [{ type: 'Ready', status: 'True' as const, lastTransitionTime: '2024-01-01T00:00:00Z', reason: 'Ready', message: '' }];
const load = (name: string, containers = 0): NodeLoad => ({ node: { apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name }, spec: {}, status: { conditions: ready } } as Node, reserved: NO_REQUEST, containers });

function lister(volumes: Volume[]): Lister<Volume> {
  return { get: (ns, name) => volumes.find((v) => v.metadata.namespace === ns && v.metadata.name === name), list: () => volumes } as Lister<Volume>;
}
const vol = (name: string, nodes: { spec?: string; status?: string }): Volume => ({
  apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name, namespace: 'default' },
  spec: { driver: 'local', ...(nodes.spec ? { nodeName: nodes.spec } : {}) },
  ...(nodes.status ? { status: { nodeName: nodes.status, phase: 'Available' as const } } : {}),
});
const ctr = (...volumes: string[]): Container => ({ apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'c', namespace: 'default' }, spec: { image: 'x', volumeMounts: volumes.map((name, i) => ({ name, mountPath: `/v${i}` })) } });

describe('volumePlacement', () => {
  const volumes = lister([vol('placed', { status: 'n2' }), vol('pinned', { spec: 'n2' }), vol('other', { status: 'n3' }), vol('unplaced', {})]);
  it.each([
    { name: 'no volumes', c: ctr(), want: { kind: 'any' } },
    { name: 'unplaced or undeclared volumes only', c: ctr('unplaced', 'missing'), want: { kind: 'any' } },
    { name: 'a placed volume', c: ctr('placed', 'unplaced'), want: { kind: 'node', nodeName: 'n2' } },
    { name: 'volumes placed and pinned on the same node', c: ctr('placed', 'pinned'), want: { kind: 'node', nodeName: 'n2' } },
    { name: 'volumes on different nodes', c: ctr('placed', 'other'), want: { kind: 'conflict', message: expect.stringContaining('"placed" on node n2; "other" on node n3') } },
  ])('is $want.kind for $name', ({ c, want }) => {
    expect(volumePlacement(c, volumes)).toEqual(want);
  });
});

describe('chooseNode with the node of the volumes', () => {
  it('picks the required node even when another is less loaded', () => {
    expect(chooseNode([load('n1'), load('n2', 5)], NO_REQUEST, 'n2')).toEqual({ fits: true, nodeName: 'n2' });
  });
  it('says the other nodes had a volume node affinity conflict when the required node cannot take it', () => {
    const down = { ...load('n2'), node: { ...load('n2').node, status: { conditions: [{ ...ready[0]!, status: 'False' as const }] } } };
    expect(chooseNode([load('n1'), down], NO_REQUEST, 'n2')).toEqual({ fits: false, message: '0/2 nodes are available: 1 not ready, 1 volume node affinity conflict.' });
  });
});

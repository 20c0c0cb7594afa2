import { describe, expect, it } from 'vitest';
import type { Container } from '../framework/index.ts';
import { NodeReservations } from './node-reservations.ts';

interface Fixture {
  readonly name: string;
  readonly nodeName?: string;
  readonly memory?: string;
  readonly cpus?: string;
  readonly pids?: number;
  readonly state?: 'Running' | 'Stopped';
  readonly deleting?: boolean;
}

function container(f: Fixture): Container {
  const resources = { ...(f.memory ? { memory: f.memory } : {}), ...(f.cpus ? { cpus: f.cpus } : {}), ...(f.pids ? { pids: f.pids } : {}) };
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name: f.name, namespace: 'default', ...(f.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { image: 'busybox', resources, ...(f.nodeName ? { nodeName: f.nodeName } : {}), ...(f.state ? { state: f.state } : {}) },
  };
}

describe('NodeReservations', () => {
  const cases: { name: string; steps: (['set', Fixture] | ['delete', Fixture])[]; node: string; want: { memoryBytes: number; cpus: number; pids: number; containers: number } }[] = [
    { name: 'sums the requests of the containers bound to a node', node: 'n1', steps: [['set', { name: 'a', nodeName: 'n1', memory: '1Gi', cpus: '0.5', pids: 10 }], ['set', { name: 'b', nodeName: 'n1', memory: '512Mi', cpus: '1' }], ['set', { name: 'c', nodeName: 'n2', memory: '1Gi' }]], want: { memoryBytes: 1.5 * 2 ** 30, cpus: 1.5, pids: 10, containers: 2 } },
    { name: 'counts nothing for a container without a node', node: 'n1', steps: [['set', { name: 'a', memory: '1Gi' }]], want: { memoryBytes: 0, cpus: 0, pids: 0, containers: 0 } },
    { name: 'counts a Stopped or terminating container as bound but not reserving', node: 'n1', steps: [['set', { name: 'a', nodeName: 'n1', memory: '1Gi', state: 'Stopped' }], ['set', { name: 'b', nodeName: 'n1', memory: '1Gi', deleting: true }]], want: { memoryBytes: 0, cpus: 0, pids: 0, containers: 2 } },
    { name: 'replaces what an update changed (bind, resize, stop)', node: 'n1', steps: [['set', { name: 'a', memory: '1Gi' }], ['set', { name: 'a', nodeName: 'n1', memory: '1Gi', cpus: '0.1' }], ['set', { name: 'a', nodeName: 'n1', memory: '2Gi', cpus: '0.1' }]], want: { memoryBytes: 2 * 2 ** 30, cpus: 0.1, pids: 0, containers: 1 } },
    { name: 'moves a container that was re-bound to another node', node: 'n1', steps: [['set', { name: 'a', nodeName: 'n1', memory: '1Gi' }], ['set', { name: 'a', nodeName: 'n2', memory: '1Gi' }]], want: { memoryBytes: 0, cpus: 0, pids: 0, containers: 0 } },
    { name: 'forgets a deleted container, and one deleted twice only once', node: 'n1', steps: [['set', { name: 'a', nodeName: 'n1', memory: '1Gi' }], ['set', { name: 'b', nodeName: 'n1', memory: '1Gi' }], ['delete', { name: 'a', nodeName: 'n1' }], ['delete', { name: 'a', nodeName: 'n1' }]], want: { memoryBytes: 2 ** 30, cpus: 0, pids: 0, containers: 1 } },
  ];
  it.each(cases)('$name', ({ steps, node, want }) => {
    const r = new NodeReservations();
    for (const [op, f] of steps) r[op](container(f));
    const got = r.of(node);
    expect({ ...got.reserved, containers: got.containers }).toEqual(want);
  });

  it('returns to exactly zero after many fractional CPUs are added and removed', () => {
    const r = new NodeReservations();
    for (let i = 0; i < 1_000; i++) r.set(container({ name: `c${i}`, nodeName: 'n1', cpus: '0.1' }));
    expect(r.of('n1').reserved.cpus).toBe(100);
    for (let i = 0; i < 999; i++) r.delete(container({ name: `c${i}` }));
    expect(r.of('n1')).toEqual({ reserved: { memoryBytes: 0, cpus: 0.1, pids: 0 }, containers: 1 });
  });
});

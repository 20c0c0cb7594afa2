import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { Container, Node, type ApiClient } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { addScheduler } from './scheduler.ts';

interface NodeFixture {
  readonly name: string;
  readonly memory?: string;
  readonly cpu?: string;
  readonly ready?: 'True' | 'False' | 'Unknown';
  readonly availability?: 'Active' | 'Pause' | 'Drain';
}

interface ContainerFixture {
  readonly name: string;
  readonly memory?: string;
  readonly cpus?: string | number;
  readonly nodeName?: string;
  readonly state?: 'Running' | 'Stopped';
}

async function createNode(client: ApiClient, n: NodeFixture): Promise<void> {
  const created = await client.create<Node>({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: n.name }, spec: { role: 'worker', availability: n.availability ?? 'Active' } });
  const capacity = { cpu: n.cpu ?? '4', memory: n.memory ?? '8Gi', pids: '4194304' };
  await client.updateStatus({
    ...created,
    status: { capacity, allocatable: capacity, conditions: [{ type: 'Ready', status: n.ready ?? 'True', reason: 'Test', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' }] },
  });
}

function container(c: ContainerFixture): Container {
  const resources = { ...(c.memory ? { memory: c.memory } : {}), ...(c.cpus !== undefined ? { cpus: c.cpus } : {}) };
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name: c.name, namespace: 'default' },
    spec: { image: 'busybox', command: ['sleep', '3600'], resources, ...(c.nodeName ? { nodeName: c.nodeName } : {}), ...(c.state ? { state: c.state } : {}) },
  };
}

async function start(nodes: readonly NodeFixture[], existing: readonly ContainerFixture[] = []) {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  for (const n of nodes) await createNode(client, n);
  for (const c of existing) await client.create(container(c));
  const manager = managerFor(cp, { client });
  addScheduler(manager, { client, unschedulableRetryMs: 200 });
  await manager.start();
  const scheduled = async (name: string) => {
    const c = await client.get(Container, 'default', name);
    return { nodeName: c.spec?.nodeName, finalizers: c.metadata.finalizers ?? [], condition: c.status?.conditions?.find((x) => x.type === 'Scheduled') };
  };
  return { client, scheduled };
}

const gi = (n: number) => `${n}Gi`;

describe('scheduler', () => {
  const cases: {
    name: string;
    nodes: NodeFixture[];
    existing?: ContainerFixture[];
    want: { nodeName: string } | { message: string };
    request?: Omit<ContainerFixture, 'name'>;
  }[] = [
    { name: 'binds to the only node when it fits', nodes: [{ name: 'n1', memory: gi(1) }], request: { memory: '256Mi' }, want: { nodeName: 'n1' } },
    { name: 'binds a container without requests', nodes: [{ name: 'n1' }], want: { nodeName: 'n1' } },
    {
      name: 'refuses when memory is insufficient',
      nodes: [{ name: 'n1', memory: gi(1) }],
      existing: [{ name: 'big', memory: '900Mi', nodeName: 'n1' }],
      request: { memory: '256Mi' },
      want: { message: '0/1 nodes are available: 1 insufficient memory.' },
    },
    {
      name: 'refuses when cpu is insufficient',
      nodes: [{ name: 'n1', cpu: '2' }],
      existing: [{ name: 'busy', cpus: '1500m', nodeName: 'n1' }],
      request: { cpus: 1 },
      want: { message: '0/1 nodes are available: 1 insufficient cpu.' },
    },
    {
      name: 'does not count stopped containers against the node',
      nodes: [{ name: 'n1', memory: gi(1) }],
      existing: [{ name: 'big', memory: '900Mi', nodeName: 'n1', state: 'Stopped' }],
      request: { memory: '256Mi' },
      want: { nodeName: 'n1' },
    },
    {
      name: 'skips drained and paused nodes',
      nodes: [{ name: 'a-drained', availability: 'Drain' }, { name: 'b-paused', availability: 'Pause' }, { name: 'c-active' }],
      want: { nodeName: 'c-active' },
    },
    {
      name: 'skips nodes that are not ready',
      nodes: [{ name: 'a-down', ready: 'Unknown' }, { name: 'b-false', ready: 'False' }, { name: 'c-up' }],
      want: { nodeName: 'c-up' },
    },
    {
      name: 'says why no node fits',
      nodes: [{ name: 'n1', availability: 'Drain' }, { name: 'n2', ready: 'Unknown' }, { name: 'n3', ready: 'False' }, { name: 'n4', memory: '100Mi' }],
      request: { memory: '256Mi' },
      want: { message: '0/4 nodes are available: 2 not ready, 1 drained, 1 insufficient memory.' },
    },
    { name: 'says so when there are no nodes', nodes: [], want: { message: '0/0 nodes are available: no nodes registered.' } },
    {
      name: 'prefers the least loaded node',
      nodes: [{ name: 'a', memory: gi(1) }, { name: 'b', memory: gi(1) }],
      existing: [{ name: 'on-a', memory: '512Mi', nodeName: 'a' }, { name: 'on-b', memory: '128Mi', nodeName: 'b' }],
      request: { memory: '64Mi' },
      want: { nodeName: 'b' },
    },
    {
      name: 'prefers the node with fewer containers when loads are equal',
      nodes: [{ name: 'a' }, { name: 'b' }],
      existing: [{ name: 'on-a', nodeName: 'a' }],
      want: { nodeName: 'b' },
    },
  ];

  it.each(cases)('$name', async ({ nodes, existing, request, want }) => {
    const { client, scheduled } = await start(nodes, existing);
    await client.create(container({ name: 'web', ...request }));
    if ('nodeName' in want) {
      await vi.waitFor(async () => {
        const s = await scheduled('web');
        expect(s.nodeName).toBe(want.nodeName);
        expect(s.finalizers).toEqual(['berth.dev/runtime']); // the node agent releases what is bound to its node
        expect(s.condition).toMatchObject({ status: 'True', reason: 'Scheduled', message: `bound to node ${want.nodeName}` });
      });
    } else {
      await vi.waitFor(async () => {
        const s = await scheduled('web');
        expect(s.nodeName).toBeUndefined();
        expect(s.finalizers).toEqual([]);
        expect(s.condition).toMatchObject({ status: 'False', reason: 'Unschedulable', message: want.message });
      });
    }
  });

  it('schedules a waiting container once a node with room appears', async () => {
    const { client, scheduled } = await start([{ name: 'small', memory: '100Mi' }]);
    await client.create(container({ name: 'web', memory: '256Mi' }));
    await vi.waitFor(async () => expect((await scheduled('web')).condition).toMatchObject({ status: 'False', reason: 'Unschedulable' }));
    await createNode(client, { name: 'large', memory: gi(1) });
    await vi.waitFor(async () => {
      const s = await scheduled('web');
      expect(s.nodeName).toBe('large');
      expect(s.condition).toMatchObject({ status: 'True', reason: 'Scheduled', message: 'bound to node large' });
    });
  });

  it('never overcommits a node when many containers arrive at once', async () => {
    const { client } = await start([{ name: 'a', memory: gi(1) }, { name: 'b', memory: gi(1) }]);
    await Promise.all(Array.from({ length: 7 }, (_, i) => client.create(container({ name: `c${i}`, memory: '300Mi' }))));
    await vi.waitFor(
      async () => {
        const items = (await client.list(Container, { namespace: 'default' })).items;
        const cond = items.map((c) => c.status?.conditions?.find((x) => x.type === 'Scheduled')?.status);
        expect(cond.filter((s) => s === 'True')).toHaveLength(6);
        expect(cond.filter((s) => s === 'False')).toHaveLength(1);
        // Scheduled=True is written just before the bind: wait for the binds too
        expect(items.filter((c) => c.spec?.nodeName === 'a')).toHaveLength(3);
        expect(items.filter((c) => c.spec?.nodeName === 'b')).toHaveLength(3);
      },
      { timeout: 10_000 },
    );
    // and no more arrive: the seventh stays unbound
    await new Promise((r) => setTimeout(r, 300));
    const items = (await client.list(Container, { namespace: 'default' })).items;
    expect(items.filter((c) => c.spec?.nodeName === 'a')).toHaveLength(3);
    expect(items.filter((c) => c.spec?.nodeName === 'b')).toHaveLength(3);
  });
});

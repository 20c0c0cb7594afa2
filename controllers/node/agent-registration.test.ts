import os from 'node:os';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { RuntimeError } from '../../runtime/cri/index.ts';
import { FakeRuntimeService } from '../../runtime/testing/index.ts';
import { Lease, Node } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { NodeRegistration, NODE_LEASE_NAMESPACE, type NodeRegistrationOptions } from './agent-registration.ts';
import { memTotalBytes, osPrettyName, toGoArch } from './node-facts.ts';

async function setup() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  const runtime = new FakeRuntimeService();
  const register = async (opts: Partial<NodeRegistrationOptions> = {}) => {
    const reg = new NodeRegistration({ nodeName: 'n1', agentVersion: '9.9.9', heartbeatIntervalMs: 100, ...opts }, { client, runtime });
    onTestFinished(() => reg.stop());
    await reg.start();
    return reg;
  };
  return { cp, client, runtime, register };
}

describe('NodeRegistration', () => {
  it('creates its Node with role, labels, capacity, runtime, node info and Ready=True', async () => {
    const { client, register } = await setup();
    await register({ role: 'manager' });
    const node = await client.get(Node, '', 'n1');
    expect(node.spec).toEqual({ role: 'manager', availability: 'Active' });
    expect(node.metadata.labels).toMatchObject({ 'berth.dev/hostname': os.hostname(), 'berth.dev/os': 'linux', 'berth.dev/arch': toGoArch(process.arch) });
    const status = node.status!;
    expect(status.capacity).toMatchObject({ cpu: String(os.availableParallelism()), memory: expect.stringMatching(/^\d+(Ki|Mi|Gi|Ti)?$/), pids: expect.stringMatching(/^\d+$/) });
    expect(status.allocatable).toEqual(status.capacity);
    expect(status.runtime).toEqual({ name: 'fake', version: '0.1.0' });
    expect(status.nodeInfo).toMatchObject({ hostname: os.hostname(), os: 'linux', kernelVersion: os.release(), agentVersion: '9.9.9' });
    expect(status.addresses?.[0]).toEqual({ type: 'Hostname', address: os.hostname() });
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'AgentReady' });
  });

  it('renews its heartbeat Lease in berth-system', async () => {
    const { client, register } = await setup();
    await register();
    const first = await client.get(Lease, NODE_LEASE_NAMESPACE, 'n1');
    expect(first.spec).toMatchObject({ holderIdentity: 'n1', leaseDurationSeconds: 40 });
    await vi.waitFor(async () => expect((await client.get(Lease, NODE_LEASE_NAMESPACE, 'n1')).spec?.renewTime).not.toBe(first.spec?.renewTime), { timeout: 3_000 });
  });

  it('reports Ready=False while the runtime does not answer, and True again when it does', async () => {
    const { client, runtime, register } = await setup();
    runtime.injectError('version', new RuntimeError('Unavailable', 'runc is gone'));
    await register();
    const ready = async () => (await client.get(Node, '', 'n1')).status?.conditions?.find((c) => c.type === 'Ready');
    expect(await ready()).toMatchObject({ status: 'False', reason: 'RuntimeUnavailable', message: expect.stringContaining('runc is gone') });
    await vi.waitFor(async () => expect(await ready()).toMatchObject({ status: 'True', reason: 'AgentReady' }), { timeout: 3_000 });
  });

  it("keeps an existing Node's spec and writes status only when it changes", async () => {
    const { cp, client, register } = await setup();
    await client.create<Node>({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { role: 'worker', availability: 'Drain' } });
    const reg = await register({ role: 'manager' });
    const node = await client.get(Node, '', 'n1');
    expect(node.spec).toEqual({ role: 'worker', availability: 'Drain' });
    await reg.heartbeat();
    await reg.heartbeat();
    expect((await client.get(Node, '', 'n1')).metadata.resourceVersion).toBe(node.metadata.resourceVersion);
    const writes = cp.server.metrics.registry.getSingleMetric('apiserver_request_total') as unknown as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> };
    const statusPuts = (await writes.get()).values.filter((v) => v.labels.resource === 'nodes' && v.labels.subresource === 'status' && v.labels.verb === 'PUT');
    expect(statusPuts.reduce((n, v) => n + v.value, 0)).toBe(1);
  });
});

describe('node facts', () => {
  it.each([
    { name: 'MemTotal in kB', text: 'MemTotal:       16318452 kB\nMemFree: 1 kB\n', want: 16318452 * 1024 },
    { name: 'no MemTotal', text: 'MemFree: 1 kB\n', want: undefined },
  ])('reads memory from /proc/meminfo: $name', ({ text, want }) => expect(memTotalBytes(text)).toBe(want));

  it.each([
    { name: 'quoted', text: 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', want: 'Debian GNU/Linux 12 (bookworm)' },
    { name: 'unquoted', text: 'PRETTY_NAME=Alpine\n', want: 'Alpine' },
    { name: 'absent', text: 'ID=x\n', want: undefined },
  ])('reads the OS image from /etc/os-release: $name', ({ text, want }) => expect(osPrettyName(text)).toBe(want));
});

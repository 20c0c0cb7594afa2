import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { FakeRuntimeService } from '../../runtime/testing/index.ts';
import { Event, Node } from '../framework/index.ts';
import { EventRecorder } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { NodeRegistration } from './agent-registration.ts';
import { addNodeLifecycleController, MESSAGE_NODE_STATUS_UNKNOWN } from './node-lifecycle.ts';

async function setup(gracePeriodMs: number) {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  const manager = managerFor(cp, { client });
  addNodeLifecycleController(manager, { client, gracePeriodMs, events: new EventRecorder({ client, component: 'node-lifecycle' }) });
  await manager.start();
  const runtime = new FakeRuntimeService();
  const agent = async () => {
    const reg = new NodeRegistration({ nodeName: 'n1', agentVersion: 'test', heartbeatIntervalMs: 200 }, { client, runtime });
    onTestFinished(() => reg.stop());
    await reg.start();
    return reg;
  };
  const ready = async (name = 'n1') => (await client.get(Node, '', name)).status?.conditions?.find((c) => c.type === 'Ready');
  return { client, agent, ready };
}

describe('node lifecycle controller', () => {
  it('marks a node Ready=Unknown when its agent stops renewing, and the agent makes it Ready again', async () => {
    const { client, agent, ready } = await setup(1_500);
    const first = await agent();
    // heartbeating for longer than the grace period keeps it Ready
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await ready()).toMatchObject({ status: 'True', reason: 'AgentReady' });

    await first.stop();
    await vi.waitFor(async () => expect(await ready()).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown', message: MESSAGE_NODE_STATUS_UNKNOWN }), { timeout: 5_000, interval: 100 });
    // the Event is recorded just after the status write
    await vi.waitFor(async () => {
      const events = (await client.list(Event, { namespace: 'default' })).items.filter((e) => e.reason === 'NodeNotReady');
      expect(events).toHaveLength(1);
    }, { timeout: 5_000, interval: 100 });

    await agent();
    await vi.waitFor(async () => expect(await ready()).toMatchObject({ status: 'True', reason: 'AgentReady' }), { timeout: 5_000, interval: 100 });
  });

  it('marks a node that never heartbeats Ready=Unknown after the grace period', async () => {
    const { client, ready } = await setup(500);
    await client.create<Node>({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'silent' }, spec: { role: 'worker' } });
    await vi.waitFor(async () => expect(await ready('silent')).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown' }), { timeout: 5_000, interval: 100 });
  });
});

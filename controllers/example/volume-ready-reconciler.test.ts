import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { controllerFor, EventRecorder, Event, Volume } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { metricValue, volumeFixture } from '../framework/testing/fixtures.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { VolumeReadyReconciler } from './volume-ready-reconciler.ts';

async function start() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  const manager = managerFor(cp, { client });
  const events = new EventRecorder({ client, component: 'volume-ready' });
  manager.add(controllerFor(Volume).named('volume-ready').complete(new VolumeReadyReconciler({ volumes: manager.lister(Volume), client, events })));
  await manager.start();
  return { cp, client, manager };
}

describe('VolumeReadyReconciler', () => {
  it('sets observedGeneration and Ready=True, and follows spec changes', async () => {
    const { client } = await start();
    await client.create(volumeFixture('data'));
    await vi.waitFor(async () => {
      const v = await client.get(Volume, 'default', 'data');
      expect(v.status?.observedGeneration).toBe(1);
      expect(v.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Observed', observedGeneration: 1 });
    });
    await client.patch(Volume, 'default', 'data', { spec: { options: { size: '1G' } } });
    await vi.waitFor(async () => expect((await client.get(Volume, 'default', 'data')).status?.observedGeneration).toBe(2));
    const ready = (await client.list(Event, { namespace: 'default' })).items.filter((e) => e.reason === 'Ready');
    expect(ready).toHaveLength(1); // one transition, one event
  });

  it('writes nothing when reconciled again with nothing changed', async () => {
    const { cp, client, manager } = await start();
    await client.create(volumeFixture('steady'));
    await vi.waitFor(async () => expect((await client.get(Volume, 'default', 'steady')).status?.observedGeneration).toBe(1));
    const before = (await client.get(Volume, 'default', 'steady')).status;
    // a metadata-only change enqueues the key again but changes no status
    await client.patch(Volume, 'default', 'steady', { metadata: { labels: { touched: 'yes' } } });
    await vi.waitFor(async () => expect(await metricValue(manager.metrics.registry, 'controller_runtime_reconcile_total', { controller: 'volume-ready', result: 'success' })).toBeGreaterThanOrEqual(2));
    expect((await client.get(Volume, 'default', 'steady')).status).toEqual(before);
    expect(await metricValue(cp.server.metrics.registry, 'apiserver_request_total', { verb: 'PUT', resource: 'volumes', subresource: 'status' })).toBe(1);
  });

  it('marks an unsupported driver Stalled and does not retry it until the spec changes', async () => {
    const { client, manager } = await start();
    await client.create({ ...volumeFixture('nfs'), spec: { driver: 'nfs' } });
    await vi.waitFor(async () => {
      const v = await client.get(Volume, 'default', 'nfs');
      expect(v.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'UnsupportedDriver' });
      expect(v.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
    });
    await vi.waitFor(async () => expect(await metricValue(manager.metrics.registry, 'controller_runtime_terminal_reconcile_errors_total', { controller: 'volume-ready' })).toBeGreaterThanOrEqual(1));
    // its own status write brings the key back once; a terminal error is never retried with back-off
    expect(await metricValue(manager.metrics.registry, 'workqueue_retries_total', { name: 'volume-ready' })).toBe(0);
    expect((await client.list(Event, { namespace: 'default' })).items.map((e) => e.reason)).toEqual(['UnsupportedDriver']);

    await client.patch(Volume, 'default', 'nfs', { spec: { driver: 'local' } });
    await vi.waitFor(async () => {
      const v = await client.get(Volume, 'default', 'nfs');
      expect(v.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
    });
  });
});

import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../../test/harness/control-plane.ts';
import type { ApiClient } from './client.ts';
import { SharedInformer, type InformerOptions } from './informer.ts';
import { ControllerMetrics } from './metrics.ts';
import { Container, Volume, type ResourceKind } from './resource-kind.ts';
import { clientFor } from './testing/control-plane-client.ts';
import { FakeClock } from './testing/fake-clock.ts';
import { containerFixture, metricValue, volumeFixture } from './testing/fixtures.ts';
import type { KubeObject } from '../../api/types/index.ts';

interface Setup<T extends KubeObject> {
  readonly cp: ControlPlane;
  readonly client: ApiClient;
  readonly informer: SharedInformer<T>;
  readonly metrics: ControllerMetrics;
  /** Handler calls in order, as `verb name@resourceVersion`. */
  readonly events: string[];
}

async function setup<T extends KubeObject>(kind: ResourceKind<T>, opts: Partial<InformerOptions<T>> = {}, seed: (c: ApiClient) => Promise<unknown> = async () => {}): Promise<Setup<T>> {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  await seed(client);
  const metrics = new ControllerMetrics(new Registry());
  const informer = new SharedInformer<T>({ client, kind, metrics, backoff: { initialMs: 20, maxMs: 200 }, ...opts });
  onTestFinished(() => informer.stop());
  const events: string[] = [];
  const tag = (o: T) => `${o.metadata.name}@${o.metadata.resourceVersion}`;
  informer.addEventHandler({
    onAdd: (o) => events.push(`add ${tag(o)}`),
    onUpdate: (_, o) => events.push(`update ${tag(o)}`),
    onDelete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  informer.start();
  expect(await informer.waitForSync()).toBe(true);
  return { cp, client, informer, metrics, events };
}

/** `name@resourceVersion`, sorted. */
const summary = (items: readonly KubeObject[]) => items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();

async function expectCacheMatchesServer<T extends KubeObject>(s: Setup<T>, kind: ResourceKind<T>, opts: { labelSelector?: string } = {}) {
  const want = summary((await s.client.list(kind, opts)).items);
  await vi.waitFor(() => expect(summary(s.informer.list())).toEqual(want), { timeout: 10_000, interval: 20 });
}

describe('SharedInformer', () => {
  it('lists existing objects, then follows adds, updates and deletes', async () => {
    const s = await setup(Volume, {}, async (c) => {
      await c.create(volumeFixture('pre-1'));
      await c.create(volumeFixture('pre-2', { namespace: 'berth-system' }));
    });
    expect(s.events.map((e) => e.split('@')[0]).sort()).toEqual(['add pre-1', 'add pre-2']);
    expect(s.informer.get('berth-system', 'pre-2')?.metadata.namespace).toBe('berth-system');
    expect(s.informer.list('default').map((v) => v.metadata.name)).toEqual(['pre-1']);
    s.events.length = 0;

    const a = await s.client.create(volumeFixture('a'));
    const a2 = await s.client.patch(Volume, 'default', 'a', { metadata: { labels: { tier: 'gold' } } });
    await s.client.delete(Volume, 'default', 'pre-1');
    await vi.waitFor(() => expect(s.informer.get('default', 'pre-1')).toBeUndefined());
    expect(s.events).toEqual([`add a@${a.metadata.resourceVersion}`, `update a@${a2.metadata.resourceVersion}`, 'delete pre-1']);
    expect(Object.isFrozen(s.informer.get('default', 'a')!.metadata)).toBe(true);
    await expectCacheMatchesServer(s, Volume);
  });

  it('indexes objects and keeps indexes current', async () => {
    const s = await setup(Volume, {}, (c) => c.create(volumeFixture('x', { labels: { tier: 'gold' } })));
    s.informer.addIndexer('tier', (v) => (v.metadata.labels?.tier ? [v.metadata.labels.tier] : []));
    expect(s.informer.byIndex('tier', 'gold').map((v) => v.metadata.name)).toEqual(['x']);
    await s.client.create(volumeFixture('y', { labels: { tier: 'gold' } }));
    await s.client.patch(Volume, 'default', 'x', { metadata: { labels: { tier: 'silver' } } });
    await vi.waitFor(() => expect(s.informer.byIndex('tier', 'gold').map((v) => v.metadata.name)).toEqual(['y']));
    expect(s.informer.byIndex('tier', 'silver').map((v) => v.metadata.name)).toEqual(['x']);
    expect(() => s.informer.byIndex('nope', 'x')).toThrow(/no indexer/);
  });

  it('replays the cache to a handler added after sync', async () => {
    const s = await setup(Volume, {}, (c) => c.create(volumeFixture('late')));
    const seen: string[] = [];
    const remove = s.informer.addEventHandler({ onAdd: (o) => seen.push(o.metadata.name!) });
    expect(seen).toEqual(['late']);
    remove();
    await s.client.create(volumeFixture('after-removal'));
    await vi.waitFor(() => expect(s.informer.get('default', 'after-removal')).toBeDefined());
    expect(seen).toEqual(['late']);
  });

  it('recovers after the server restarts: the cache matches the server and unchanged objects raise no events', async () => {
    const s = await setup(Volume, {}, async (c) => {
      for (const n of ['r-a', 'r-b', 'r-c']) await c.create(volumeFixture(n));
    });
    s.events.length = 0;
    await s.cp.restart();
    // written while the informer is disconnected or backing off
    const d = await s.client.create(volumeFixture('r-d'));
    const a2 = await s.client.patch(Volume, 'default', 'r-a', { metadata: { labels: { v: '2' } } });
    await s.client.delete(Volume, 'default', 'r-b');
    await expectCacheMatchesServer(s, Volume);
    const e = await s.client.create(volumeFixture('r-e'));
    await expectCacheMatchesServer(s, Volume);

    expect([...s.events].sort()).toEqual(
      [`add r-d@${d.metadata.resourceVersion}`, `update r-a@${a2.metadata.resourceVersion}`, 'delete r-b', `add r-e@${e.metadata.resourceVersion}`].sort(),
    );
    expect(await metricValue(s.metrics.registry, 'berth_informer_restarts_total', { resource: 'volumes.berth.dev' })).toBeGreaterThanOrEqual(1);
  });

  it('re-lists after a 410 when its resourceVersion was compacted, reporting only real changes', async () => {
    const clock = new FakeClock();
    // A selective informer's resourceVersion advances only with matching events; the server ends each watch after 1 s.
    const s = await setup(Volume, { labelSelector: 'keep=yes', watchTimeoutSeconds: 1, clock }, async (c) => {
      for (const n of ['g-same', 'g-update', 'g-delete']) await c.create(volumeFixture(n, { labels: { keep: 'yes' } }));
    });
    const staleRv = s.informer.lastSyncResourceVersion()!;
    // the watch ended after 1 s with no events: the informer now waits on the fake clock
    await vi.waitFor(async () => expect(await metricValue(s.metrics.registry, 'berth_informer_restarts_total', { reason: 'closed' })).toBe(1), { timeout: 5_000 });
    s.events.length = 0;

    const updated = await s.client.patch(Volume, 'default', 'g-update', { metadata: { annotations: { n: '1' } } });
    await s.client.delete(Volume, 'default', 'g-delete');
    const added = await s.client.create(volumeFixture('g-new', { labels: { keep: 'yes' } }));
    for (let i = 0; i < 5; i++) await s.client.create(volumeFixture(`other-${i}`));
    const now = (await s.client.list(Volume)).metadata.resourceVersion!;
    await s.cp.server.store.revisionLog.compact(Number(now));
    expect(Number(await s.cp.server.store.revisionLog.compactRevision())).toBeGreaterThan(Number(staleRv));

    await clock.advance(60_000); // lets it watch again, from the compacted resourceVersion
    await expectCacheMatchesServer(s, Volume, { labelSelector: 'keep=yes' });
    expect(await metricValue(s.metrics.registry, 'berth_informer_restarts_total', { reason: 'expired' })).toBeGreaterThanOrEqual(1);
    expect([...s.events].sort()).toEqual([`add g-new@${added.metadata.resourceVersion}`, 'delete g-delete', `update g-update@${updated.metadata.resourceVersion}`]);
    expect(s.informer.get('default', 'other-0')).toBeUndefined();
  });

  it('watches only objects matching its field selector', async () => {
    const s = await setup(Container, { fieldSelector: 'spec.nodeName=n1' }, async (c) => {
      await c.create(containerFixture('on-n1', { nodeName: 'n1' }));
      await c.create(containerFixture('on-n2', { nodeName: 'n2' }));
    });
    expect(s.informer.list().map((c) => c.metadata.name)).toEqual(['on-n1']);
    await s.client.create(containerFixture('later-n1', { nodeName: 'n1' }));
    await s.client.create(containerFixture('later-n2', { nodeName: 'n2' }));
    await s.client.create(containerFixture('later-n1b', { nodeName: 'n1' }));
    await vi.waitFor(() => expect(s.informer.get('default', 'later-n1b')).toBeDefined());
    expect(s.informer.list().map((c) => c.metadata.name).sort()).toEqual(['later-n1', 'later-n1b', 'on-n1']);
  });

  it('stops for good: no more requests after stop, even after errors', async () => {
    const s = await setup(Volume);
    await s.informer.stop();
    const watchers = () => metricValue(s.cp.server.metrics.registry, 'apiserver_registered_watchers', { resource: 'volumes' });
    await vi.waitFor(async () => expect(await watchers()).toBe(0));
    const lists = await metricValue(s.cp.server.metrics.registry, 'apiserver_request_total', { verb: 'LIST', resource: 'volumes' });
    await s.cp.restart();
    await s.client.create(volumeFixture('after-stop'));
    await new Promise((r) => setTimeout(r, 300)); // longer than its back-off: a live informer would have come back
    expect(await watchers()).toBe(0);
    expect(await metricValue(s.cp.server.metrics.registry, 'apiserver_request_total', { verb: 'LIST', resource: 'volumes' })).toBe(0);
    expect(lists).toBe(1);
    expect(s.informer.get('default', 'after-stop')).toBeUndefined();
  });
});

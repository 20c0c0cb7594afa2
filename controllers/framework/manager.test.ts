import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { isConflict } from './api-status-error.ts';
import { controllerFor } from './builder.ts';
import type { ReconcileContext, Reconciler, Request, Result } from './reconcile.ts';
import { Container, Volume } from './resource-kind.ts';
import type { Lister } from './lister.ts';
import type { ApiClient } from './client.ts';
import { containerFixture, metricValue, volumeFixture } from './testing/fixtures.ts';
import { managerFor } from './testing/manager.ts';
import { clientFor } from './testing/control-plane-client.ts';

async function controlPlane() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  return cp;
}

/** Records each request it receives. */
class RecordingReconciler implements Reconciler {
  readonly keys: string[] = [];
  async reconcile(_ctx: ReconcileContext, req: Request): Promise<Result> {
    this.keys.push(`${req.namespace}/${req.name}`);
    return {};
  }
}

describe('Manager', () => {
  it('reconciles every watched object, and the owner when an owned object changes', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    await client.create(volumeFixture('existing'));
    const manager = managerFor(cp);
    const r = new RecordingReconciler();
    manager.add(controllerFor(Volume).named('volumes').owns(Container).complete(r));
    await manager.start();
    expect(manager.isLeader()).toBe(true);
    await vi.waitFor(() => expect(r.keys).toEqual(['default/existing']));

    const owner = await client.create(volumeFixture('owner'));
    await vi.waitFor(() => expect(r.keys).toContain('default/owner'));
    const before = r.keys.length;
    await client.create({
      ...containerFixture('child'),
      metadata: {
        name: 'child',
        namespace: 'default',
        ownerReferences: [{ apiVersion: 'berth.dev/v1', kind: 'Volume', name: 'owner', uid: owner.metadata.uid!, controller: true }],
      },
    });
    await client.create(containerFixture('orphan'));
    await vi.waitFor(() => expect(r.keys.slice(before)).toEqual(['default/owner']));
    expect(r.keys).not.toContain('default/child');
    expect(await metricValue(manager.metrics.registry, 'controller_runtime_reconcile_total', { controller: 'volumes', result: 'success' })).toBe(r.keys.length);
  });

  it('shares one informer between watches and listers with the same selectors', async () => {
    const cp = await controlPlane();
    const manager = managerFor(cp);
    const a = manager.informer(Container, { fieldSelector: 'spec.nodeName=n1' });
    expect(manager.lister(Container, { fieldSelector: 'spec.nodeName=n1' })).toBe(a);
    expect(manager.informer(Container)).not.toBe(a);
    manager.add(controllerFor(Container).watches(Container, () => [], { fieldSelector: 'spec.nodeName=n1' }).complete(new RecordingReconciler()));
    expect(manager.informer(Container, { fieldSelector: 'spec.nodeName=n1' })).toBe(a);
  });

  it('lets a reconciler see its own last write before it runs again: no conflict loops', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    await client.create(volumeFixture('counter'));
    const manager = managerFor(cp, { client });
    const lister = manager.lister(Volume);
    const r = new CountingReconciler(lister, client, 10);
    manager.add(controllerFor(Volume).complete(r));
    await manager.start();
    await vi.waitFor(() => expect(lister.get('default', 'counter')?.status?.mountpoint).toBe('10'), { timeout: 10_000 });
    expect(r.conflicts).toBe(0);
    // every reconcile after a write read exactly the object that write produced
    expect(r.seen.slice(1, 11)).toEqual(r.written);
  });

  it('without that wait the same reconciler reads stale objects and hits conflicts (the control case)', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    await client.create(volumeFixture('counter'));
    const manager = managerFor(cp, { client, ownWriteWaitMs: 0 });
    const lister = manager.lister(Volume);
    const r = new CountingReconciler(lister, client, 3);
    manager.add(controllerFor(Volume).complete(r));
    await manager.start();
    await vi.waitFor(() => expect(lister.get('default', 'counter')?.status?.mountpoint).toBe('3'), { timeout: 10_000 });
    expect(r.conflicts).toBeGreaterThan(0);
  });

  it('stops controllers, then informers, and reconciles nothing afterwards', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    const manager = managerFor(cp);
    const r = new RecordingReconciler();
    manager.add(controllerFor(Volume).complete(r));
    await manager.start();
    await client.create(volumeFixture('one'));
    await vi.waitFor(() => expect(r.keys).toEqual(['default/one']));
    await manager.stop();
    expect(manager.isLeader()).toBe(false);
    await client.create(volumeFixture('two'));
    const watchers = () => metricValue(cp.server.metrics.registry, 'apiserver_registered_watchers', { resource: 'volumes' });
    await vi.waitFor(async () => expect(await watchers()).toBe(0));
    expect(r.keys).toEqual(['default/one']);
  });
});

/**
 * Counts up in `status.mountpoint`, one conditional status write per reconcile,
 * reading the object from the cache each time, until `target`.
 */
class CountingReconciler implements Reconciler {
  conflicts = 0;
  readonly seen: string[] = [];
  readonly written: string[] = [];
  constructor(
    private readonly volumes: Lister<Volume>,
    private readonly client: ApiClient,
    private readonly target: number,
  ) {}

  async reconcile(_ctx: ReconcileContext, req: Request): Promise<Result> {
    const v = this.volumes.get(req.namespace, req.name);
    if (!v) return {};
    this.seen.push(v.metadata.resourceVersion!);
    const n = Number(v.status?.mountpoint ?? 0);
    if (n >= this.target) return {};
    try {
      const out = await this.client.updateStatusIfChanged(v, { ...v.status, mountpoint: String(n + 1) });
      this.written.push(out.metadata.resourceVersion!);
    } catch (err) {
      if (isConflict(err)) this.conflicts++;
      throw err;
    }
    return { requeueAfterMs: 0 };
  }
}

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR } from './fixtures.ts';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

const merge = 'application/merge-patch+json';
const gone = async (path: string) => vi.waitFor(async () => expect((await cp.request('GET', path)).status).toBe(404), { timeout: 10_000 });

describe('delete', () => {
  it('deletes at once when there are no finalizers, answering a Success Status', async () => {
    const c = (await cp.request('POST', CTR, { body: container('d-now') })).body;
    const res = await cp.request('DELETE', `${CTR}/d-now`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'd-now', group: 'berth.dev', kind: 'containers', uid: c.metadata.uid } });
    expect((await cp.request('GET', `${CTR}/d-now`)).status).toBe(404);
  });

  it('waits for finalizers: sets deletionTimestamp, deletes when the last one is removed', async () => {
    await cp.request('POST', CTR, { body: container('d-fin', { metadata: { finalizers: ['berth.dev/runtime'] } }) });
    const res = await cp.request('DELETE', `${CTR}/d-fin`);
    expect(res.status).toBe(202);
    expect(res.body.metadata.deletionTimestamp).toBeTruthy();
    const still = await cp.request('GET', `${CTR}/d-fin`);
    expect(still.status).toBe(200);
    const add = await cp.request('PATCH', `${CTR}/d-fin`, { body: { metadata: { finalizers: ['berth.dev/runtime', 'x.dev/new'] } }, contentType: merge });
    expect(add.status).toBe(422);
    const done = await cp.request('PATCH', `${CTR}/d-fin`, { body: { metadata: { finalizers: null } }, contentType: merge });
    expect(done.status).toBe(200);
    expect((await cp.request('GET', `${CTR}/d-fin`)).status).toBe(404);
  });

  it('keeps the grace period on the object: the spec\'s stopGracePeriodSeconds by default, the delete\'s when given; a later delete shortens it, never lengthens it', async () => {
    const fin = { metadata: { finalizers: ['berth.dev/runtime'] } };
    await cp.request('POST', CTR, { body: container('d-grace', { ...fin, spec: { image: 'busybox', stopGracePeriodSeconds: 25 } }) });
    expect((await cp.request('DELETE', `${CTR}/d-grace`)).body.metadata.deletionGracePeriodSeconds).toBe(25);
    expect((await cp.request('DELETE', `${CTR}/d-grace`, { body: { gracePeriodSeconds: 40 } })).body.metadata.deletionGracePeriodSeconds).toBe(25);
    expect((await cp.request('DELETE', `${CTR}/d-grace?gracePeriodSeconds=0`)).body.metadata.deletionGracePeriodSeconds).toBe(0);

    await cp.request('POST', CTR, { body: container('d-grace-default', fin) });
    expect((await cp.request('DELETE', `${CTR}/d-grace-default`)).body.metadata.deletionGracePeriodSeconds).toBe(10); // the schema's default, stored at create
    expect((await cp.request('DELETE', `${CTR}/d-grace-default`, { body: { gracePeriodSeconds: 0 } })).body.metadata.deletionGracePeriodSeconds).toBe(0);
    for (const n of ['d-grace', 'd-grace-default']) await cp.request('PATCH', `${CTR}/${n}`, { body: { metadata: { finalizers: null } }, contentType: merge });
  });

  it('honours preconditions', async () => {
    await cp.request('POST', CTR, { body: container('d-pre') });
    const res = await cp.request('DELETE', `${CTR}/d-pre`, { body: { preconditions: { uid: 'not-the-uid' } } });
    expect(res.status).toBe(409);
    expect((await cp.request('GET', `${CTR}/d-pre`)).status).toBe(200);
  });

  it('deletes a collection by label', async () => {
    for (const n of ['dc-1', 'dc-2']) await cp.request('POST', CTR, { body: container(n, { labels: { batch: 'dc' } }) });
    await cp.request('POST', CTR, { body: container('dc-keep') });
    const res = await cp.request('DELETE', `${CTR}?labelSelector=batch%3Ddc`);
    expect(res.status).toBe(200);
    expect((await cp.request('GET', `${CTR}?labelSelector=batch%3Ddc`)).body.items).toEqual([]);
    expect((await cp.request('GET', `${CTR}/dc-keep`)).status).toBe(200);
  });
});

describe('garbage collection', () => {
  const owned = async (owner: any, name: string) => {
    const ref = { apiVersion: 'berth.dev/v1', kind: 'Service', name: owner.metadata.name, uid: owner.metadata.uid, blockOwnerDeletion: true };
    return (await cp.request('POST', CTR, { body: container(name, { metadata: { ownerReferences: [ref] } }) })).body;
  };
  const service = async (name: string) =>
    (
      await cp.request('POST', '/apis/berth.dev/v1/namespaces/default/services', {
        body: { apiVersion: 'berth.dev/v1', kind: 'Service', metadata: { name }, spec: { replicas: 1, template: { spec: { image: 'busybox' } } } },
      })
    ).body;
  const SVC = '/apis/berth.dev/v1/namespaces/default/services';

  it('deletes dependents in the background when the owner goes', async () => {
    const s = await service('gc-bg');
    await owned(s, 'gc-bg-1');
    await cp.request('DELETE', `${SVC}/gc-bg`, { body: { propagationPolicy: 'Background' } });
    await gone(`${CTR}/gc-bg-1`);
  });

  it('keeps the owner until dependents are gone with foreground deletion', async () => {
    const s = await service('gc-fg');
    await owned(s, 'gc-fg-1');
    const res = await cp.request('DELETE', `${SVC}/gc-fg`, { body: { propagationPolicy: 'Foreground' } });
    expect(res.body.metadata.finalizers).toContain('foregroundDeletion');
    await gone(`${CTR}/gc-fg-1`);
    await gone(`${SVC}/gc-fg`);
  });

  it('orphans dependents with propagationPolicy Orphan', async () => {
    const s = await service('gc-or');
    await owned(s, 'gc-or-1');
    await cp.request('DELETE', `${SVC}/gc-or`, { body: { propagationPolicy: 'Orphan' } });
    await gone(`${SVC}/gc-or`);
    const dep = await cp.request('GET', `${CTR}/gc-or-1`);
    expect(dep.status).toBe(200);
    expect(dep.body.metadata.ownerReferences).toBeUndefined();
  });
});

describe('namespaces', () => {
  it('deleting a namespace deletes what is in it, then the namespace', async () => {
    await cp.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } } });
    const path = '/apis/berth.dev/v1/namespaces/doomed/containers';
    await cp.request('POST', path, { body: container('inside') });
    const del = await cp.request('DELETE', '/api/v1/namespaces/doomed');
    expect(del.status).toBe(202);
    expect(del.body.status.phase).toBe('Terminating');
    const blocked = await cp.request('POST', path, { body: container('late') });
    expect(blocked.status).toBe(403);
    await gone(`${path}/inside`);
    await gone('/api/v1/namespaces/doomed');
  });

  it('has the default namespace from the start', async () => {
    const res = await cp.request('GET', '/api/v1/namespaces/default');
    expect(res.status).toBe(200);
    expect(res.body.status.phase).toBe('Active');
  });
});

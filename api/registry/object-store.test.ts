import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.ts';
import { MemoryLog } from '../../store/memory/memory-log.ts';
import { ObjectStore, withResourceVersion } from './object-store.ts';
import { findResource, type KubeObjectLike } from './resources.ts';

const containers = findResource('berth.dev', 'v1', 'containers')!;
const namespaces = findResource('', 'v1', 'namespaces')!;

const container = (name: string, more: Record<string, unknown> = {}): KubeObjectLike => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Container',
  metadata: { name, labels: { app: 'web' } },
  spec: { image: 'busybox', env: [{ name: 'A', value: '"quoted" {"metadata":{}}' }] },
  ...more,
});

async function storeWithNamespace(ns = 'default'): Promise<ObjectStore> {
  const store = new ObjectStore({ log: new MemoryLog() });
  await store.ensureNamespace(ns);
  return store;
}

const codeOf = (p: Promise<unknown>): Promise<number | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof ApiError ? e.code : -1),
  );

describe('withResourceVersion', () => {
  it.each([
    ['puts resourceVersion first in the metadata', '{"apiVersion":"v1","kind":"K","metadata":{"name":"a"},"spec":{}}', '{"apiVersion":"v1","kind":"K","metadata":{"resourceVersion":"7","name":"a"},"spec":{}}'],
    ['fills empty metadata without a comma', '{"apiVersion":"v1","kind":"K","metadata":{}}', '{"apiVersion":"v1","kind":"K","metadata":{"resourceVersion":"7"}}'],
    ['skips escaped quotes in apiVersion and kind', '{"apiVersion":"a\\"b","kind":"K\\\\","metadata":{"name":"a"}}', '{"apiVersion":"a\\"b","kind":"K\\\\","metadata":{"resourceVersion":"7","name":"a"}}'],
    ['leaves a template\'s metadata alone', '{"apiVersion":"v1","kind":"K","metadata":{},"spec":{"template":{"metadata":{}}}}', '{"apiVersion":"v1","kind":"K","metadata":{"resourceVersion":"7"},"spec":{"template":{"metadata":{}}}}'],
    ['refuses metadata that is not the third member', '{"apiVersion":"v1","metadata":{},"kind":"K"}', undefined],
    ['refuses a value without kind', '{"apiVersion":"v1","spec":{"metadata":{}}}', undefined],
    ['refuses metadata that is not an object', '{"apiVersion":"v1","kind":"K","metadata":null}', undefined],
  ])('%s', (_name, value, want) => {
    const got = withResourceVersion(value, 7);
    expect(got).toBe(want);
    if (got !== undefined) expect(JSON.parse(got)).toEqual({ ...JSON.parse(value), metadata: { ...JSON.parse(value).metadata, resourceVersion: '7' } });
  });
});

describe('ObjectStore', () => {
  it('returns a created object, its JSON text and what get reads as the same object', async () => {
    const store = await storeWithNamespace();
    const out = await store.create(containers, 'default', container('web'));
    expect(out.json).toBeDefined();
    const read = await store.get(containers, 'default', 'web');
    expect(JSON.parse(out.json!)).toEqual(read);
    expect(JSON.parse(JSON.stringify(out.object))).toEqual(read);
    expect(JSON.parse(await store.getJson(containers, 'default', 'web'))).toEqual(read);
    expect(read.metadata?.resourceVersion).toBe(out.object.metadata?.resourceVersion);
  });

  it("stores the schema's defaults, as kube-apiserver: on create, update and patch (not where the parent is absent); an update that leaves them out changes nothing", async () => {
    const store = await storeWithNamespace();
    const defaults = { state: 'Running', restartPolicy: 'Always', imagePullPolicy: 'IfNotPresent', tty: false, stdin: false, autoRemove: false, stopSignal: 'SIGTERM', stopGracePeriodSeconds: 10 };
    const created = (await store.create(containers, 'default', container('d', { spec: { image: 'busybox', ports: [{ containerPort: 80 }], restartPolicy: 'Never' } }))).object;
    expect(created.spec).toEqual({ ...defaults, image: 'busybox', restartPolicy: 'Never', ports: [{ containerPort: 80, protocol: 'TCP' }] });
    expect(created.spec).not.toHaveProperty('healthcheck');
    expect((await store.get(containers, 'default', 'd')).spec).toEqual(created.spec);

    // a PUT of the object as the user wrote it: defaults filled again, so the spec and generation stay
    const put = container('d', { spec: { image: 'busybox', ports: [{ containerPort: 80 }], restartPolicy: 'Never' } });
    put.metadata!.resourceVersion = created.metadata!.resourceVersion;
    const updated = (await store.update(containers, 'default', 'd', put)).object;
    expect(updated.spec).toEqual(created.spec);
    expect(updated.metadata?.generation).toBe(1);

    // a merge patch that removes a defaulted field: the default comes back
    const patched = (await store.patch(containers, 'default', 'd', { spec: { restartPolicy: null, healthcheck: { exec: ['true'] } } }, { type: 'merge' })).object;
    expect(patched.spec).toMatchObject({ restartPolicy: 'Always', healthcheck: { exec: ['true'], intervalSeconds: 30, timeoutSeconds: 30, retries: 3, startPeriodSeconds: 0 } });
    expect(patched.metadata?.generation).toBe(2);
  });

  it('server-side applies a port without its defaulted key field twice as one port: the second apply writes nothing', async () => {
    const store = await storeWithNamespace();
    const cfg = { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'p' }, spec: { image: 'busybox', ports: [{ containerPort: 80, hostPort: 8080 }] } };
    const first = await store.patch(containers, 'default', 'p', cfg, { type: 'apply', fieldManager: 'compose' });
    expect(first.object.spec).toMatchObject({ ports: [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }] });
    expect(JSON.stringify(first.object.metadata?.managedFields)).toContain('k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}');
    const second = await store.patch(containers, 'default', 'p', cfg, { type: 'apply', fieldManager: 'compose' });
    expect(second.object.metadata?.resourceVersion).toBe(first.object.metadata?.resourceVersion);
    expect(second.object.spec).toEqual(first.object.spec);
  });

  it('returns an updated object and its JSON text as stored', async () => {
    const store = await storeWithNamespace();
    const created = (await store.create(containers, 'default', container('web'))).object;
    const body = container('web', { spec: { image: 'nginx' } });
    body.metadata!.resourceVersion = created.metadata!.resourceVersion;
    const out = await store.update(containers, 'default', 'web', body);
    const read = await store.get(containers, 'default', 'web');
    expect(read.spec).toMatchObject({ image: 'nginx' });
    expect(read.spec).not.toHaveProperty('env');
    expect(JSON.parse(out.json!)).toEqual(read);
    expect(JSON.parse(JSON.stringify(out.object))).toEqual(read);
  });

  it('lists items as JSON text that decodes to the listed objects, selectors applied', async () => {
    const store = await storeWithNamespace();
    await store.create(containers, 'default', container('a'));
    await store.create(containers, 'default', container('b', { metadata: { name: 'b', labels: { app: 'db' } } }));
    const all = await store.list(containers, 'default');
    const texts = await store.listJson(containers, 'default');
    expect(texts.resourceVersion).toBe(all.resourceVersion);
    expect(texts.items.map((t) => JSON.parse(t))).toEqual(all.items);
    const { parseLabelSelector } = await import('./selectors.ts');
    const db = await store.listJson(containers, 'default', { labelSelector: parseLabelSelector('app=db') });
    expect(db.items.map((t) => (JSON.parse(t) as KubeObjectLike).metadata?.name)).toEqual(['b']);
  });

  it('watches events with objects as JSON text equal to the decoded events', async () => {
    const store = await storeWithNamespace();
    const from = Number((await store.list(containers, 'default')).resourceVersion);
    const created = (await store.create(containers, 'default', container('web'))).object;
    const patched = await store.patch(containers, 'default', 'web', { spec: { image: 'nginx' } }, { type: 'merge' });
    await store.delete(containers, 'default', 'web');
    const take = async <T>(events: AsyncIterable<T>): Promise<T[]> => {
      const out: T[] = [];
      for await (const ev of events) if (out.push(ev) === 3) break;
      return out;
    };
    const signal = new AbortController().signal;
    const decoded = await take(store.watch(containers, 'default', from, signal));
    const texts = await take(store.watchJson(containers, 'default', from, signal));
    expect(texts.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(texts.map((e) => ({ type: e.type, object: JSON.parse(e.json), revision: e.revision }))).toEqual(
      decoded.map((e) => ({ type: e.type, object: e.object, revision: e.revision })),
    );
    expect(texts[0]!.revision).toBe(Number(created.metadata!.resourceVersion));
    expect(texts[1]!.revision).toBe(Number(patched.object.metadata!.resourceVersion));
  });

  it('answers 404 for a missing namespace until it exists, and 403 once it terminates', async () => {
    const store = new ObjectStore({ log: new MemoryLog() });
    expect(await codeOf(store.create(containers, 'team', container('a')))).toBe(404);
    await store.ensureNamespace('team');
    expect(await codeOf(store.create(containers, 'team', container('a')))).toBeUndefined();
    expect(await codeOf(store.create(containers, 'team', container('b')))).toBeUndefined();
    const ns = await store.delete(namespaces, '', 'team');
    expect(ns.deleted).toBe(false); // the namespace finalizer holds it: terminating
    expect(await codeOf(store.create(containers, 'team', container('c')))).toBe(403);
    await store.finalizeNamespace('team');
    expect(await codeOf(store.create(containers, 'team', container('d')))).toBe(404);
  });

  it('does not remember a namespace read that a write of the namespace overtook', async () => {
    // A log whose reads of the namespace can be held back: the read happens at once,
    // its result arrives when released, after the namespace was marked terminating.
    const log = new MemoryLog();
    let held: (() => void) | undefined;
    let hold = false;
    const get = log.get.bind(log);
    log.get = async (key: string) => {
      const kv = await get(key);
      if (hold && key === '/core/namespaces/team') await new Promise<void>((resolve) => (held = resolve));
      return kv;
    };
    const store = new ObjectStore({ log });
    await store.ensureNamespace('team');
    hold = true;
    const early = codeOf(store.create(containers, 'team', container('early')));
    await new Promise((resolve) => setImmediate(resolve));
    hold = false;
    expect((await store.delete(namespaces, '', 'team')).deleted).toBe(false);
    held!();
    expect(await early).toBeUndefined(); // it read the namespace before it terminated
    expect(await codeOf(store.create(containers, 'team', container('late')))).toBe(403);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR, NODES } from './fixtures.ts';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

describe('create, get, update', () => {
  it('creates an object with uid, resourceVersion, generation and creationTimestamp', async () => {
    const res = await cp.request('POST', CTR, { body: container('create-1', { labels: { app: 'a' } }) });
    expect(res.status).toBe(201);
    const m = res.body.metadata;
    expect(m.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(m.resourceVersion)).toBeGreaterThan(0);
    expect(m.generation).toBe(1);
    expect(m.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(m.namespace).toBe('default');
    const got = await cp.request('GET', `${CTR}/create-1`);
    expect(got.status).toBe(200);
    expect(got.body.metadata.resourceVersion).toBe(m.resourceVersion);
    expect(got.body.spec.image).toBe('busybox');
  });

  it('answers AlreadyExists for a second create of the same name', async () => {
    await cp.request('POST', CTR, { body: container('dup') });
    const res = await cp.request('POST', CTR, { body: container('dup') });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', message: 'containers.berth.dev "dup" already exists' });
  });

  it('names objects from generateName', async () => {
    const body = container('x');
    const { name: _n, ...meta } = body.metadata;
    const res = await cp.request('POST', CTR, { body: { ...body, metadata: { ...meta, generateName: 'gen-' } } });
    expect(res.status).toBe(201);
    expect(res.body.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });

  it('bumps generation only when spec changes, and resourceVersion on every change', async () => {
    const created = (await cp.request('POST', CTR, { body: container('gen') })).body;
    const labelled = await cp.request('PATCH', `${CTR}/gen`, { body: { metadata: { labels: { x: 'y' } } }, contentType: 'application/merge-patch+json' });
    expect(labelled.body.metadata.generation).toBe(1);
    expect(Number(labelled.body.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    const respec = await cp.request('PATCH', `${CTR}/gen`, { body: { spec: { image: 'other' } }, contentType: 'application/merge-patch+json' });
    expect(respec.body.metadata.generation).toBe(2);
  });

  it('does not bump resourceVersion for a no-op update', async () => {
    const created = (await cp.request('POST', CTR, { body: container('noop') })).body;
    const again = await cp.request('PUT', `${CTR}/noop`, { body: created });
    expect(again.status).toBe(200);
    expect(again.body.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
  });

  it('answers Conflict for an update with a stale resourceVersion', async () => {
    const created = (await cp.request('POST', CTR, { body: container('stale') })).body;
    await cp.request('PATCH', `${CTR}/stale`, { body: { spec: { image: 'v2' } }, contentType: 'application/merge-patch+json' });
    const res = await cp.request('PUT', `${CTR}/stale`, { body: { ...created, spec: { ...created.spec, image: 'v3' } } });
    expect(res.status).toBe(409);
    expect(res.body.reason).toBe('Conflict');
    expect(res.body.message).toContain('the object has been modified');
  });

  it('requires resourceVersion on PUT', async () => {
    await cp.request('POST', CTR, { body: container('norv') });
    const res = await cp.request('PUT', `${CTR}/norv`, { body: container('norv') });
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0].field).toBe('metadata.resourceVersion');
  });

  it('keeps status on spec writes and spec on status writes', async () => {
    const created = (await cp.request('POST', CTR, { body: { ...container('split'), status: { phase: 'Running' } } })).body;
    expect(created.status).toBeUndefined();
    const st = await cp.request('PUT', `${CTR}/split/status`, { body: { ...created, spec: { image: 'ignored' }, status: { phase: 'Running', restartCount: 2 } } });
    expect(st.status).toBe(200);
    expect(st.body.spec.image).toBe('busybox');
    expect(st.body.status).toMatchObject({ phase: 'Running', restartCount: 2 });
    expect(st.body.metadata.generation).toBe(1);
    const sp = await cp.request('PUT', `${CTR}/split`, { body: { ...st.body, spec: { image: 'new' }, status: { phase: 'Exited' } } });
    expect(sp.body.spec.image).toBe('new');
    expect(sp.body.status.phase).toBe('Running');
  });

  it('stores annotations verbatim', async () => {
    const ann = { 'kubectl.kubernetes.io/last-applied-configuration': '{"a": 1,  "b":[ ]}\n', note: '  spaced\ttext ' };
    await cp.request('POST', CTR, { body: container('ann', { metadata: { annotations: ann } }) });
    expect((await cp.request('GET', `${CTR}/ann`)).body.metadata.annotations).toEqual(ann);
  });

  it('serves cluster-scoped kinds without a namespace', async () => {
    const res = await cp.request('POST', NODES, { body: { apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { role: 'manager' } } });
    expect(res.status).toBe(201);
    expect(res.body.metadata.namespace).toBeUndefined();
    expect((await cp.request('GET', `${NODES}/n1`)).status).toBe(200);
  });

  it('refuses to create in a namespace that does not exist', async () => {
    const res = await cp.request('POST', '/apis/berth.dev/v1/namespaces/nope/containers', { body: container('x') });
    expect(res.status).toBe(404);
    expect(res.body.message).toBe('namespaces "nope" not found');
  });
});

describe('list', () => {
  beforeAll(async () => {
    for (const [name, labels] of [
      ['l-a', { tier: 'web', env: 'prod' }],
      ['l-b', { tier: 'web', env: 'dev' }],
      ['l-c', { tier: 'db' }],
    ] as const)
      await cp.request('POST', CTR, { body: container(name, { labels }) });
  });

  it.each([
    ['tier=web', ['l-a', 'l-b']],
    ['tier==web,env!=dev', ['l-a']],
    ['env in (dev, prod)', ['l-a', 'l-b']],
    ['tier,!env', ['l-c']],
    ['tier,tier notin (web)', ['l-c']],
  ])('filters by label selector %s', async (sel, want) => {
    const res = await cp.request('GET', `${CTR}?labelSelector=${encodeURIComponent(sel)}`);
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('ContainerList');
    expect(res.body.items.map((i: any) => i.metadata.name).sort()).toEqual(want);
  });

  it('filters by field selector on metadata.name', async () => {
    const res = await cp.request('GET', `${CTR}?fieldSelector=metadata.name%3Dl-b`);
    expect(res.body.items.map((i: any) => i.metadata.name)).toEqual(['l-b']);
  });

  it('rejects field selectors on unsupported fields', async () => {
    const res = await cp.request('GET', `${CTR}?fieldSelector=spec.colour%3Dred`);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('field label not supported: spec.colour');
  });

  it('pages with limit and continue at one resourceVersion', async () => {
    const all = (await cp.request('GET', CTR)).body.items.map((i: any) => i.metadata.name);
    const seen: string[] = [];
    let cont = '';
    let rv = '';
    for (let i = 0; i < 100; i++) {
      const res = await cp.request('GET', `${CTR}?limit=2${cont ? `&continue=${cont}` : ''}`);
      expect(res.status).toBe(200);
      if (rv) expect(res.body.metadata.resourceVersion).toBe(rv);
      rv = res.body.metadata.resourceVersion;
      seen.push(...res.body.items.map((x: any) => x.metadata.name));
      if (i === 0) await cp.request('POST', CTR, { body: container('zz-after-first-page') });
      cont = res.body.metadata.continue ?? '';
      if (!cont) break;
    }
    expect(seen).toEqual(all);
  });

  it('lists across namespaces', async () => {
    await cp.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } } });
    await cp.request('POST', '/apis/berth.dev/v1/namespaces/other/containers', { body: container('elsewhere') });
    const res = await cp.request('GET', '/apis/berth.dev/v1/containers');
    const names = res.body.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`);
    expect(names).toContain('other/elsewhere');
    expect(names).toContain('default/l-a');
  });

  it('serves Tables with server-side columns when asked', async () => {
    const res = await cp.request('GET', `${CTR}?labelSelector=tier%3Ddb`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    expect(res.body.kind).toBe('Table');
    expect(res.body.metadata.resourceVersion).toBeTruthy();
    expect(res.body.columnDefinitions.map((c: any) => c.name)).toEqual(expect.arrayContaining(['Name', 'Image', 'State', 'Restarts', 'Node', 'Age']));
    expect(res.body.rows[0].cells[0]).toBe('l-c');
    expect(res.body.rows[0].object).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'l-c' } });
  });
});

describe('dry run', () => {
  it('stores nothing on dryRun=All create, patch and delete', async () => {
    const before = (await cp.request('GET', CTR)).body.metadata.resourceVersion;
    const c = await cp.request('POST', `${CTR}?dryRun=All`, { body: container('dry') });
    expect(c.status).toBe(201);
    expect(c.body.metadata.name).toBe('dry');
    expect((await cp.request('GET', `${CTR}/dry`)).status).toBe(404);
    await cp.request('POST', CTR, { body: container('dry2') });
    const mid = (await cp.request('GET', CTR)).body.metadata.resourceVersion;
    const p = await cp.request('PATCH', `${CTR}/dry2?dryRun=All`, { body: { spec: { image: 'x' } }, contentType: 'application/merge-patch+json' });
    expect(p.body.spec.image).toBe('x');
    expect((await cp.request('GET', `${CTR}/dry2`)).body.spec.image).toBe('busybox');
    const d = await cp.request('DELETE', `${CTR}/dry2?dryRun=All`);
    expect(d.status).toBe(200);
    expect((await cp.request('GET', `${CTR}/dry2`)).status).toBe(200);
    expect((await cp.request('GET', CTR)).body.metadata.resourceVersion).toBe(mid);
    expect(Number(mid)).toBeGreaterThan(Number(before));
  });
});

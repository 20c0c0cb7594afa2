import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR } from './fixtures.ts';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

const APPLY = 'application/apply-patch+yaml';

describe('patch', () => {
  it('applies JSON merge patches, null deleting a field', async () => {
    await cp.request('POST', CTR, { body: container('mp', { spec: { workingDir: '/tmp' } }) });
    const res = await cp.request('PATCH', `${CTR}/mp`, { body: { spec: { workingDir: null, args: ['-v'] } }, contentType: 'application/merge-patch+json' });
    expect(res.status).toBe(200);
    expect(res.body.spec.workingDir).toBeUndefined();
    expect(res.body.spec.args).toEqual(['-v']);
  });

  it('applies JSON patches', async () => {
    await cp.request('POST', CTR, { body: container('jp') });
    const res = await cp.request('PATCH', `${CTR}/jp`, {
      body: [
        { op: 'test', path: '/spec/image', value: 'busybox' },
        { op: 'add', path: '/metadata/labels', value: { a: 'b' } },
      ],
      contentType: 'application/json-patch+json',
    });
    expect(res.status).toBe(200);
    expect(res.body.metadata.labels).toEqual({ a: 'b' });
  });

  it('treats a resourceVersion in a patch as a precondition', async () => {
    await cp.request('POST', CTR, { body: container('prc') });
    const res = await cp.request('PATCH', `${CTR}/prc`, { body: { metadata: { resourceVersion: '1' }, spec: { image: 'x' } }, contentType: 'application/merge-patch+json' });
    expect(res.status).toBe(409);
  });

  it('answers 404 when patching a missing object', async () => {
    const res = await cp.request('PATCH', `${CTR}/missing`, { body: { spec: {} }, contentType: 'application/merge-patch+json' });
    expect(res.status).toBe(404);
  });
});

describe('server-side apply', () => {
  it('creates on first apply (201), then updates (200) and records managedFields', async () => {
    const c1 = await cp.request('PATCH', `${CTR}/ssa?fieldManager=alice`, { body: container('ssa', { labels: { app: 'x' } }), contentType: APPLY });
    expect(c1.status).toBe(201);
    const c2 = await cp.request('PATCH', `${CTR}/ssa?fieldManager=alice`, { body: container('ssa', { labels: { app: 'y' } }), contentType: APPLY });
    expect(c2.status).toBe(200);
    expect(c2.body.metadata.labels).toEqual({ app: 'y' });
    const mf = c2.body.metadata.managedFields;
    expect(mf).toEqual(expect.arrayContaining([expect.objectContaining({ manager: 'alice', operation: 'Apply', fieldsType: 'FieldsV1' })]));
  });

  it('accepts real YAML bodies', async () => {
    const yaml = 'apiVersion: berth.dev/v1\nkind: Container\nmetadata:\n  name: ssa-yaml\nspec:\n  image: busybox\n';
    const res = await cp.request('PATCH', `${CTR}/ssa-yaml?fieldManager=yaml`, { raw: yaml, contentType: APPLY });
    expect(res.status).toBe(201);
    expect(res.body.spec.image).toBe('busybox');
  });

  it('removes fields the manager stops applying', async () => {
    await cp.request('PATCH', `${CTR}/ssa-rm?fieldManager=bob`, { body: container('ssa-rm', { spec: { workingDir: '/w' } }), contentType: APPLY });
    const res = await cp.request('PATCH', `${CTR}/ssa-rm?fieldManager=bob`, { body: container('ssa-rm'), contentType: APPLY });
    expect(res.body.spec.workingDir).toBeUndefined();
  });

  it('reports a conflict with another manager, and force takes the field', async () => {
    await cp.request('PATCH', `${CTR}/ssa-c?fieldManager=one`, { body: container('ssa-c'), contentType: APPLY });
    const conflict = await cp.request('PATCH', `${CTR}/ssa-c?fieldManager=two`, { body: container('ssa-c', { spec: { image: 'other' } }), contentType: APPLY });
    expect(conflict.status).toBe(409);
    expect(conflict.body.reason).toBe('Conflict');
    expect(conflict.body.message).toContain('conflict with "one"');
    expect(conflict.body.details.causes[0]).toMatchObject({ type: 'FieldManagerConflict', field: '.spec.image' });
    const forced = await cp.request('PATCH', `${CTR}/ssa-c?fieldManager=two&force=true`, { body: container('ssa-c', { spec: { image: 'other' } }), contentType: APPLY });
    expect(forced.status).toBe(200);
    expect(forced.body.spec.image).toBe('other');
  });

  it('refuses an apply whose name differs from the URL', async () => {
    const res = await cp.request('PATCH', `${CTR}/ssa-n?fieldManager=x`, { body: container('other-name'), contentType: APPLY });
    expect(res.status).toBe(400);
  });
});

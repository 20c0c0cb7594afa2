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

/** The collection's revision: unchanged means nothing was stored. */
const revision = async () => (await cp.request('GET', CTR)).body.metadata.resourceVersion as string;

const deep = (n: number): unknown => (n === 0 ? 'x' : { a: deep(n - 1) });

const cases: { name: string; raw?: string; body?: unknown; contentType?: string; path?: string; method?: string; status: number; reason: string; message?: RegExp; field?: string }[] = [
  { name: 'malformed JSON', raw: '{"apiVersion": "berth.dev/v1", "kind":', status: 400, reason: 'BadRequest', message: /could not be decoded as JSON/ },
  { name: 'malformed YAML', raw: 'apiVersion: berth.dev/v1\nkind: [Container\n', contentType: 'application/yaml', status: 400, reason: 'BadRequest', message: /YAML/ },
  { name: 'a JSON array instead of an object', raw: '[1,2]', status: 400, reason: 'BadRequest' },
  { name: 'the wrong kind', body: { ...container('k'), kind: 'Volume' }, status: 400, reason: 'BadRequest', message: /do not match/ },
  { name: 'the wrong apiVersion', body: { ...container('k'), apiVersion: 'berth.dev/v2' }, status: 400, reason: 'BadRequest', message: /do not match/ },
  { name: 'an invalid name', body: container('Not_Valid'), status: 422, reason: 'Invalid', field: 'metadata.name' },
  { name: 'a missing name', body: { ...container('x'), metadata: {} }, status: 422, reason: 'Invalid', field: 'metadata.name' },
  { name: 'a missing required field', body: { ...container('req'), spec: { command: ['sh'] } }, status: 422, reason: 'Invalid', field: 'spec.image' },
  { name: 'an unsupported enum value', body: container('enum', { spec: { restartPolicy: 'Sometimes' } }), status: 422, reason: 'Invalid', field: 'spec.restartPolicy', message: /Unsupported value: "Sometimes"/ },
  { name: 'a wrong type', body: container('type', { spec: { stopGracePeriodSeconds: 'ten' } }), status: 422, reason: 'Invalid', field: 'spec.stopGracePeriodSeconds' },
  { name: 'an invalid label', body: container('lbl', { labels: { 'bad key!': 'v' } }), status: 422, reason: 'Invalid', field: 'metadata.labels' },
  { name: 'an unknown field under Strict', path: `${CTR}?fieldValidation=Strict`, body: container('unk', { spec: { colour: 'red' } }), status: 400, reason: 'BadRequest', message: /strict decoding error: unknown field "spec.colour"/ },
  { name: 'deep nesting', body: { ...container('deep'), metadata: { name: 'deep', annotations: {} }, extra: deep(500) }, status: 400, reason: 'BadRequest', message: /nested deeper/ },
  { name: 'an oversized body', raw: JSON.stringify({ ...container('big'), metadata: { name: 'big', annotations: { a: 'x'.repeat(3 * 1024 * 1024 + 10) } } }), status: 413, reason: 'RequestEntityTooLarge' },
  { name: 'an unsupported content type', raw: '<xml/>', contentType: 'application/xml', status: 415, reason: 'UnsupportedMediaType' },
  { name: 'a bad label selector', method: 'GET', path: `${CTR}?labelSelector=${encodeURIComponent('a in (b')}`, status: 400, reason: 'BadRequest' },
  { name: 'a bad fieldValidation value', path: `${CTR}?fieldValidation=Sloppy`, body: container('fv'), status: 400, reason: 'BadRequest' },
  { name: 'a bad dryRun value', path: `${CTR}?dryRun=Some`, body: container('dr'), status: 400, reason: 'BadRequest' },
  { name: 'an unknown resource', path: '/apis/berth.dev/v1/namespaces/default/widgets', body: container('w'), status: 404, reason: 'NotFound' },
  { name: 'POST to an object path', path: `${CTR}/some-name`, body: container('some-name'), status: 405, reason: 'MethodNotAllowed' },
];

describe('bad input gets the right Status and stores nothing', () => {
  it.each(cases)('$name → $status $reason', async (c) => {
    const before = await revision();
    const res = await cp.request(c.method ?? 'POST', c.path ?? CTR, {
      ...(c.raw !== undefined ? { raw: c.raw } : c.body !== undefined ? { body: c.body } : {}),
      ...(c.contentType ? { contentType: c.contentType } : {}),
    });
    expect(res.status).toBe(c.status);
    expect(res.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: c.status, reason: c.reason });
    if (c.message) expect(res.body.message).toMatch(c.message);
    if (c.field) expect(res.body.details.causes.map((x: any) => x.field)).toContain(c.field);
    expect(await revision()).toBe(before);
  });

  it('warns about unknown fields under Warn and drops them', async () => {
    const res = await cp.request('POST', `${CTR}?fieldValidation=Warn`, { body: container('warned', { spec: { colour: 'red' } }) });
    expect(res.status).toBe(201);
    expect(String(res.headers.warning)).toContain('unknown field \\"spec.colour\\"');
    expect(res.body.spec.colour).toBeUndefined();
  });

  it('refuses bad patches and keeps the object as it was', async () => {
    await cp.request('POST', CTR, { body: container('patched') });
    const before = await revision();
    const smp = await cp.request('PATCH', `${CTR}/patched`, { body: { spec: { image: 'x' } }, contentType: 'application/strategic-merge-patch+json' });
    expect(smp.status).toBe(415);
    expect(smp.body.message).toContain('application/merge-patch+json');
    const badJsonPatch = await cp.request('PATCH', `${CTR}/patched`, { body: { op: 'replace' }, contentType: 'application/json-patch+json' });
    expect(badJsonPatch.status).toBe(400);
    const failing = await cp.request('PATCH', `${CTR}/patched`, { body: [{ op: 'test', path: '/spec/image', value: 'nope' }], contentType: 'application/json-patch+json' });
    expect(failing.status).toBe(422);
    const invalidResult = await cp.request('PATCH', `${CTR}/patched`, { body: { spec: { restartPolicy: 'Sometimes' } }, contentType: 'application/merge-patch+json' });
    expect(invalidResult.status).toBe(422);
    const noManager = await cp.request('PATCH', `${CTR}/patched`, { body: container('patched'), contentType: 'application/apply-patch+yaml' });
    expect(noManager.status).toBe(400);
    expect(await revision()).toBe(before);
    expect((await cp.request('GET', `${CTR}/patched`)).body.spec.image).toBe('busybox');
  });

  it('keeps serving after bad requests', async () => {
    expect((await cp.request('GET', '/healthz')).status).toBe(200);
    expect((await cp.request('POST', CTR, { body: container('after-bad') })).status).toBe(201);
  });
});

describe('authentication', () => {
  it('answers 401 Unauthorized without a token or with a wrong one', async () => {
    for (const token of [null, 'wrong-token']) {
      const res = await cp.request('GET', CTR, { token });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    }
  });

  it('serves health and version without a token', async () => {
    expect((await cp.request('GET', '/healthz', { token: null })).status).toBe(200);
    expect((await cp.request('GET', '/version', { token: null })).body.major).toBe('1');
  });
});

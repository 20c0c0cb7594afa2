/**
 * core/v1 Secrets, which Images reference for registry credentials: what
 * `kubectl create secret docker-registry` sends works, `stringData` is merged into
 * `data` and never stored, `type` and immutable data stay as they were, and bad
 * secrets are refused with one cause per field, storing nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';

const SECRETS = '/api/v1/namespaces/default/secrets';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

const secret = (name: string, extra: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, ...extra });

describe('secrets', () => {
  it('stores what kubectl create secret docker-registry sends, and kubectl reads it back', async () => {
    const made = await cp.kubectl(['create', 'secret', 'docker-registry', 'regcred', '--docker-server=127.0.0.1:5000', '--docker-username=alice', '--docker-password=s3cret']);
    expect(made.stderr).toBe('');
    expect(made.stdout).toBe('secret/regcred created\n');
    const got = await cp.request('GET', `${SECRETS}/regcred`);
    expect(got.body.type).toBe('kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(got.body.data['.dockerconfigjson'], 'base64').toString());
    expect(config.auths['127.0.0.1:5000']).toMatchObject({ username: 'alice', password: 's3cret', auth: b64('alice:s3cret') });

    const table = await cp.kubectl(['get', 'secrets']);
    expect(table.stdout).toMatch(/^NAME\s+TYPE\s+DATA\s+AGE\nregcred\s+kubernetes\.io\/dockerconfigjson\s+1\s+\S+\n$/);
    const jsonpath = await cp.kubectl(['get', 'secret', 'regcred', '-o', 'jsonpath={.type}']);
    expect(jsonpath.stdout).toBe('kubernetes.io/dockerconfigjson');
  });

  it('merges stringData into data as base64 and never stores stringData', async () => {
    const res = await cp.request('POST', SECRETS, { body: secret('plain', { data: { a: b64('from data'), b: b64('old') }, stringData: { b: 'new', c: 'see' } }) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ type: 'Opaque', data: { a: b64('from data'), b: b64('new'), c: b64('see') } });
    expect(res.body.stringData).toBeUndefined();
    const patched = await cp.request('PATCH', `${SECRETS}/plain`, { body: { stringData: { d: 'dee' } }, contentType: 'application/merge-patch+json' });
    expect(patched.status).toBe(200);
    expect(patched.body.data).toEqual({ a: b64('from data'), b: b64('new'), c: b64('see'), d: b64('dee') });
    expect((await cp.request('GET', `${SECRETS}/plain`)).body.stringData).toBeUndefined();
  });

  it('keeps type and the data of an immutable secret', async () => {
    await cp.request('POST', SECRETS, { body: secret('frozen', { data: { k: b64('v') }, immutable: true }) });
    const merge = 'application/merge-patch+json';
    const data = await cp.request('PATCH', `${SECRETS}/frozen`, { body: { data: { k: b64('w') } }, contentType: merge });
    expect(data.status).toBe(422);
    expect(data.body.details.causes).toEqual([{ reason: 'FieldValueForbidden', field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' }]);
    const type = await cp.request('PATCH', `${SECRETS}/frozen`, { body: { type: 'kubernetes.io/basic-auth' }, contentType: merge });
    expect(type.status).toBe(422);
    expect(type.body.details.causes[0]).toMatchObject({ field: 'type' });
    // metadata stays editable
    expect((await cp.request('PATCH', `${SECRETS}/frozen`, { body: { metadata: { labels: { a: 'b' } } }, contentType: merge })).status).toBe(200);
    expect((await cp.request('GET', `${SECRETS}/frozen`)).body.data).toEqual({ k: b64('v') });
  });

  it.each([
    ['a key with a slash', secret('bad-key', { data: { 'a/b': b64('x') } }), 'data[a/b]'],
    ['a value that is not base64', secret('bad-b64', { data: { k: '%%%' } }), 'data.k'],
    ['a docker config secret without .dockerconfigjson', secret('bad-docker', { type: 'kubernetes.io/dockerconfigjson', data: { other: b64('{}') } }), 'data[.dockerconfigjson]'],
    ['a docker config that is not JSON', secret('bad-json', { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{nope') } }), 'data[.dockerconfigjson]'],
  ])('refuses %s with 422 naming the field, storing nothing', async (_what, body, field) => {
    const res = await cp.request('POST', SECRETS, { body });
    expect(res.status).toBe(422);
    expect(res.body.details.causes.map((c: { field: string }) => c.field)).toContain(field);
    expect((await cp.request('GET', `${SECRETS}/${(body.metadata as { name: string }).name}`)).status).toBe(404);
  });
});

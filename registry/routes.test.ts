import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ApiResponse, type ControlPlane } from '../test/harness/control-plane.ts';

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane({ storage: 'memory' });
});
afterAll(async () => {
  await cp?.stop();
});

const codeOf = (r: ApiResponse): string | undefined => (r.body as { errors?: { code: string }[] }).errors?.[0]?.code;
const blobFiles = async (): Promise<string[]> => (await readdir(join(cp.dataDir, 'images', 'blobs', 'sha256'))).sort();
const ingestFiles = async (): Promise<string[]> => readdir(join(cp.dataDir, 'images', 'ingest'));

async function pushBlob(name: string, content: string | Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha(content);
  const r = await cp.request('POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { raw: content, contentType: 'application/octet-stream' });
  expect(r.status).toBe(201);
  return { digest, size: Buffer.byteLength(content) };
}

/** Pushes a config and a layer and returns an OCI manifest referencing them. */
async function pushImageBlobs(name: string, seed: string, extra: Record<string, unknown> = {}): Promise<Buffer> {
  const config = await pushBlob(name, JSON.stringify({ architecture: 'amd64', os: 'linux', seed, rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = await pushBlob(name, `layer of ${seed}`);
  return Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, ...config }, layers: [{ mediaType: LAYER, ...layer }], ...extra,
  }));
}

async function putManifest(name: string, ref: string, body: Buffer, contentType = OCI_MANIFEST): Promise<ApiResponse> {
  return cp.request('PUT', `/v2/${name}/manifests/${ref}`, { raw: body, contentType });
}

describe('authentication', () => {
  it('challenges a request without credentials with the bearer realm of the token endpoint', async () => {
    const r = await cp.request('GET', '/v2/', { token: null });
    expect(r.status).toBe(401);
    expect(codeOf(r)).toBe('UNAUTHORIZED');
    expect(r.headers['www-authenticate']).toBe(`Bearer realm="https://127.0.0.1:${cp.server.port}/v2/token",service="berth"`);
    expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('accepts the API bearer token directly', async () => {
    const r = await cp.request('GET', '/v2/');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({});
  });

  it('names the scope in the challenge of a repository request', async () => {
    const r = await cp.request('GET', '/v2/team/app/tags/list', { token: null });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('scope="repository:team/app:pull"');
  });

  it('issues a scoped token for Basic auth with an API token as the password, which then authorizes requests', async () => {
    const basic = Buffer.from(`anyone:${cp.server.token}`).toString('base64');
    const r = await cp.request('GET', '/v2/token?service=berth&scope=repository:team/tok:pull,push', { token: null, headers: { authorization: `Basic ${basic}` } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['access_token', 'expires_in', 'issued_at', 'token']);
    expect(r.body.access_token).toBe(r.body.token);
    expect(r.body.expires_in).toBe(300);
    expect(Date.parse(r.body.issued_at)).toBeGreaterThan(Date.now() - 60_000);
    const content = 'via registry token';
    const push = await cp.request('POST', `/v2/team/tok/blobs/uploads/?digest=${sha(content)}`, { token: r.body.token, raw: content });
    expect(push.status).toBe(201);
    // the token is for team/tok only: another repository needs a new token
    const other = await cp.request('GET', '/v2/team/other/tags/list', { token: r.body.token });
    expect(other.status).toBe(401);
    expect(other.headers['www-authenticate']).toContain('error="insufficient_scope"');
  });

  it('issues tokens to the OAuth2 password grant', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: 'x', password: cp.server.token, service: 'berth', scope: 'repository:a/b:pull' });
    const r = await cp.request('POST', '/v2/token', { token: null, raw: form.toString(), contentType: 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(200);
    expect(typeof r.body.access_token).toBe('string');
  });

  it.each<{ name: string; headers: Record<string, string> }>([
    { name: 'no credentials', headers: {} },
    { name: 'a wrong password', headers: { authorization: `Basic ${Buffer.from('x:wrong').toString('base64')}` } },
    { name: 'a wrong bearer token', headers: { authorization: 'Bearer nope' } },
  ])('refuses a token request with $name', async ({ headers }) => {
    const r = await cp.request('GET', '/v2/token?service=berth', { token: null, headers });
    expect(r.status).toBe(401);
    expect(codeOf(r)).toBe('UNAUTHORIZED');
  });

  it('refuses a forged or tampered registry token', async () => {
    const basic = Buffer.from(`x:${cp.server.token}`).toString('base64');
    const { body } = await cp.request('GET', '/v2/token?scope=repository:a/b:pull', { token: null, headers: { authorization: `Basic ${basic}` } });
    const [h, p] = (body.token as string).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.access = [{ type: 'repository', name: 'a/b', actions: ['*'] }];
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${(body.token as string).split('.')[2]}`;
    const r = await cp.request('DELETE', `/v2/a/b/manifests/sha256:${'0'.repeat(64)}`, { token: forged });
    expect(r.status).toBe(401);
  });
});

describe('blob uploads', () => {
  it('stores a monolithic upload and serves it by digest, whole and by range', async () => {
    const content = 'hello, registry';
    const digest = sha(content);
    const r = await cp.request('POST', `/v2/team/mono/blobs/uploads/?digest=${digest}`, { raw: content });
    expect(r.status).toBe(201);
    expect(r.headers.location).toBe(`/v2/team/mono/blobs/${digest}`);
    expect(r.headers['docker-content-digest']).toBe(digest);
    const head = await cp.request('HEAD', `/v2/team/mono/blobs/${digest}`);
    expect([head.status, head.headers['content-length'], head.headers['docker-content-digest']]).toEqual([200, String(content.length), digest]);
    const get = await cp.request('GET', `/v2/team/mono/blobs/${digest}`);
    expect(get.text).toBe(content);
    const part = await cp.request('GET', `/v2/team/mono/blobs/${digest}`, { headers: { range: 'bytes=7-14' } });
    expect([part.status, part.text, part.headers['content-range']]).toEqual([206, 'registry', `bytes 7-14/${content.length}`]);
    const bad = await cp.request('GET', `/v2/team/mono/blobs/${digest}`, { headers: { range: 'bytes=100-' } });
    expect([bad.status, codeOf(bad)]).toEqual([416, 'RANGE_INVALID']);
  });

  it('assembles a chunked upload, reports its progress, and rejects a chunk out of order', async () => {
    const start = await cp.request('POST', '/v2/team/chunked/blobs/uploads/');
    expect(start.status).toBe(202);
    expect(start.headers.range).toBe('0-0');
    const location = start.headers.location as string;
    expect(location).toMatch(/^\/v2\/team\/chunked\/blobs\/uploads\/[0-9a-f-]{36}$/);
    expect(start.headers['docker-upload-uuid']).toBe(location.split('/').pop());
    const p1 = await cp.request('PATCH', location, { raw: '0123456789', contentType: 'application/octet-stream', headers: { 'content-range': '0-9' } });
    expect([p1.status, p1.headers.range]).toEqual([202, '0-9']);
    const outOfOrder = await cp.request('PATCH', location, { raw: 'xx', headers: { 'content-range': '20-21' } });
    expect([outOfOrder.status, codeOf(outOfOrder), outOfOrder.headers.range]).toEqual([416, 'RANGE_INVALID', '0-9']);
    const p2 = await cp.request('PATCH', location, { raw: 'abcdef' });
    expect(p2.headers.range).toBe('0-15');
    const status = await cp.request('GET', location);
    expect([status.status, status.headers.range]).toEqual([204, '0-15']);
    const digest = sha('0123456789abcdefXYZ');
    const done = await cp.request('PUT', `${location}?digest=${digest}`, { raw: 'XYZ' });
    expect([done.status, done.headers['docker-content-digest']]).toEqual([201, digest]);
    expect((await cp.request('GET', `/v2/team/chunked/blobs/${digest}`)).text).toBe('0123456789abcdefXYZ');
    expect(await ingestFiles()).toEqual([]);
  });

  it('drops an upload whose content does not match the digest, storing nothing', async () => {
    const before = await blobFiles();
    const start = await cp.request('POST', '/v2/team/bad/blobs/uploads/');
    const location = start.headers.location as string;
    await cp.request('PATCH', location, { raw: 'some bytes' });
    const r = await cp.request('PUT', `${location}?digest=${sha('other bytes')}`);
    expect([r.status, codeOf(r)]).toEqual([400, 'DIGEST_INVALID']);
    const gone = await cp.request('GET', location);
    expect([gone.status, codeOf(gone)]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
    expect(await blobFiles()).toEqual(before);
    expect(await ingestFiles()).toEqual([]);
  });

  it('cancels an upload on DELETE and removes its data', async () => {
    const start = await cp.request('POST', '/v2/team/cancel/blobs/uploads/');
    const location = start.headers.location as string;
    await cp.request('PATCH', location, { raw: 'partial' });
    expect(await ingestFiles()).toHaveLength(1);
    expect((await cp.request('DELETE', location)).status).toBe(204);
    expect(codeOf(await cp.request('PATCH', location, { raw: 'more' }))).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(await ingestFiles()).toEqual([]);
  });

  it.each([
    { name: 'a malformed digest', path: '/v2/team/x/blobs/uploads/?digest=sha256:xyz', want: [400, 'DIGEST_INVALID'] },
    { name: 'another digest algorithm', path: `/v2/team/x/blobs/uploads/?digest=sha512:${'a'.repeat(128)}`, want: [400, 'DIGEST_INVALID'] },
    { name: 'an invalid repository name', path: '/v2/Team/X/blobs/uploads/', want: [400, 'NAME_INVALID'] },
  ])('rejects $name', async ({ path, want }) => {
    const r = await cp.request('POST', path, { raw: 'x' });
    expect([r.status, codeOf(r)]).toEqual(want);
  });

  it('answers BLOB_UNKNOWN for a blob the repository does not hold, even if another one does', async () => {
    const { digest } = await pushBlob('team/holder', 'private blob');
    const r = await cp.request('GET', `/v2/team/stranger/blobs/${digest}`);
    expect([r.status, codeOf(r)]).toEqual([404, 'BLOB_UNKNOWN']);
  });

  it('mounts a blob from another repository without an upload, and starts an upload when it cannot', async () => {
    const { digest } = await pushBlob('team/source', 'shared layer');
    const before = await blobFiles();
    const r = await cp.request('POST', `/v2/team/target/blobs/uploads/?mount=${digest}&from=team/source`);
    expect([r.status, r.headers.location, r.headers['docker-content-digest']]).toEqual([201, `/v2/team/target/blobs/${digest}`, digest]);
    expect((await cp.request('HEAD', `/v2/team/target/blobs/${digest}`)).status).toBe(200);
    expect(await blobFiles()).toEqual(before);
    const miss = await cp.request('POST', `/v2/team/target/blobs/uploads/?mount=${sha('absent')}&from=team/source`);
    expect(miss.status).toBe(202);
    await cp.request('DELETE', miss.headers.location as string);
  });

  it('unlinks a blob on DELETE', async () => {
    const { digest } = await pushBlob('team/del-blob', 'to delete');
    const r = await cp.request('DELETE', `/v2/team/del-blob/blobs/${digest}`);
    expect(r.status).toBe(202);
    expect(codeOf(await cp.request('GET', `/v2/team/del-blob/blobs/${digest}`))).toBe('BLOB_UNKNOWN');
    expect(codeOf(await cp.request('DELETE', `/v2/team/del-blob/blobs/${digest}`))).toBe('BLOB_UNKNOWN');
  });
});

describe('manifests', () => {
  it('stores a manifest by tag and serves it by tag and digest with its media type and digest', async () => {
    const body = await pushImageBlobs('team/app', 'v1');
    const digest = sha(body);
    const put = await putManifest('team/app', 'v1', body);
    expect([put.status, put.headers.location, put.headers['docker-content-digest']]).toEqual([201, `/v2/team/app/manifests/${digest}`, digest]);
    for (const ref of ['v1', digest]) {
      const get = await cp.request('GET', `/v2/team/app/manifests/${ref}`, { accept: OCI_MANIFEST });
      expect([get.status, get.headers['content-type'], get.headers['docker-content-digest'], get.text]).toEqual([200, OCI_MANIFEST, digest, body.toString()]);
      const head = await cp.request('HEAD', `/v2/team/app/manifests/${ref}`);
      expect([head.status, head.headers['content-length']]).toEqual([200, String(body.length)]);
    }
  });

  it('stores an index whose manifests the repository holds', async () => {
    const child = await pushImageBlobs('team/multi', 'amd64');
    await putManifest('team/multi', sha(child), child);
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: sha(child), size: child.length, platform: { os: 'linux', architecture: 'amd64' } }],
    }));
    expect((await putManifest('team/multi', 'latest', index, OCI_INDEX)).status).toBe(201);
    const missing = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha('nope'), size: 4 }] }));
    const r = await putManifest('team/multi', 'broken', missing, OCI_INDEX);
    expect([r.status, codeOf(r)]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
  });

  it('refuses a manifest whose blobs the repository does not hold, writing nothing', async () => {
    const before = await blobFiles();
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha('no config'), size: 9 }, layers: [],
    }));
    const r = await putManifest('team/orphan', 'v1', body);
    expect([r.status, codeOf(r)]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
    expect(await blobFiles()).toEqual(before);
    expect(codeOf(await cp.request('GET', '/v2/team/orphan/manifests/v1'))).toBe('NAME_UNKNOWN');
  });

  it.each([
    { name: 'a body that is not JSON', body: Buffer.from('{not json'), type: OCI_MANIFEST, want: [400, 'MANIFEST_INVALID'] },
    { name: 'a schema 1 manifest', body: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] })), type: 'application/vnd.docker.distribution.manifest.v1+prettyjws', want: [400, 'MANIFEST_INVALID'] },
    { name: 'a media type that contradicts the header', body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })), type: OCI_MANIFEST, want: [400, 'MANIFEST_INVALID'] },
    { name: 'a non-manifest media type', body: Buffer.from('{}'), type: 'text/plain', want: [400, 'MANIFEST_INVALID'] },
    { name: 'a descriptor with a bad digest', body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: 'md5:x', size: 1 }, layers: [] })), type: OCI_MANIFEST, want: [400, 'MANIFEST_INVALID'] },
    { name: 'a body over 4 MiB', body: Buffer.alloc(5 * 1024 * 1024, 0x20), type: OCI_MANIFEST, want: [413, 'MANIFEST_INVALID'] },
  ])('rejects $name cleanly, storing nothing', async ({ body, type, want }) => {
    const before = await blobFiles();
    const r = await putManifest('team/hostile', 'v1', body, type);
    expect([r.status, codeOf(r)]).toEqual(want);
    expect(await blobFiles()).toEqual(before);
    expect(await ingestFiles()).toEqual([]);
  });

  it('rejects a manifest pushed by a digest it does not have', async () => {
    const body = await pushImageBlobs('team/dig', 'x');
    const r = await putManifest('team/dig', sha('something else'), body);
    expect([r.status, codeOf(r)]).toEqual([400, 'DIGEST_INVALID']);
  });

  it.each([
    { name: 'an unknown repository', path: '/v2/team/none/manifests/v1', want: [404, 'NAME_UNKNOWN'] },
    { name: 'an unknown tag', path: '/v2/team/app/manifests/nope', want: [404, 'MANIFEST_UNKNOWN'] },
    { name: 'an unknown digest', path: `/v2/team/app/manifests/${sha('x')}`, want: [404, 'MANIFEST_UNKNOWN'] },
    { name: 'a bad digest', path: '/v2/team/app/manifests/sha256:123', want: [400, 'DIGEST_INVALID'] },
    { name: 'an invalid name', path: '/v2/team/App/manifests/v1', want: [400, 'NAME_INVALID'] },
  ])('answers a GET of $name', async ({ path, want }) => {
    const r = await cp.request('GET', path);
    expect([r.status, codeOf(r)]).toEqual(want);
  });

  it('answers UNSUPPORTED for a method an endpoint does not have', async () => {
    const r = await cp.request('PATCH', '/v2/team/app/manifests/v1', { raw: '{}' });
    expect([r.status, codeOf(r), r.headers.allow]).toEqual([405, 'UNSUPPORTED', 'GET, HEAD, PUT, DELETE']);
  });

  it('deletes a tag, keeping the manifest, and a manifest by digest with its tags', async () => {
    const body = await pushImageBlobs('team/del', 'd');
    const digest = sha(body);
    await putManifest('team/del', 'a', body);
    await putManifest('team/del', 'b', body);
    expect((await cp.request('DELETE', '/v2/team/del/manifests/a')).status).toBe(202);
    expect(codeOf(await cp.request('GET', '/v2/team/del/manifests/a'))).toBe('MANIFEST_UNKNOWN');
    expect((await cp.request('GET', `/v2/team/del/manifests/${digest}`)).status).toBe(200);
    expect((await cp.request('DELETE', `/v2/team/del/manifests/${digest}`)).status).toBe(202);
    expect(codeOf(await cp.request('GET', '/v2/team/del/manifests/b'))).toBe('MANIFEST_UNKNOWN');
    expect(codeOf(await cp.request('DELETE', `/v2/team/del/manifests/${digest}`))).toBe('MANIFEST_UNKNOWN');
  });
});

describe('listing', () => {
  it('lists tags page by page with a Link to the next page', async () => {
    const body = await pushImageBlobs('team/tags', 't');
    for (const t of ['e', 'a', 'd', 'c', 'b']) await putManifest('team/tags', t, body);
    const all = await cp.request('GET', '/v2/team/tags/tags/list');
    expect(all.body).toEqual({ name: 'team/tags', tags: ['a', 'b', 'c', 'd', 'e'] });
    expect(all.headers.link).toBeUndefined();
    const p1 = await cp.request('GET', '/v2/team/tags/tags/list?n=2');
    expect(p1.body.tags).toEqual(['a', 'b']);
    expect(p1.headers.link).toBe('</v2/team/tags/tags/list?n=2&last=b>; rel="next"');
    const p2 = await cp.request('GET', '/v2/team/tags/tags/list?n=2&last=b');
    expect(p2.body.tags).toEqual(['c', 'd']);
    const p3 = await cp.request('GET', '/v2/team/tags/tags/list?n=2&last=d');
    expect([p3.body.tags, p3.headers.link]).toEqual([['e'], undefined]);
    const bad = await cp.request('GET', '/v2/team/tags/tags/list?n=-1');
    expect([bad.status, codeOf(bad)]).toEqual([400, 'PAGINATION_NUMBER_INVALID']);
    expect(codeOf(await cp.request('GET', '/v2/team/nothing/tags/list'))).toBe('NAME_UNKNOWN');
  });

  it('lists repositories in the catalog page by page', async () => {
    await pushBlob('cat/a', 'a');
    await pushBlob('cat/b', 'b');
    const all = await cp.request('GET', '/v2/_catalog');
    expect(all.body.repositories).toEqual(expect.arrayContaining(['cat/a', 'cat/b']));
    expect([...all.body.repositories].sort()).toEqual(all.body.repositories);
    const p1 = await cp.request('GET', '/v2/_catalog?n=1&last=cat/a');
    expect(p1.body.repositories).toEqual(['cat/b']);
    expect(p1.headers.link).toBe('</v2/_catalog?n=1&last=cat%2Fb>; rel="next"');
  });
});

describe('referrers', () => {
  it('lists the manifests whose subject is a digest, filtered by artifactType', async () => {
    const image = await pushImageBlobs('team/ref', 'subject');
    const subject = { mediaType: OCI_MANIFEST, digest: sha(image), size: image.length };
    const empty = await pushBlob('team/ref', '{}');
    const sig = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty }, layers: [], subject, annotations: { who: 'me' },
    }));
    const sbom = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sbom',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty }, layers: [], subject,
    }));
    // referrers may arrive before their subject
    const r1 = await putManifest('team/ref', sha(sig), sig);
    expect([r1.status, r1.headers['oci-subject']]).toEqual([201, subject.digest]);
    await putManifest('team/ref', sha(sbom), sbom);
    await putManifest('team/ref', 'v1', image);
    const all = await cp.request('GET', `/v2/team/ref/referrers/${subject.digest}`);
    expect(all.headers['content-type']).toBe(OCI_INDEX);
    expect(all.body.manifests).toHaveLength(2);
    expect(all.body.manifests).toContainEqual({ mediaType: OCI_MANIFEST, digest: sha(sig), size: sig.length, artifactType: 'application/vnd.example.sig', annotations: { who: 'me' } });
    const only = await cp.request('GET', `/v2/team/ref/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    expect(only.headers['oci-filters-applied']).toBe('artifactType');
    expect(only.body.manifests.map((m: { digest: string }) => m.digest)).toEqual([sha(sbom)]);
    const none = await cp.request('GET', `/v2/team/ref/referrers/${sha('nothing')}`);
    expect([none.status, none.body.manifests]).toEqual([200, []]);
  });
});

describe('the server around the registry', () => {
  it('counts registry requests and bytes served in /metrics', async () => {
    const { digest } = await pushBlob('team/metrics', 'counted bytes');
    await cp.request('GET', `/v2/team/metrics/blobs/${digest}`);
    const m = await cp.request('GET', '/metrics');
    expect(m.text).toMatch(/berth_registry_requests_total\{method="GET",route="blob",code="200"\} \d+/);
    expect(m.text).toMatch(/berth_registry_sent_bytes_total\{route="blob"\} \d+/);
    expect(m.text).toMatch(/berth_registry_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="upload"\}/);
  });

  it('keeps the API behind its own authentication', async () => {
    const r = await cp.request('GET', '/api/v1/namespaces', { token: null });
    expect(r.status).toBe(401);
    expect(r.body.kind).toBe('Status');
  });

  it('keeps repositories, tags and manifests across a restart (refs.json)', async () => {
    const body = await pushImageBlobs('team/persist', 'p');
    await putManifest('team/persist', 'v1', body);
    await cp.restart();
    const get = await cp.request('GET', '/v2/team/persist/manifests/v1');
    expect([get.status, get.headers['docker-content-digest']]).toEqual([200, sha(body)]);
  });
});

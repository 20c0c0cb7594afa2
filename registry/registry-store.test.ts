/**
 * The registry over a real image store (no API server): blobs shared with local
 * images, garbage collection roots, abandoned uploads, and the authorization policy.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ImageStore } from '../runtime/images/index.ts';
import { buildBusyboxImage } from '../test/fixtures/busybox-image.ts';
import { createRegistry, type BuiltinRegistry, type RegistryOptions } from './routes.ts';

const ADMIN = 'admin-token';
const VIEWER = 'viewer-token';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Fixture {
  readonly dir: string;
  readonly images: ImageStore;
  readonly registry: BuiltinRegistry;
  readonly host: string;
  request(method: string, path: string, o?: { token?: string; authorization?: string; body?: Buffer | string; contentType?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>;
  blobFiles(): Promise<string[]>;
}

async function start(opts: RegistryOptions = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const images = new ImageStore({ root: join(dir, 'images') });
  const registry = await createRegistry({
    images,
    tokens: new Map([[ADMIN, { user: 'admin', groups: ['system:masters'] }], [VIEWER, { user: 'viewer', groups: [] }]]),
    tokenKeyPath: join(dir, 'registry', 'token.key'),
    logger: pino({ level: 'silent' }),
    metricsRegistry: new Registry(),
  }, opts);
  const app = express();
  app.use(registry.router);
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    dir, images, registry, host: `127.0.0.1:${port}`,
    request: (method, path, o = {}) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers: {
        authorization: o.authorization ?? `Bearer ${o.token ?? ADMIN}`, ...(o.contentType && { 'content-type': o.contentType }),
      } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(o.body);
    }),
    blobFiles: async () => (await readdir(join(dir, 'images', 'blobs', 'sha256'))).sort(),
  };
}

/** Pushes the busybox fixture's blobs and manifest to `name:tag` over HTTP. */
async function pushBusybox(f: Fixture, name: string, tag: string): Promise<{ manifestDigest: string; layerDigest: string }> {
  const img = await buildBusyboxImage(join(f.dir, `fixture-${tag}`), { tag });
  const { readFile } = await import('node:fs/promises');
  const blob = (d: string) => readFile(join(img.layoutDir, 'blobs', 'sha256', d.slice(7)));
  for (const d of [img.configDigest, img.layerDigest]) {
    const r = await f.request('POST', `/v2/${name}/blobs/uploads/?digest=${d}`, { body: await blob(d) });
    expect(r.status).toBe(201);
  }
  const m = await f.request('PUT', `/v2/${name}/manifests/${tag}`, { body: await blob(img.manifestDigest), contentType: 'application/vnd.oci.image.manifest.v1+json' });
  expect(m.status).toBe(201);
  return { manifestDigest: img.manifestDigest, layerDigest: img.layerDigest };
}

describe('the registry over the node image store', () => {
  it('stores a blob shared by a local image and a pushed one once, and a push makes no local image', async () => {
    const f = await start();
    const img = await buildBusyboxImage(join(f.dir, 'local'), { tag: '1' });
    await f.images.importImage(img.ociArchive, { tags: ['busybox:1'] });
    const before = await f.blobFiles();
    await pushBusybox(f, 'team/busybox', '1');
    expect(await f.blobFiles()).toEqual(before);
    expect((await f.images.listImages()).map((i) => i.repoTags)).toEqual([['docker.io/library/busybox:1']]);
  });

  it('keeps the registry\'s blobs when the local image goes, and collects them when the manifest goes', async () => {
    const f = await start({ unreferencedBlobGraceMs: 0 });
    const img = await buildBusyboxImage(join(f.dir, 'local'), { tag: '1' });
    await f.images.importImage(img.ociArchive, { tags: ['busybox:1'] });
    const pushed = await pushBusybox(f, 'team/busybox', '1');
    await f.images.removeImage('busybox:1');
    expect(await f.blobFiles()).toHaveLength(3);
    expect((await f.request('GET', `/v2/team/busybox/blobs/${pushed.layerDigest}`)).status).toBe(200);

    expect((await f.request('DELETE', `/v2/team/busybox/manifests/${pushed.manifestDigest}`)).status).toBe(202);
    // the delete started a collection already; this one runs after it
    await f.registry.collectGarbage();
    expect(await f.blobFiles()).toEqual([]);
    expect(f.registry.repositories.names()).toEqual([]);
  });

  it('keeps a blob uploaded without a manifest through the grace period', async () => {
    const f = await start({ unreferencedBlobGraceMs: 3_600_000 });
    const r = await f.request('POST', `/v2/team/wip/blobs/uploads/?digest=${sha('wip')}`, { body: 'wip' });
    expect(r.status).toBe(201);
    expect(await f.registry.collectGarbage()).toEqual({ unlinkedBlobs: 0, removedBlobs: 0 });
    expect((await f.request('GET', `/v2/team/wip/blobs/${sha('wip')}`)).text).toBe('wip');
  });

  it('removes uploads left idle past the timeout', async () => {
    const f = await start({ uploadIdleTimeoutMs: 0 });
    const r = await f.request('POST', '/v2/team/idle/blobs/uploads/');
    await f.request('PATCH', r.headers.location!, { body: 'abandoned' });
    expect(await readdir(join(f.dir, 'images', 'ingest'))).toHaveLength(1);
    expect(await f.registry.uploads.sweep()).toHaveLength(1);
    expect(await readdir(join(f.dir, 'images', 'ingest'))).toEqual([]);
    expect((await f.request('GET', r.headers.location!)).status).toBe(404);
  });

  it('lets a user outside system:masters pull but denies it push and delete', async () => {
    const f = await start();
    const pushed = await pushBusybox(f, 'team/busybox', '1');
    expect((await f.request('GET', '/v2/team/busybox/manifests/1', { token: VIEWER })).status).toBe(200);
    const push = await f.request('POST', '/v2/team/busybox/blobs/uploads/', { token: VIEWER });
    expect([push.status, JSON.parse(push.text).errors[0].code]).toEqual([403, 'DENIED']);
    const del = await f.request('DELETE', `/v2/team/busybox/manifests/${pushed.manifestDigest}`, { token: VIEWER });
    expect([del.status, JSON.parse(del.text).errors[0].code]).toEqual([403, 'DENIED']);
    const catalog = await f.request('GET', '/v2/_catalog', { token: VIEWER });
    expect(catalog.status).toBe(403);
  });

  it('grants a token only the actions the policy allows; a narrow token is widened by a new one or denied', async () => {
    const f = await start();
    const tokenFor = async (secret: string, scope: string): Promise<string> => {
      const r = await f.request('GET', `/v2/token?service=berth&scope=${scope}`, { authorization: `Basic ${Buffer.from(`u:${secret}`).toString('base64')}` });
      expect(r.status).toBe(200);
      return JSON.parse(r.text).token as string;
    };
    const viewer = await tokenFor(VIEWER, 'repository:team/x:pull,push');
    expect(JSON.parse(Buffer.from(viewer.split('.')[1]!, 'base64url').toString()).access).toEqual([{ type: 'repository', name: 'team/x', actions: ['pull'] }]);
    const denied = await f.request('POST', '/v2/team/x/blobs/uploads/', { token: viewer });
    expect([denied.status, JSON.parse(denied.text).errors[0].code]).toEqual([403, 'DENIED']);

    const narrow = await tokenFor(ADMIN, 'repository:team/x:pull');
    const widen = await f.request('POST', '/v2/team/x/blobs/uploads/', { token: narrow });
    expect([widen.status, JSON.parse(widen.text).errors[0].code]).toEqual([401, 'UNAUTHORIZED']);
    expect(widen.headers['www-authenticate']).toBe(
      `Bearer realm="http://${f.host}/v2/token",service="berth",scope="repository:team/x:pull,push",error="insufficient_scope"`);
  });
});

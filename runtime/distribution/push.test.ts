/**
 * Push against Debian's distribution registry (`docker-registry`) on
 * 127.0.0.1:5105, checked with `skopeo inspect`; a recording proxy in front
 * shows which upload path each blob took.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import { ImageStore } from '../images/image-store.ts';
import { OciLayoutWriter, type WrittenImage } from './testing/oci-layout.ts';
import { hasDockerRegistry, skopeo, startRegistry, type RegistryProcess } from './testing/registry-process.ts';
import { startRegistryProxy, type RecordedRequest } from './testing/registry-proxy.ts';

const PORT = 5105;
const canRun = hasDockerRegistry() && existsSync('/usr/bin/skopeo') && existsSync('/bin/busybox');

let registry: RegistryProcess;
let work: string;
let busybox: BusyboxImage;
let layered: WrittenImage;
let layeredDir: string;

const inspect = (ref: string): { Digest: string } => JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])) as { Digest: string };
const inspectRaw = (ref: string): string => skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);

async function newStore(): Promise<ImageStore> {
  const root = mkdtempSync(join(tmpdir(), 'berth-dist-push-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return new ImageStore({ root, registry: { insecureRegistries: ['127.0.0.1'] } });
}

const blobRequests = (reqs: readonly RecordedRequest[], method: string): RecordedRequest[] =>
  reqs.filter((r) => r.method === method && r.url.includes('/blobs/'));

describe.skipIf(!canRun)('push to a distribution registry', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-dist-push-work-'));
    registry = await startRegistry({ port: PORT });
    busybox = await buildBusyboxImage(join(work, 'bb'));
    const layout = new OciLayoutWriter(join(work, 'layout'));
    layered = await layout.image({ layers: [0, 1, 2].map((i) => ({ files: { [`data-${i}`]: randomBytes(300_000) }, gzip: false })) });
    layout.tag(layered.manifest, 'layers');
    layeredDir = layout.dir;
  }, 60_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('pushes an image that skopeo then sees with the same manifest digest and bytes', async () => {
    const store = await newStore();
    await store.importImage(busybox.ociArchive, { tags: ['busybox:latest'] });
    const target = `${registry.domain}/team/busybox:1.0`;
    const digest = await store.pushImage('busybox', target);
    expect(digest).toBe(busybox.manifestDigest);
    expect(inspect(target).Digest).toBe(busybox.manifestDigest);
    const local = (await store.content()).readBlob(busybox.manifestDigest as never);
    expect(inspectRaw(target)).toBe((await local).toString('utf8'));
  });

  it('uploads blobs larger than the chunk size in chunks (POST, PATCH…, PUT)', async () => {
    const proxy = await startRegistryProxy({ upstream: registry.domain });
    onTestFinished(() => proxy.close());
    const store = await newStore();
    await store.importImage(layeredDir, { tags: ['layered:1'] });
    const target = `${proxy.domain}/team/chunked:1`;
    const digest = await store.pushImage('layered:1', target, { chunkSizeBytes: 100_000 });
    expect(digest).toBe(layered.manifest.digest);
    // Each 300 000 + tar-header byte layer takes 4 PATCHes of at most 100 000 bytes; the small config goes in one PUT.
    expect(blobRequests(proxy.requests, 'PATCH')).toHaveLength(12);
    expect(blobRequests(proxy.requests, 'PUT')).toHaveLength(4);
    expect(inspect(`${registry.domain}/team/chunked:1`).Digest).toBe(layered.manifest.digest);
    const back = await newStore();
    expect(await back.pullImage(`${registry.domain}/team/chunked:1`)).toBe(layered.config.digest);
  });

  it('checks for blobs first and uploads none the registry has', async () => {
    const store = await newStore();
    await store.importImage(layeredDir, { tags: ['layered:1'] });
    await store.pushImage('layered:1', `${registry.domain}/team/again:1`);
    const proxy = await startRegistryProxy({ upstream: registry.domain });
    onTestFinished(() => proxy.close());
    await store.pushImage('layered:1', `${proxy.domain}/team/again:2`);
    expect(blobRequests(proxy.requests, 'HEAD')).toHaveLength(4);
    expect(proxy.requests.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`)).toEqual([`PUT /v2/team/again/manifests/2`]);
    expect(inspect(`${registry.domain}/team/again:2`).Digest).toBe(layered.manifest.digest);
  });

  it('mounts blobs from the repository the image was pulled from on the same registry', async () => {
    const proxy = await startRegistryProxy({ upstream: registry.domain });
    onTestFinished(() => proxy.close());
    const seed = await newStore();
    await seed.importImage(layeredDir, { tags: ['layered:1'] });
    await seed.pushImage('layered:1', `${registry.domain}/team/source:1`);
    const store = await newStore();
    await store.pullImage(`${proxy.domain}/team/source:1`);
    proxy.requests.length = 0;
    await store.pushImage(`${proxy.domain}/team/source:1`, `${proxy.domain}/other/copy:1`);
    const posts = blobRequests(proxy.requests, 'POST');
    expect(posts).toHaveLength(4);
    for (const p of posts) expect(p).toMatchObject({ status: 201, url: expect.stringMatching(/\?mount=sha256%3A[a-f0-9]{64}&from=team%2Fsource$/) });
    expect(blobRequests(proxy.requests, 'PUT')).toEqual([]);
    expect(inspect(`${registry.domain}/other/copy:1`).Digest).toBe(layered.manifest.digest);
  });

  it.each([
    { name: 'a local image that does not exist', local: 'nothing:here', target: () => `${registry.domain}/team/x:1`, code: 'NotFound' },
    { name: 'an unreachable registry', local: 'layered:1', target: () => '127.0.0.1:5108/team/x:1', code: 'Unavailable' },
  ])('rejects pushing $name with a RuntimeError naming the target', async ({ local, target, code }) => {
    const store = await newStore();
    await store.importImage(layeredDir, { tags: ['layered:1'] });
    const err = await store.pushImage(local, target()).then(() => undefined, (e: unknown) => e as Error);
    expect(isRuntimeError(err, code as 'NotFound')).toBe(true);
    expect(err!.message).toContain(`push ${target()}`);
  });
});

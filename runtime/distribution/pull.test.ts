/**
 * Pull against Debian's distribution registry (`docker-registry`) on
 * 127.0.0.1:5101, seeded with `skopeo copy`; misbehaviour (dropped
 * connections, no Range support, slow blobs) comes from a proxy in front of it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import type { ImageProgress } from '../cri/image-service.ts';
import { ImageStore } from '../images/image-store.ts';
import { MEDIA_TYPE, hostPlatform } from '../images/oci.ts';
import { OciLayoutWriter, type WrittenImage } from './testing/oci-layout.ts';
import { hasDockerRegistry, skopeo, startRegistry, type RegistryProcess } from './testing/registry-process.ts';
import { startRegistryProxy } from './testing/registry-proxy.ts';

const PORT = 5101;
const canRun = hasDockerRegistry() && existsSync('/usr/bin/skopeo') && existsSync('/bin/busybox');

let registry: RegistryProcess;
let work: string;
let busybox: BusyboxImage;
/** Four 1 MiB random layers (gzip, which skopeo keeps as is), pushed as `layers:4`. */
let layered: WrittenImage;
/** amd64 and arm64 images; `multi:oci` is their OCI index, `multi:docker` a Docker manifest list of their v2s2 forms. */
const platformConfig: Record<string, { oci: string; docker: string }> = {};

const inspect = (ref: string): { Digest: string } => JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])) as { Digest: string };
const inspectRaw = (ref: string): string => skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
const copyToRegistry = (src: string, dest: string, ...flags: string[]): string =>
  skopeo(['copy', '--quiet', '--dest-tls-verify=false', ...flags, src, `docker://${registry.domain}/${dest}`]);

function newStore(): ImageStore {
  const root = mkdtempSync(join(tmpdir(), 'berth-dist-pull-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return new ImageStore({ root, registry: { insecureRegistries: ['127.0.0.1'] } });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** PUTs a manifest straight into the registry (skopeo cannot write a Docker manifest list from an OCI layout). */
function putManifest(repo: string, tag: string, mediaType: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://${registry.domain}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': mediaType } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(!canRun)('pull from a distribution registry', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-dist-pull-work-'));
    registry = await startRegistry({ port: PORT });
    busybox = await buildBusyboxImage(join(work, 'bb'));
    copyToRegistry(`oci:${busybox.layoutDir}:latest`, 'library/busybox:1');
    copyToRegistry(`oci:${busybox.layoutDir}:latest`, 'library/busybox:v2s2', '--format', 'v2s2');

    const layout = new OciLayoutWriter(join(work, 'layout'));
    layered = await layout.image({ layers: [0, 1, 2, 3].map((i) => ({ files: { [`data-${i}`]: randomBytes(1 << 20) } })) });
    layout.tag(layered.manifest, 'layers');
    copyToRegistry(`oci:${layout.dir}:layers`, 'test/layers:4');

    const amd64 = await layout.image({ layers: [{ files: { arch: Buffer.from('amd64\n') } }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = await layout.image({ layers: [{ files: { arch: Buffer.from('arm64\n') } }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const s390x = await layout.image({ layers: [{ files: { arch: Buffer.from('s390x\n') } }], platform: { os: 'linux', architecture: 's390x' } });
    layout.tag(layout.index([s390x.manifest, arm64.manifest, amd64.manifest]), 'multi');
    copyToRegistry(`oci:${layout.dir}:multi`, 'test/multi:oci', '--all');
    const list: object[] = [];
    for (const [img, name] of [[amd64, 'amd64'], [arm64, 'arm64'], [s390x, 's390x']] as const) {
      layout.tag(img.manifest, name);
      copyToRegistry(`oci:${layout.dir}:${name}`, `test/multi:${name}-v2s2`, '--format', 'v2s2');
      const raw = inspectRaw(`${registry.domain}/test/multi:${name}-v2s2`);
      const m = JSON.parse(raw) as { config: { digest: string } };
      platformConfig[name] = { oci: img.config.digest, docker: m.config.digest };
      list.push({
        mediaType: MEDIA_TYPE.dockerManifest, size: Buffer.byteLength(raw), digest: inspect(`${registry.domain}/test/multi:${name}-v2s2`).Digest,
        platform: img.manifest.platform,
      });
    }
    const status = await putManifest('test/multi', 'docker', MEDIA_TYPE.dockerManifestList,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.dockerManifestList, manifests: list })));
    expect(status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.each([
    { name: 'an OCI manifest', tag: '1' },
    { name: 'a Docker schema 2 manifest', tag: 'v2s2' },
  ])('pulls $name with the digest skopeo reports and records tag and digest references', async ({ tag }) => {
    const store = newStore();
    const ref = `${registry.domain}/library/busybox:${tag}`;
    const want = inspect(ref).Digest;
    const id = await store.pullImage(ref);
    const img = (await store.imageStatus(ref))!;
    expect(img.id).toBe(id);
    expect(img.repoTags).toEqual([ref]);
    expect(img.repoDigests).toEqual([`${registry.domain}/library/busybox@${want}`]);
    expect(await store.imageStatus(`${registry.domain}/library/busybox@${want}`)).toMatchObject({ id });
    const run = await store.resolveForRun(ref);
    expect(existsSync(join(run.layerDirs[0]!, 'bin', 'busybox'))).toBe(true);
    if (tag === '1') expect(id).toBe(busybox.configDigest);
  });

  it.each([
    { name: 'an OCI index', tag: 'oci', kind: 'oci' as const },
    { name: 'a Docker manifest list', tag: 'docker', kind: 'docker' as const },
  ])('picks the host platform from $name', async ({ tag, kind }) => {
    const store = newStore();
    const ref = `${registry.domain}/test/multi:${tag}`;
    const id = await store.pullImage(ref);
    const arch = hostPlatform().architecture;
    expect(id).toBe(platformConfig[arch]![kind]);
    const img = (await store.imageStatus(ref))!;
    const manifestDigest = img.repoDigests[0]!.split('@')[1]!;
    const raw = JSON.parse(inspectRaw(ref)) as { manifests: { digest: string; platform: { architecture: string } }[] };
    expect(raw.manifests.find((m) => m.platform.architecture === arch)!.digest).toBe(manifestDigest);
  });

  it.each([
    { name: 'an unknown tag', ref: () => `${registry.domain}/library/busybox:nope`, code: 'NotFound' },
    { name: 'an unknown repository', ref: () => `${registry.domain}/library/nothing-here:1`, code: 'NotFound' },
    { name: 'an unknown digest', ref: () => `${registry.domain}/library/busybox@sha256:${'0'.repeat(64)}`, code: 'NotFound' },
    { name: 'an unreachable registry', ref: () => '127.0.0.1:5108/library/busybox:1', code: 'Unavailable' },
  ])('rejects $name with a RuntimeError naming the reference', async ({ ref, code }) => {
    const store = newStore();
    const err = await rejection(store.pullImage(ref()));
    expect(isRuntimeError(err, code as 'NotFound')).toBe(true);
    expect(err.message).toContain(`pull ${ref()}`);
  });

  it('refuses plain HTTP to a registry not configured as insecure', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-dist-pull-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const store = new ImageStore({ root });
    const err = await rejection(store.pullImage(`${registry.domain}/library/busybox:1`));
    expect(isRuntimeError(err, 'Unavailable')).toBe(true);
    expect(err.message).toMatch(/pull 127\.0\.0\.1:5101\/library\/busybox:1: cannot reach registry 127\.0\.0\.1:5101: .*(SSL|TLS|ssl|tls|EPROTO|wrong version)/);
  });

  it('downloads layers concurrently, at most three at once, reporting bytes per layer', async () => {
    const proxy = await startRegistryProxy({ upstream: registry.domain, delayBlobMs: 150 });
    onTestFinished(() => proxy.close());
    const store = newStore();
    const progress = new Map<string, ImageProgress[]>();
    await store.pullImage(`${proxy.domain}/test/layers:4`, undefined, {
      onProgress: (p) => progress.set(p.layer, [...(progress.get(p.layer) ?? []), p]),
    });
    expect(proxy.maxBlobGetsInFlight).toBeGreaterThanOrEqual(2);
    expect(proxy.maxBlobGetsInFlight).toBeLessThanOrEqual(3);
    expect([...progress.keys()].sort()).toEqual(layered.layers.map((l) => l.digest).sort());
    for (const l of layered.layers) {
      const seen = progress.get(l.digest)!;
      expect(seen.at(-1)).toEqual({ layer: l.digest, currentBytes: l.size, totalBytes: l.size });
      expect(seen.map((p) => p.currentBytes)).toEqual([...seen.map((p) => p.currentBytes)].sort((a, b) => a - b));
    }
  });

  it('does not download blobs already stored', async () => {
    const store = newStore();
    await store.pullImage(`${registry.domain}/test/layers:4`);
    const proxy = await startRegistryProxy({ upstream: registry.domain });
    onTestFinished(() => proxy.close());
    await store.removeImage(`${registry.domain}/test/layers:4`).catch(() => undefined);
    await store.pullImage(`${registry.domain}/library/busybox:1`);
    await store.pullImage(`${proxy.domain}/library/busybox:1`);
    expect(proxy.requests.filter((r) => r.url.includes('/blobs/'))).toEqual([]);
    expect(proxy.requests.filter((r) => r.url.includes('/manifests/'))).toHaveLength(1);
  });

  it.each([
    { name: 'continues with a Range request where the registry allows', stripRange: false, wantStatus: 206 },
    { name: 'downloads again, skipping what it had, where the registry ignores Range', stripRange: true, wantStatus: 200 },
  ])('after a dropped connection mid-blob, $name', async ({ stripRange, wantStatus }) => {
    const proxy = await startRegistryProxy({ upstream: registry.domain, cutBlobAfterBytes: 300_000, stripRange });
    onTestFinished(() => proxy.close());
    const store = newStore();
    const id = await store.pullImage(`${proxy.domain}/test/layers:4`);
    expect(id).toBe(layered.config.digest);
    for (const l of layered.layers) {
      const gets = proxy.requests.filter((r) => r.url.endsWith(`/blobs/${l.digest}`));
      expect(gets).toHaveLength(2);
      expect(gets[0]!.range).toBeUndefined();
      expect(gets[1]).toMatchObject({ range: 'bytes=300000-', status: wantStatus });
    }
    const run = await store.resolveForRun(`${proxy.domain}/test/layers:4`);
    expect(run.layerDirs).toHaveLength(4);
  });
});

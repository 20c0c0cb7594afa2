import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import { ImageStore } from './image-store.ts';

let fixtureDir: string;
let fx: BusyboxImage;
let custom: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync('/tmp/berth-images-test-fixture-');
  fx = await buildBusyboxImage(join(fixtureDir, 'plain'));
  custom = await buildBusyboxImage(join(fixtureDir, 'custom'), {
    tag: 'web',
    config: {
      Entrypoint: ['httpd', '-f'], Cmd: ['-p', '8080'], WorkingDir: '/www', User: 'nobody', StopSignal: 'SIGQUIT',
      ExposedPorts: { '8080/tcp': {} }, Volumes: { '/www': {} }, Labels: { app: 'web' },
    },
  });
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function newRoot(): string {
  const d = mkdtempSync('/tmp/berth-images-test-store-');
  dirs.push(d);
  return join(d, 'store');
}

async function rejection(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isRuntimeError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  return err as Error;
}

describe('ImageStore resolution', () => {
  it.each([
    { how: 'short name', ref: () => 'busybox' },
    { how: 'name and tag', ref: () => 'busybox:latest' },
    { how: 'normalised reference', ref: () => 'docker.io/library/busybox:latest' },
    { how: 'image ID', ref: () => fx.configDigest },
    { how: 'image ID hex', ref: () => fx.configDigest.slice(7) },
    { how: 'short ID (12 hex)', ref: () => fx.configDigest.slice(7, 19) },
    { how: 'repo digest', ref: () => `busybox@${fx.manifestDigest}` },
    { how: 'tag and digest', ref: () => `busybox:latest@${fx.manifestDigest}` },
  ])('finds an image by $how', async ({ ref }) => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    expect((await store.imageStatus(ref()))?.id).toBe(fx.configDigest);
  });

  it.each([
    { how: 'another tag', ref: 'busybox:other' },
    { how: 'another repository', ref: 'alpine' },
    { how: 'a digest of another repository', ref: 'alpine@sha256:' },
    { how: 'a short ID under 12 hex', ref: 'short' },
  ])('returns undefined for $how', async ({ ref }) => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    const r = ref === 'alpine@sha256:' ? `alpine@${fx.manifestDigest}` : ref === 'short' ? fx.configDigest.slice(7, 18) : ref;
    expect(await store.imageStatus(r)).toBeUndefined();
  });

  it('rejects a malformed reference', async () => {
    const store = new ImageStore({ root: newRoot() });
    expect((await rejection(store.imageStatus('Busybox'), 'InvalidArgument')).message).toContain('must be lowercase');
  });

  it('describes the image: tags, digests, size and the runnable config', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(custom.layoutDir, { tags: ['web:1', '127.0.0.1:5000/team/web:1.2'] });
    const [image] = await store.listImages();
    expect(image).toEqual({
      id: custom.configDigest,
      repoTags: ['127.0.0.1:5000/team/web:1.2', 'docker.io/library/web:1'],
      repoDigests: [`127.0.0.1:5000/team/web@${custom.manifestDigest}`, `docker.io/library/web@${custom.manifestDigest}`],
      sizeBytes: expect.any(Number),
      config: {
        entrypoint: ['httpd', '-f'], cmd: ['-p', '8080'],
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        workingDir: '/www', user: 'nobody', stopSignal: 'SIGQUIT',
        exposedPorts: ['8080/tcp'], volumes: ['/www'], labels: { app: 'web' },
      },
    });
    expect(image!.sizeBytes).toBeGreaterThan(1_000_000);
    expect(await store.listImages({ ref: 'web:1' })).toHaveLength(1);
    expect(await store.listImages({ ref: 'nope' })).toEqual([]);
  });
});

describe('ImageStore tags and removal', () => {
  it('adds tags, moves a tag from another image, and drops an image left without tags', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    await store.tagImage('busybox', 'mine/box:v1');
    expect((await store.imageStatus('mine/box:v1'))?.repoTags).toEqual(['docker.io/library/busybox:latest', 'docker.io/mine/box:v1']);

    await store.importImage(custom.ociArchive, { tags: ['busybox', 'mine/box:v1'] });
    expect((await store.imageStatus('busybox'))?.id).toBe(custom.configDigest);
    expect(await store.imageStatus(fx.configDigest)).toBeUndefined();
    await rejection(store.tagImage('nothing', 'x'), 'NotFound');
  });

  it('removes a tag, then the image with its blobs and layers when no tag is left', async () => {
    const root = newRoot();
    const store = new ImageStore({ root });
    await store.importImage(fx.ociArchive, { tags: ['busybox', 'busybox:other'] });
    const { layerDirs } = await store.resolveForRun('busybox');

    await store.removeImage('busybox');
    expect((await store.imageStatus(fx.configDigest))?.repoTags).toEqual(['docker.io/library/busybox:other']);
    expect(existsSync(layerDirs[0]!)).toBe(true);

    await store.removeImage('busybox:other');
    expect(await store.listImages()).toEqual([]);
    expect(readdirSync(join(root, 'blobs/sha256'))).toEqual([]);
    expect(readdirSync(join(root, 'layers'))).toEqual([]);
    await store.removeImage('busybox:other'); // idempotent
  });

  it('removes an image by ID with all its tags', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.ociArchive, { tags: ['a', 'b'] });
    await store.removeImage(fx.configDigest.slice(7, 19));
    expect(await store.listImages()).toEqual([]);
  });

  it('refuses to remove a pinned image, naming the container, also after a restart', async () => {
    const root = newRoot();
    const store = new ImageStore({ root });
    await store.importImage(fx.ociArchive, { tags: ['busybox', 'spare'] });
    await store.pin(fx.configDigest, 'ctr-1');
    await store.pin(fx.configDigest, 'ctr-1');

    await store.removeImage('spare'); // another tag is left: only untagged
    const err = await rejection(store.removeImage('busybox'), 'FailedPrecondition');
    expect(err.message).toBe(`image "busybox" (${fx.configDigest}) is in use by container ctr-1`);

    const restarted = new ImageStore({ root });
    await rejection(restarted.removeImage(fx.configDigest), 'FailedPrecondition');
    await restarted.unpin(fx.configDigest, 'ctr-1');
    await restarted.unpin(fx.configDigest, 'ctr-1');
    await restarted.removeImage('busybox');
    expect(await restarted.listImages()).toEqual([]);
  });

  it('keeps a pinned image whose tag moved away until its last container unpins it', async () => {
    const root = newRoot();
    const store = new ImageStore({ root });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    const { layerDirs } = await store.resolveForRun('busybox');
    await store.pin('busybox', 'ctr-1');
    await store.importImage(custom.ociArchive, { tags: ['busybox'] });
    await store.garbageCollect();
    expect((await store.imageStatus(fx.configDigest))?.repoTags).toEqual([]);
    expect(existsSync(layerDirs[0]!)).toBe(true);

    await store.unpin(fx.configDigest, 'ctr-1');
    expect(await store.imageStatus(fx.configDigest)).toBeUndefined();
    expect((await store.listImages()).map((i) => i.id)).toEqual([custom.configDigest]);
  });

  it('rejects pins of unknown images', async () => {
    const store = new ImageStore({ root: newRoot() });
    await rejection(store.pin('busybox', 'c'), 'NotFound');
  });
});

describe('ImageStore as RootfsSource', () => {
  it('unpacks layers again when they are missing, and rejects unknown images', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.dockerArchive);
    const first = await store.resolveForRun('busybox');
    rmSync(first.layerDirs[0]!, { recursive: true });
    const again = await store.resolveForRun('busybox');
    expect(again.layerDirs).toEqual(first.layerDirs);
    expect(existsSync(join(again.layerDirs[0]!, 'bin/busybox'))).toBe(true);
    expect(again.image.config.cmd).toEqual(['sh']);
    await rejection(store.resolveForRun('alpine'), 'NotFound');
  });

  it('unpacks a layer once for concurrent callers', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    const first = await store.resolveForRun('busybox');
    rmSync(first.layerDirs[0]!, { recursive: true });
    const results = await Promise.all([1, 2, 3].map(() => store.resolveForRun('busybox')));
    expect(new Set(results.map((r) => r.layerDirs[0]))).toEqual(new Set(first.layerDirs));
  });
});

describe('ImageStore service calls', () => {
  it('rejects a pull from an unreachable registry as Unavailable naming the reference', async () => {
    const store = new ImageStore({ root: newRoot(), registry: { insecureRegistries: ['127.0.0.1:1'] } });
    expect((await rejection(store.pullImage('127.0.0.1:1/busybox'), 'Unavailable')).message).toContain('pull 127.0.0.1:1/busybox:latest');
  });

  it('reports the space and inodes the store uses', async () => {
    const root = newRoot();
    const store = new ImageStore({ root });
    await store.importImage(fx.ociArchive, { tags: ['busybox'] });
    const [fs] = await store.imageFsInfo();
    expect(fs!.mountpoint).toBe(root);
    expect(fs!.usedBytes).toBeGreaterThan(3_000_000);
    expect(fs!.inodesUsed).toBeGreaterThan(fx.applets.length);
  });

  it('imports the same image twice without change', async () => {
    const store = new ImageStore({ root: newRoot() });
    await store.importImage(fx.layoutDir, { tags: ['busybox'] });
    const before = await store.imageStatus('busybox');
    await store.importImage(fx.dockerArchive, { tags: ['busybox'] });
    expect(await store.imageStatus('busybox')).toEqual(before);
  });
});

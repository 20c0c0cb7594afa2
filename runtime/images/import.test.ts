import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import type { ImageProgress } from '../cri/image-service.ts';
import { isRuntimeError } from '../cri/errors.ts';
import { sha256Of } from './digest.ts';
import { ImageStore } from './image-store.ts';
import { tarToBuffer } from './tar/writer.ts';

let fixtureDir: string;
let fx: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync('/tmp/berth-images-test-fixture-');
  fx = await buildBusyboxImage(fixtureDir, { tag: '1.36' });
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync('/tmp/berth-images-test-import-');
  dirs.push(d);
  return d;
}
const newStore = (): ImageStore => new ImageStore({ root: join(tmp(), 'store') });

async function rejection(p: Promise<unknown>, code = 'InvalidArgument'): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isRuntimeError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  return err as Error;
}

/** A copy of the fixture layout whose index.json is `index` (nested indexes go in as blobs). */
function layoutWithIndex(index: object, blobs: readonly Buffer[] = []): string {
  const dir = join(tmp(), 'layout');
  cpSync(fx.layoutDir, dir, { recursive: true });
  for (const b of blobs) writeFileSync(join(dir, 'blobs/sha256', sha256Of(b).slice(7)), b);
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}
const manifestDescriptor = (): object => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: fx.manifestDigest,
  size: readFileSync(join(fx.layoutDir, 'blobs/sha256', fx.manifestDigest.slice(7))).length,
});

describe('importImage formats', () => {
  it.each([
    { format: 'an OCI layout directory', path: () => fx.layoutDir },
    { format: 'an OCI archive', path: () => fx.ociArchive },
    { format: 'a docker-archive', path: () => fx.dockerArchive },
  ])('imports $format of the fixture as the same image ID with runnable layers', async ({ path }) => {
    const store = newStore();
    const progress: ImageProgress[] = [];
    const id = await store.importImage(path(), { tags: ['busybox:test'], onProgress: (p) => progress.push(p) });
    expect(id).toBe(fx.configDigest);
    const { image, layerDirs } = await store.resolveForRun('busybox:test');
    expect(image.repoTags).toEqual(['docker.io/library/busybox:test']);
    expect(layerDirs).toHaveLength(1);
    expect(readdirSync(join(layerDirs[0]!, 'bin'))).toEqual(expect.arrayContaining(['busybox', 'sh', 'ls', 'httpd', 'nc']));
    expect(execFileSync(join(layerDirs[0]!, 'bin/busybox'), ['echo', 'ok'], { encoding: 'utf8' })).toBe('ok\n');
    const last = progress.at(-1)!;
    expect(last.currentBytes).toBe(last.totalBytes);
    expect([fx.layerDigest, fx.diffId]).toContain(last.layer);
  });

  it('names the image after the archive when no tags are given', async () => {
    const store = newStore();
    await store.importImage(fx.dockerArchive);
    expect((await store.imageStatus('busybox:1.36'))?.id).toBe(fx.configDigest);
  });

  it('keeps an OCI layout image whose ref name is only a tag untagged, reachable by ID', async () => {
    const store = newStore();
    const id = await store.importImage(fx.layoutDir);
    expect((await store.listImages()).map((i) => [i.id, i.repoTags])).toEqual([[id, []]]);
  });

  it('chooses linux/amd64 from a nested index', async () => {
    const nested = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Of('not here'), size: 8, platform: { os: 'linux', architecture: 'arm64' } },
        { ...manifestDescriptor(), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    }));
    const dir = layoutWithIndex({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256Of(nested), size: nested.length }],
    }, [nested]);
    expect(await newStore().importImage(dir, { tags: ['busybox'] })).toBe(fx.configDigest);
  });

  it('rejects an index without a linux/amd64 image, listing what it has', async () => {
    const nested = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...manifestDescriptor(), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { ...manifestDescriptor(), digest: sha256Of('x'), platform: { os: 'windows', architecture: 'amd64' } },
      ],
    }));
    const dir = layoutWithIndex({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256Of(nested), size: nested.length }],
    }, [nested]);
    const err = await rejection(newStore().importImage(dir));
    expect(err.message).toContain(`no linux/amd64 image in index ${sha256Of(nested)} (has linux/arm64/v8, windows/amd64)`);
  });

  it('rejects a layout with several unnamed images', async () => {
    const dir = layoutWithIndex({ schemaVersion: 2, manifests: [manifestDescriptor(), { ...manifestDescriptor(), digest: sha256Of('x') }] });
    expect((await rejection(newStore().importImage(dir))).message).toContain('holds several images');
  });

  it('chooses among several images by the requested tag', async () => {
    const dir = layoutWithIndex({
      schemaVersion: 2,
      manifests: [
        { ...manifestDescriptor(), annotations: { 'org.opencontainers.image.ref.name': '1.36' } },
        { ...manifestDescriptor(), digest: sha256Of('other'), annotations: { 'org.opencontainers.image.ref.name': 'other' } },
      ],
    });
    expect(await newStore().importImage(dir, { tags: ['busybox:1.36'] })).toBe(fx.configDigest);
  });

  it('rejects a layout whose blob does not match its digest', async () => {
    const dir = layoutWithIndex({ schemaVersion: 2, manifests: [manifestDescriptor()] });
    const layer = join(dir, 'blobs/sha256', fx.layerDigest.slice(7));
    const bytes = readFileSync(layer);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    writeFileSync(layer, bytes);
    const store = newStore();
    const err = await rejection(store.importImage(dir, { tags: ['busybox'] }));
    expect(err.message).toContain(`layer 0 ${fx.layerDigest}: content has digest`);
    expect(await store.listImages()).toEqual([]);
    expect(readdirSync(join(store.root, 'blobs/sha256'))).toEqual([]);
    expect(readdirSync(join(store.root, 'ingest'))).toEqual([]);
  });

  it('rejects zstd layers with a clear error', async () => {
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Of('tar')] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Of(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha256Of(zstd), size: zstd.length }],
    }));
    const dir = layoutWithIndex({
      schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Of(manifest), size: manifest.length }],
    }, [zstd, config, manifest]);
    const store = newStore();
    const err = await rejection(store.importImage(dir, { tags: ['z'] }));
    expect(err.message).toBe(`layer ${sha256Of('tar')}: zstd-compressed content is not supported (only gzip or uncompressed tar)`);
    expect(readdirSync(join(store.root, 'layers'))).toEqual([]);
    expect(readdirSync(join(store.root, 'blobs/sha256'))).toEqual([]);
  });

  it('rejects an image for another architecture', async () => {
    const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Of(config), size: config.length }, layers: [],
    }));
    const dir = layoutWithIndex({
      schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Of(manifest), size: manifest.length }],
    }, [config, manifest]);
    const err = await rejection(newStore().importImage(dir));
    expect(err.message).toContain('image is for linux/arm64, this node runs linux/amd64');
  });

  it('rejects an archive entry that escapes, naming it', async () => {
    const dir = tmp();
    const evil = join(dir, 'evil.tar');
    writeFileSync(evil, await tarToBuffer([{ header: { name: '../../escaped', type: 'file', size: 1 }, body: Buffer.from('x') }]));
    const err = await rejection(newStore().importImage(evil));
    expect(err.message).toBe(`archive ${evil}: entry "../../escaped": path escapes the archive`);
  });

  it('rejects a path that is neither layout nor archive, and a missing path', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'empty'));
    expect((await rejection(newStore().importImage(join(dir, 'empty')))).message).toContain('neither an OCI image layout');
    await rejection(newStore().importImage(join(dir, 'missing')), 'NotFound');
  });
});

describe('interop with skopeo', () => {
  it('skopeo reads the fixture layout, and what skopeo writes imports as the same image', async () => {
    const dir = tmp();
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${fx.layoutDir}:1.36`], { encoding: 'utf8' }));
    expect(inspected).toMatchObject({ Digest: fx.manifestDigest, Architecture: 'amd64', Os: 'linux', Layers: [fx.layerDigest] });

    execFileSync('skopeo', ['copy', '-q', `oci:${fx.layoutDir}:1.36`, `oci-archive:${dir}/copy.tar:1.36`]);
    execFileSync('skopeo', ['copy', '-q', `oci:${fx.layoutDir}:1.36`, `docker-archive:${dir}/docker.tar:busybox:skopeo`]);
    const store = newStore();
    expect(await store.importImage(`${dir}/copy.tar`, { tags: ['busybox:oci'] })).toBe(fx.configDigest);
    // skopeo's docker-archive links layer.tar files with symlinks: followed inside the archive only.
    expect(await store.importImage(`${dir}/docker.tar`)).toBe(fx.configDigest);
    expect((await store.imageStatus('busybox:skopeo'))?.id).toBe(fx.configDigest);
  });

  it('skopeo reads the store itself as an OCI layout', async () => {
    const store = newStore();
    await store.importImage(fx.ociArchive, { tags: ['busybox:latest'] });
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${store.root}:docker.io/library/busybox:latest`], { encoding: 'utf8' }));
    expect(inspected.Digest).toBe(fx.manifestDigest);
  });
});

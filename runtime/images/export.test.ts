import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import type { ExportFormat } from './export.ts';
import { ImageStore } from './image-store.ts';

let fixtureDir: string;
let fx: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync('/tmp/berth-images-test-export-fixture-');
  fx = await buildBusyboxImage(fixtureDir);
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync('/tmp/berth-images-test-export-');
  dirs.push(d);
  return d;
}
const newStore = (): ImageStore => new ImageStore({ root: join(tmp(), 'store') });

interface Source {
  readonly store: ImageStore;
  readonly appId: string;
  readonly appManifest: string;
}

/** A store with the busybox fixture and a two-layer image committed on it (`team/app:1` and `:latest`). */
async function source(): Promise<Source> {
  const store = newStore();
  await store.importImage(fx.ociArchive, { tags: ['busybox:latest'] });
  const upper = join(tmp(), 'upper');
  mkdirSync(join(upper, 'srv'), { recursive: true });
  writeFileSync(join(upper, 'srv/app.txt'), 'app\n');
  const c = await store.commit({
    baseImage: 'busybox', upperDir: upper, tags: ['team/app:1', 'team/app:latest'],
    createdAt: new Date('2026-01-01T00:00:00Z'), changes: { cmd: ['cat', '/srv/app.txt'] },
  });
  return { store, appId: c.id, appManifest: c.manifestDigest };
}

const skopeo = (...args: string[]): Record<string, any> => JSON.parse(execFileSync('skopeo', args, { encoding: 'utf8' })) as Record<string, any>;
const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

describe('exportImages', () => {
  it('writes an OCI archive that imports into a fresh store as the same images, manifest digests included', async () => {
    const src = await source();
    const out = join(tmp(), 'images.tar');
    await src.store.exportImages(['team/app:1', 'busybox'], 'oci-archive', out);
    for (const [tag, id, manifest] of [['team/app:1', src.appId, src.appManifest], ['busybox:latest', fx.configDigest, fx.manifestDigest]] as const) {
      const fresh = newStore();
      expect(await fresh.importImage(out, { tags: [tag] })).toBe(id);
      const image = await fresh.imageStatus(tag);
      expect(image?.repoDigests.some((d) => d.endsWith(`@${manifest}`))).toBe(true);
      expect(image?.config).toEqual((await src.store.imageStatus(tag))?.config);
      await fresh.resolveForRun(tag);
    }
    const index = JSON.parse(execFileSync('tar', ['-xOf', out, 'index.json'], { encoding: 'utf8' })) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests.map((m) => [m.digest, m.annotations])).toEqual([
      [src.appManifest, { 'io.containerd.image.name': 'docker.io/team/app:1', 'org.opencontainers.image.ref.name': '1' }],
      [fx.manifestDigest, { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' }],
    ]);
  });

  it('writes a docker-archive as docker save does, which imports as the same image with its tags', async () => {
    const src = await source();
    const out = join(tmp(), 'app-docker.tar');
    await src.store.exportImages(['team/app:1', 'team/app:latest'], 'docker-archive', out);
    const files = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).trim().split('\n');
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' })) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.Config).toBe(`${src.appId.slice(7)}.json`);
    expect(manifest[0]!.RepoTags).toEqual(['team/app:1', 'team/app:latest']);
    expect(manifest[0]!.Layers).toHaveLength(2);
    for (const l of manifest[0]!.Layers) expect(files).toContain(l);
    expect(JSON.parse(execFileSync('tar', ['-xOf', out, 'repositories'], { encoding: 'utf8' }))).toEqual({
      'team/app': { 1: manifest[0]!.Layers[1]!.split('/')[0], latest: manifest[0]!.Layers[1]!.split('/')[0] },
    });
    const fresh = newStore();
    expect(await fresh.importImage(out)).toBe(src.appId);
    expect((await fresh.imageStatus(src.appId))?.repoTags).toEqual(['docker.io/team/app:1', 'docker.io/team/app:latest']);
    const { layerDirs } = await fresh.resolveForRun('team/app:1');
    expect(readFileSync(join(layerDirs[1]!, 'srv/app.txt'), 'utf8')).toBe('app\n');
  });

  it.each<ExportFormat>(['oci-archive', 'docker-archive'])('gives the same %s bytes every time, to a stream or a file', async (format) => {
    const src = await source();
    const streamed = async (): Promise<Buffer> => {
      const sink = new PassThrough();
      const parts: Buffer[] = [];
      sink.on('data', (b: Buffer) => parts.push(b));
      await src.store.exportImages(['team/app:1'], format, sink);
      return Buffer.concat(parts);
    };
    const file = join(tmp(), 'x.tar');
    await src.store.exportImages(['team/app:1'], format, file);
    const a = await streamed();
    expect((await streamed()).equals(a)).toBe(true);
    expect(readFileSync(file).equals(a)).toBe(true);
  });

  it('rejects an unknown image with NotFound and leaves no file behind', async () => {
    const src = await source();
    const dir = tmp();
    const err = await src.store.exportImages(['team/app:1', 'nope:2'], 'oci-archive', join(dir, 'x.tar')).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(err, 'NotFound'), String(err)).toBe(true);
    expect(String(err)).toContain('nope:2');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('exports an image named by ID without a name', async () => {
    const src = await source();
    const out = join(tmp(), 'byid.tar');
    await src.store.exportImages([src.appId], 'docker-archive', out);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' })) as { RepoTags: unknown }[];
    expect(manifest[0]!.RepoTags).toBeNull();
    expect(existsSync(out)).toBe(true);
  });
});

describe.skipIf(!hasSkopeo)('exportImages read by skopeo', () => {
  it('skopeo inspects the OCI archive as the stored manifest and layers', async () => {
    const src = await source();
    const out = join(tmp(), 'app-oci.tar');
    await src.store.exportImages(['team/app:1'], 'oci-archive', out);
    const info = skopeo('inspect', `oci-archive:${out}`);
    const content = await src.store.content();
    const stored = JSON.parse((await content.readBlob(src.appManifest as never)).toString()) as { layers: { digest: string }[] };
    expect(info.Digest).toBe(src.appManifest);
    expect(info.Layers).toEqual(stored.layers.map((l) => l.digest));
    expect(skopeo('inspect', '--config', `oci-archive:${out}`).config.Cmd).toEqual(['cat', '/srv/app.txt']);
  });

  it('skopeo inspects the docker-archive as the same config, with uncompressed layers named by diff ID', async () => {
    const src = await source();
    const out = join(tmp(), 'app-docker.tar');
    await src.store.exportImages(['team/app:1'], 'docker-archive', out);
    const raw = skopeo('inspect', '--raw', `docker-archive:${out}`);
    const config = skopeo('inspect', '--config', `docker-archive:${out}`);
    expect(raw.config.digest).toBe(src.appId);
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(config.rootfs.diff_ids);
    expect(skopeo('inspect', `docker-archive:${out}`).Layers).toEqual(config.rootfs.diff_ids);
  });
});

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import type { ImageId } from '../cri/types.ts';
import { ContentStore } from './content-store.ts';
import { sha256Of, type Digest } from './digest.ts';
import { MEDIA_TYPE } from './oci.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function openStore(): Promise<ContentStore> {
  const root = mkdtempSync('/tmp/berth-images-test-cs-');
  dirs.push(root);
  return ContentStore.open({ root });
}
const blobFiles = (s: ContentStore): string[] => readdirSync(join(s.root, 'blobs', 'sha256')).sort();

/** Stores a tiny image (manifest → config + one layer) and records it. */
async function storeImage(s: ContentStore, seed: string, ref?: string): Promise<{ id: ImageId; blobs: Digest[] }> {
  const layer = Buffer.from(`layer ${seed}`);
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [sha256Of(layer)] }, seed }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest,
    config: { mediaType: MEDIA_TYPE.ociConfig, digest: sha256Of(config), size: config.length },
    layers: [{ mediaType: MEDIA_TYPE.ociLayer, digest: sha256Of(layer), size: layer.length }],
  }));
  for (const b of [layer, config, manifest]) await s.writeBlob(() => [b], { digest: sha256Of(b) });
  const id = sha256Of(config) as string as ImageId;
  await s.update((db) => {
    db.images[id] = { id, manifestDigest: sha256Of(manifest), manifestMediaType: MEDIA_TYPE.ociManifest, manifestSize: manifest.length, createdAtMs: 1 };
    if (ref) db.refs[ref] = id;
  });
  return { id, blobs: [sha256Of(layer), sha256Of(config), sha256Of(manifest)] };
}

describe('ContentStore', () => {
  it('creates an OCI image layout and stores blobs under blobs/sha256', async () => {
    const s = await openStore();
    const data = Buffer.from('hello');
    const r = await s.writeBlob(() => [data.subarray(0, 2), data.subarray(2)], { digest: sha256Of(data) });
    expect(r).toEqual({ digest: sha256Of(data), size: 5, existed: false });
    expect(JSON.parse(readFileSync(join(s.root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(readFileSync(s.blobPath(sha256Of(data)), 'utf8')).toBe('hello');
    expect((await s.readBlob(sha256Of(data))).toString()).toBe('hello');
  });

  it('rejects content that does not match the expected digest and leaves nothing behind', async () => {
    const s = await openStore();
    const claimed = sha256Of('something else');
    const err = await s.writeBlob(() => [Buffer.from('hello')], { digest: claimed, what: 'layer 0' }).catch((e: unknown) => e);
    expect(isRuntimeError(err, 'InvalidArgument')).toBe(true);
    expect((err as Error).message).toBe(`layer 0 ${claimed}: content has digest ${sha256Of('hello')}`);
    expect(blobFiles(s)).toEqual([]);
    expect(readdirSync(join(s.root, 'ingest'))).toEqual([]);
  });

  it('rejects content longer than the expected size', async () => {
    const s = await openStore();
    const err = await s.writeBlob(() => [Buffer.from('hello')], { digest: sha256Of('hello'), size: 3 }).catch((e: unknown) => e);
    expect(isRuntimeError(err, 'InvalidArgument')).toBe(true);
    expect(blobFiles(s)).toEqual([]);
  });

  it('rejects digests of other algorithms', async () => {
    const s = await openStore();
    await expect(s.writeBlob(() => [Buffer.from('x')], { digest: `sha512:${'a'.repeat(128)}` })).rejects.toThrow('unsupported digest algorithm');
  });

  it('stores a blob once and does not read the source again', async () => {
    const s = await openStore();
    const data = Buffer.from('shared');
    await s.writeBlob(() => [data], { digest: sha256Of(data) });
    let opened = false;
    const again = await s.writeBlob(() => { opened = true; return [data]; }, { digest: sha256Of(data) });
    expect(again).toEqual({ digest: sha256Of(data), size: 6, existed: true });
    expect(opened).toBe(false);
    expect(blobFiles(s)).toHaveLength(1);
  });

  it('computes the digest when none is expected', async () => {
    const s = await openStore();
    expect((await s.writeBlob(() => [Buffer.from('abc')])).digest).toBe(sha256Of('abc'));
  });

  it('persists the reference database and discards a failed update', async () => {
    const s = await openStore();
    const { id } = await storeImage(s, 'a', 'docker.io/library/a:latest');
    await expect(s.update((db) => {
      db.refs['docker.io/library/b:latest'] = id;
      throw new Error('boom');
    })).rejects.toThrow('boom');
    const reopened = await ContentStore.open({ root: s.root });
    expect(reopened.refDb.refs).toEqual({ 'docker.io/library/a:latest': id });
    const index = JSON.parse(readFileSync(join(s.root, 'index.json'), 'utf8'));
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('docker.io/library/a:latest');
  });

  it('garbage-collects blobs no image record reaches, keeping shared and leased ones', async () => {
    const s = await openStore();
    const kept = await storeImage(s, 'kept', 'docker.io/library/kept:latest');
    const dropped = await storeImage(s, 'dropped', 'docker.io/library/dropped:latest');
    const orphan = await s.writeBlob(() => [Buffer.from('orphan')]);
    const lease = s.lease();
    const leased = await s.writeBlob(() => [Buffer.from('in flight')], { lease });
    await s.update((db) => {
      delete db.refs['docker.io/library/dropped:latest'];
      delete db.images[dropped.id];
    });

    const gc = await s.garbageCollect();
    expect([...gc.removedBlobs].sort()).toEqual([...dropped.blobs, orphan.digest].sort());
    for (const d of [...kept.blobs, leased.digest]) expect(existsSync(s.blobPath(d))).toBe(true);

    lease.release();
    expect((await s.garbageCollect()).removedBlobs).toEqual([leased.digest]);
  });

  it('keeps the blobs of a pinned image whose references are gone', async () => {
    const s = await openStore();
    const img = await storeImage(s, 'pinned', 'docker.io/library/p:latest');
    await s.update((db) => {
      delete db.refs['docker.io/library/p:latest'];
      db.pins[img.id] = ['c1'];
    });
    expect((await s.garbageCollect()).removedBlobs).toEqual([]);
    for (const d of img.blobs) expect(existsSync(s.blobPath(d))).toBe(true);
  });

  it('discards unfinished writes when opened again', async () => {
    const s = await openStore();
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const writing = s.writeBlob(async function* () {
      yield Buffer.from('partial');
      await gate;
      throw new Error('crashed');
    });
    await vi.waitFor(() => expect(readdirSync(join(s.root, 'ingest'))).toHaveLength(1));
    await ContentStore.open({ root: s.root });
    expect(readdirSync(join(s.root, 'ingest'))).toEqual([]);
    release();
    await expect(writing).rejects.toThrow('crashed');
  });
});

/**
 * Export of stored images as tarballs that `importFromPath`, skopeo, podman
 * and Docker read:
 *
 * - `oci-archive`: an OCI image layout in a tar (`oci-layout`, `index.json`,
 *   `blobs/sha256/<hex>`), every blob byte for byte as stored, so image IDs and
 *   manifest digests survive the round trip. index.json has one entry per
 *   tag reference, annotated as `docker save` (25+) and containerd annotate
 *   them: `io.containerd.image.name` the full reference,
 *   `org.opencontainers.image.ref.name` its tag.
 * - `docker-archive`: what `docker save` wrote before 25 (and skopeo's
 *   `docker-archive:` still writes): `manifest.json` (`Config`, `RepoTags` in
 *   familiar form, `Layers`), `<config hex>.json`, one `<id>/layer.tar`
 *   (uncompressed, so its digest is the diff ID) with `VERSION` and `json` per
 *   layer, and `repositories`. The config is the stored one, so the image ID
 *   survives; the manifest is re-made by whoever imports it.
 *
 * Entries are in a fixed order with mtime 0 and owner 0, so exporting the
 * same images gives the same bytes.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Writable, pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, Image, ImageId } from '../cri/types.ts';
import type { ContentStore } from './content-store.ts';
import { Digester, digestHex, sha256Of, type Digest } from './digest.ts';
import { IMAGE_NAME_ANNOTATION, MEDIA_TYPE, REF_NAME_ANNOTATION, parseImageConfig, parseManifest, type Descriptor, type ImageManifest } from './oci.ts';
import { familiarString, formatReference, parseReference } from './reference.ts';
import { writeTar, type TarWriteEntry } from './tar/writer.ts';

/** The archive formats `exportImage` writes. */
export type ExportFormat = 'oci-archive' | 'docker-archive';

/** What `exportImage` needs from the image store. */
export interface ExportDeps {
  content(): Promise<ContentStore>;
  imageStatus(ref: string, opts?: CallOptions): Promise<Image | undefined>;
}

export interface ExportOptions extends CallOptions {
  /** Blob bytes read so far (layers, configs, manifests). */
  readonly onBytes?: (bytes: number) => void;
}

/** One image to export and the tag references it goes out under. */
interface Selected {
  readonly id: ImageId;
  readonly manifest: Descriptor;
  readonly parsedManifest: ImageManifest;
  /** Normalised tag references (`docker.io/library/busybox:latest`), in the order asked. */
  readonly tags: string[];
}

const FILE = 0o644;
const DIR = 0o755;

/** Resolves `refs` to stored images; a reference that is a tag of the image is exported under it. */
async function select(images: ExportDeps, store: ContentStore, refs: readonly string[], opts: CallOptions): Promise<Selected[]> {
  if (refs.length === 0) throw new RuntimeError('InvalidArgument', 'export: no images named');
  const byId = new Map<string, Selected>();
  for (const ref of refs) {
    const image = await images.imageStatus(ref, opts);
    if (!image) throw new RuntimeError('NotFound', `export: image ${JSON.stringify(ref)} not found`);
    const record = store.refDb.images[image.id];
    if (!record) throw new RuntimeError('NotFound', `export: image ${JSON.stringify(ref)} was removed`);
    let sel = byId.get(image.id);
    if (!sel) {
      const parsedManifest = parseManifest(await store.readBlob(record.manifestDigest), `manifest ${record.manifestDigest}`);
      sel = {
        id: image.id,
        manifest: { mediaType: record.manifestMediaType, digest: record.manifestDigest, size: record.manifestSize },
        parsedManifest,
        tags: [],
      };
      byId.set(image.id, sel);
    }
    let tag: string | undefined;
    try {
      const r = parseReference(ref);
      if (r.digest === undefined) tag = formatReference({ ...r, tag: r.tag ?? 'latest' });
    } catch {
      // an image ID: exported without a name
    }
    if (tag !== undefined && store.refDb.refs[tag] === image.id && !sel.tags.includes(tag)) sel.tags.push(tag);
  }
  return [...byId.values()];
}

/** A stored blob as a tar file entry, reporting progress. */
function blobEntry(store: ContentStore, name: string, digest: Digest, size: number, progress: (n: number) => void): TarWriteEntry {
  return {
    header: { name, type: 'file', mode: FILE, size },
    body: (async function* () {
      for await (const chunk of await store.openBlob(digest)) {
        progress((chunk as Buffer).length);
        yield chunk as Buffer;
      }
    })(),
  };
}

const fileEntry = (name: string, data: Buffer | string): TarWriteEntry => {
  const body = Buffer.from(data);
  return { header: { name, type: 'file', mode: FILE, size: body.length }, body };
};
const dirEntry = (name: string): TarWriteEntry => ({ header: { name, type: 'directory', mode: DIR } });

async function* ociArchive(store: ContentStore, selected: readonly Selected[], progress: (n: number) => void): AsyncGenerator<TarWriteEntry> {
  const manifests: object[] = [];
  for (const s of selected) {
    const base = { mediaType: s.manifest.mediaType, digest: s.manifest.digest, size: s.manifest.size };
    if (s.tags.length === 0) manifests.push(base);
    for (const tag of s.tags) {
      const r = parseReference(tag);
      manifests.push({ ...base, annotations: { [IMAGE_NAME_ANNOTATION]: tag, [REF_NAME_ANNOTATION]: r.tag ?? 'latest' } });
    }
  }
  yield fileEntry('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  yield fileEntry('index.json', JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests }));
  yield dirEntry('blobs');
  yield dirEntry('blobs/sha256');
  const seen = new Set<string>();
  for (const s of selected) {
    const m = s.parsedManifest;
    for (const d of [s.manifest, m.config, ...m.layers]) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      yield blobEntry(store, `blobs/sha256/${digestHex(d.digest)}`, d.digest, d.size, progress);
    }
  }
}

/** The uncompressed bytes of a layer blob. */
async function* layerTar(store: ContentStore, layer: Descriptor): AsyncGenerator<Buffer> {
  const blob = await store.openBlob(layer.digest);
  if (layer.mediaType === MEDIA_TYPE.ociLayer || layer.mediaType === MEDIA_TYPE.dockerLayer) {
    yield* blob as AsyncIterable<Buffer>;
    return;
  }
  if (layer.mediaType !== MEDIA_TYPE.ociLayerGzip && layer.mediaType !== MEDIA_TYPE.dockerLayerGzip)
    throw new RuntimeError('InvalidArgument', `export: layer ${layer.digest} has media type ${layer.mediaType}, which a docker-archive cannot hold (only gzip or plain tar)`);
  yield* pipeline(blob, createGunzip(), () => undefined) as AsyncIterable<Buffer>;
}

/** The uncompressed size of a layer, checking that its content is the config's diff ID. */
async function layerTarSize(store: ContentStore, layer: Descriptor, diffId: Digest): Promise<number> {
  const d = new Digester();
  for await (const chunk of layerTar(store, layer)) d.update(chunk);
  const got = d.digest();
  if (got !== diffId) throw new RuntimeError('Internal', `export: layer ${layer.digest} uncompresses to ${got}, not its diff ID ${diffId}`);
  return d.bytes;
}

async function* dockerArchive(store: ContentStore, selected: readonly Selected[], progress: (n: number) => void): AsyncGenerator<TarWriteEntry> {
  const manifest: object[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const written = new Set<string>();
  for (const s of selected) {
    const configBytes = await store.readBlob(s.parsedManifest.config.digest);
    const diffIds = parseImageConfig(configBytes, `config ${s.parsedManifest.config.digest}`).rootfs.diff_ids;
    if (diffIds.length !== s.parsedManifest.layers.length)
      throw new RuntimeError('Internal', `export: image ${s.id} has ${s.parsedManifest.layers.length} layers and ${diffIds.length} diff IDs`);
    const configName = `${digestHex(s.parsedManifest.config.digest)}.json`;
    if (!written.has(configName)) {
      written.add(configName);
      progress(configBytes.length);
      yield fileEntry(configName, configBytes);
    }
    const layerPaths: string[] = [];
    let parent = '';
    for (const [i, layer] of s.parsedManifest.layers.entries()) {
      // Docker's v1 layer IDs name a layer with everything under it, so a shared diff with another parent gets its own ID.
      const id = digestHex(sha256Of(`${parent}\n${diffIds[i]}`));
      layerPaths.push(`${id}/layer.tar`);
      if (!written.has(id)) {
        written.add(id);
        yield dirEntry(id);
        yield fileEntry(`${id}/VERSION`, '1.0');
        yield fileEntry(`${id}/json`, JSON.stringify({ id, ...(parent && { parent }), created: '1970-01-01T00:00:00Z' }));
        const size = await layerTarSize(store, layer, diffIds[i]!);
        yield {
          header: { name: `${id}/layer.tar`, type: 'file', mode: FILE, size },
          body: (async function* () {
            for await (const chunk of layerTar(store, layer)) {
              progress(chunk.length);
              yield chunk;
            }
          })(),
        };
      }
      parent = id;
    }
    const repoTags = s.tags.map((t) => familiarString(parseReference(t)));
    for (const t of repoTags) {
      const colon = t.lastIndexOf(':');
      (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = parent;
    }
    manifest.push({ Config: configName, RepoTags: repoTags.length > 0 ? repoTags : null, Layers: layerPaths });
  }
  yield fileEntry('manifest.json', JSON.stringify(manifest));
  if (Object.keys(repositories).length > 0) yield fileEntry('repositories', JSON.stringify(repositories));
}

/**
 * Writes the images `refs` name (references or image IDs, as `imageStatus`
 * takes them) as one archive in `format` to `out`: a stream (ended when the
 * archive is complete, destroyed on failure) or a file path, which is written
 * to a temporary name and renamed into place only when complete.
 * An image named by a tag goes out under that tag; several refs of one image
 * give one image with several names. Rejects `NotFound` (an image is absent),
 * `InvalidArgument` (no refs, zstd layers in a docker-archive), `Internal`.
 */
export async function exportImage(
  images: ExportDeps, refs: readonly string[], format: ExportFormat, out: Writable | string, opts: ExportOptions = {},
): Promise<void> {
  if (format !== 'oci-archive' && format !== 'docker-archive')
    throw new RuntimeError('InvalidArgument', `export: unsupported format ${JSON.stringify(format)} (oci-archive or docker-archive)`);
  const store = await images.content();
  const selected = await select(images, store, refs, opts);
  let read = 0;
  const progress = (n: number): void => {
    read += n;
    opts.onBytes?.(read);
  };
  const entries = format === 'oci-archive' ? ociArchive(store, selected, progress) : dockerArchive(store, selected, progress);
  const source = Readable.from(writeTar(entries));
  const signal = opts.signal ? { signal: opts.signal } : {};
  if (typeof out !== 'string') {
    await pipelineAsync(source, out, signal);
    return;
  }
  const tmp = `${out}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await pipelineAsync(source, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), signal);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

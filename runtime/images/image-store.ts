/**
 * The node's image store: `ImageService` for the API side and `RootfsSource`
 * for the container runtime, over a `ContentStore` (OCI layout) and unpacked
 * layers, all under one root:
 *
 * ```
 * <root>/oci-layout, index.json, refs.json, blobs/sha256/…   ContentStore
 * <root>/layers/<diffID hex>/                                  unpacked layers, shared, read-only
 * <root>/tmp/                                                  archive extraction scratch
 * ```
 *
 * Lifetime of an image record: created by an import (or, later, a pull);
 * removed by `removeImage` of its last reference or of its ID, refused while a
 * container pins it; an image that loses its last reference to a retag, or
 * that has no reference when its last pin goes, is removed too. An import
 * without any name is kept until removed by ID. Removal collects unreachable
 * blobs and layer directories.
 */
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { ImageService, ImportOptions, PullOptions, PushOptions } from '../cri/image-service.ts';
import type { AuthConfig, CallOptions, FilesystemUsage, Image, ImageFilter, ImageId, ImageRef, RegistryConfig } from '../cri/types.ts';
import { pullFromRegistry } from '../distribution/pull.ts';
import { pushToRegistry } from '../distribution/push.ts';
import { RegistryClient } from '../distribution/registry-client.ts';
import { ContentStore, type ImageRecord, type Lease, type RefDatabase, type RefDatabaseDraft } from './content-store.ts';
import { digestHex, type Digest } from './digest.ts';
import { commitImage, type CommitInput, type CommitResult } from './commit.ts';
import { exportImage, type ExportFormat, type ExportOptions } from './export.ts';
import { importFromPath } from './import.ts';
import { parseImageConfig, parseManifest, toImageConfig, type Descriptor, type ImageManifest, type OciImageConfig } from './oci.ts';
import { formatReference, parseReference, referenceName, type ImageReference } from './reference.ts';
import type { RootfsSource, RunnableImage } from './rootfs-source.ts';
import { unpackLayer } from './unpack.ts';

export interface ImageStoreOptions {
  /** Data directory of the store (e.g. `/var/lib/berth/images`); created if missing. */
  readonly root: string;
  /** Insecure registries and extra CAs for pulls and pushes that do not pass their own. */
  readonly registry?: RegistryConfig;
}

/** An image whose blobs are stored, to be recorded by `ImageStore.recordImage`. */
export interface RecordImageInput extends CallOptions {
  /** Descriptor of the manifest blob. */
  readonly manifest: Descriptor;
  readonly parsedManifest: ImageManifest;
  /** The config digest: the image ID. */
  readonly configDigest: Digest;
  readonly config: OciImageConfig;
  /** References to point at the image (tags or digest references). */
  readonly refs: readonly ImageReference[];
  /** The lease the blobs were written under; the layers' diff IDs are added to it. */
  readonly lease: Lease;
}

export interface ImageGarbageCollectResult {
  readonly removedBlobs: readonly string[];
  readonly removedLayers: readonly string[];
  readonly freedBlobBytes: number;
}

/** How a reference string found its image. */
interface Resolved {
  readonly record: ImageRecord;
  readonly by: 'id' | 'tag' | 'digest';
  readonly ref?: ImageReference;
}

const FULL_ID = /^sha256:[a-f0-9]{64}$/;
const SHORT_ID = /^(?:sha256:)?([a-f0-9]{12,64})$/;

const isDigestRef = (ref: string): boolean => ref.includes('@');
const nameOfRef = (ref: string): string => referenceName(parseReference(ref));

/** Tag and digest references of one image in the database, sorted. */
function refsOf(db: RefDatabase, id: string): string[] {
  return Object.entries(db.refs).filter(([, v]) => v === id).map(([k]) => k).sort();
}

/** A registry host as a reference's domain names it: a DNS name or IPv4 address, or a bracketed IPv6 one, with an optional port. */
const REGISTRY_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** See the module comment. Safe for concurrent calls within one process; one process per root. */
export class ImageStore implements ImageService, RootfsSource {
  readonly root: string;
  private readonly layersDir: string;
  private readonly tmpDir: string;
  private opened?: Promise<ContentStore>;
  private readonly unpacking = new Map<string, Promise<string>>();
  private readonly manifests = new Map<string, ImageManifest>();
  private readonly configs = new Map<string, OciImageConfig>();
  private readonly registry: RegistryConfig;

  constructor(opts: ImageStoreOptions) {
    this.root = opts.root;
    this.registry = opts.registry ?? {};
    this.layersDir = join(opts.root, 'layers');
    this.tmpDir = join(opts.root, 'tmp');
  }

  /** The underlying content store, opened on first use (cleaning leftovers of a crash). */
  content(): Promise<ContentStore> {
    this.opened ??= (async () => {
      const store = await ContentStore.open({ root: this.root });
      await rm(this.tmpDir, { recursive: true, force: true });
      await mkdir(this.layersDir, { recursive: true });
      for (const name of await readdir(this.layersDir)) {
        if (name.startsWith('.tmp-')) await rm(join(this.layersDir, name), { recursive: true, force: true });
      }
      return store;
    })();
    return this.opened;
  }

  // ---- ImageService -------------------------------------------------------

  /** Every image, or the one `filter.ref` resolves to; oldest first. */
  async listImages(filter?: ImageFilter, _opts?: CallOptions): Promise<Image[]> {
    const store = await this.content();
    if (filter?.ref !== undefined) {
      const r = this.resolve(store.refDb, filter.ref);
      return r ? [await this.toImage(store, r.record)] : [];
    }
    const records = Object.values(store.refDb.images).sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
    return Promise.all(records.map((r) => this.toImage(store, r)));
  }

  /**
   * The image `ref` names: a reference (normalised: `busybox` is
   * `docker.io/library/busybox:latest`), a digest reference
   * (`busybox@sha256:<manifest>`), an image ID (`sha256:<config>` or its 64
   * hex), or a unique ID prefix of at least 12 hex. Undefined when absent;
   * rejects `InvalidArgument` for a malformed reference or an ambiguous prefix.
   */
  async imageStatus(ref: ImageRef, _opts?: CallOptions): Promise<Image | undefined> {
    const store = await this.content();
    const r = this.resolve(store.refDb, ref);
    return r ? this.toImage(store, r.record) : undefined;
  }

  /**
   * Pulls `ref` (normalised; `latest` when it has neither tag nor digest) from
   * its registry (`runtime/distribution`), unpacks it, and points the tag and
   * `name@<manifest digest>` at it (for an index, the host platform's manifest
   * digest: a reference by index digest is not recorded). Blobs of a failed
   * pull stay until the next garbage collection, so a retry does not fetch
   * them again. Rejects as `ImageService.pullImage` says.
   */
  async pullImage(ref: ImageRef, auth?: AuthConfig, opts: PullOptions = {}): Promise<ImageId> {
    const parsed = parseReference(ref);
    const store = await this.content();
    const registry = opts.registry ?? this.registry;
    const credentials = auth ?? opts.auth ?? registry.credentials?.[parsed.domain];
    const client = new RegistryClient({ domain: parsed.domain, registry, ...(credentials && { credentials }) });
    const lease = store.lease();
    try {
      const pulled = await pullFromRegistry({ store, client }, {
        ref: parsed, lease,
        ...(opts.signal && { signal: opts.signal }),
        ...(opts.onProgress && { onProgress: opts.onProgress }),
      });
      const refs: ImageReference[] = [{ domain: parsed.domain, path: parsed.path, digest: pulled.manifest.digest }];
      if (parsed.digest === undefined) refs.push({ domain: parsed.domain, path: parsed.path, tag: parsed.tag ?? 'latest' });
      return await this.recordImage({ ...pulled, refs, lease, ...(opts.signal && { signal: opts.signal }) });
    } finally {
      lease.release();
      client.close();
    }
  }

  /** As `ImageService.checkRegistryLogin`, with this store's registry configuration (insecure hosts, CAs). */
  async checkRegistryLogin(registry: string, auth: AuthConfig, opts: CallOptions = {}): Promise<void> {
    if (!REGISTRY_HOST.test(registry)) throw new RuntimeError('InvalidArgument', `login: ${JSON.stringify(registry)} is not a registry host (name[:port])`);
    const client = new RegistryClient({ domain: registry, registry: this.registry, credentials: auth });
    try {
      const res = await client.expect({ method: 'GET', path: '/v2/', scopes: [], what: `login to ${registry}`, ...(opts.signal && { signal: opts.signal }) }, [200]);
      res.resume();
    } finally {
      client.close();
    }
  }

  /**
   * Pushes the image `ref` resolves to (as `imageStatus`) to `target` with
   * `runtime/distribution`; blobs are mounted from another repository of the
   * target registry when the image has a reference there. Resolves with the
   * manifest digest. Rejects `NotFound` when `ref` names no image, else as
   * `ImageService.pushImage` says.
   */
  async pushImage(ref: ImageRef, target: ImageRef, opts: PushOptions = {}): Promise<string> {
    const store = await this.content();
    const dest = parseReference(target);
    const r = this.resolve(store.refDb, ref);
    if (!r) throw new RuntimeError('NotFound', `push ${target}: image ${JSON.stringify(ref)} not found`);
    const record = r.record;
    const manifestBytes = await store.readBlob(record.manifestDigest);
    const manifest = await this.manifestOf(store, record);
    const mountFrom = refsOf(store.refDb, record.id).map((x) => parseReference(x)).filter((x) => x.domain === dest.domain).map((x) => x.path);
    const registry = opts.registry ?? this.registry;
    const credentials = opts.auth ?? registry.credentials?.[dest.domain];
    const client = new RegistryClient({ domain: dest.domain, registry, ...(credentials && { credentials }) });
    try {
      const result = await pushToRegistry({ store, client }, {
        target: dest,
        manifest: { mediaType: record.manifestMediaType, digest: record.manifestDigest, size: record.manifestSize },
        manifestBytes,
        blobs: [manifest.config, ...manifest.layers],
        mountFrom,
        ...(opts.chunkSizeBytes !== undefined && { chunkSizeBytes: opts.chunkSizeBytes }),
        ...(opts.signal && { signal: opts.signal }),
        ...(opts.onProgress && { onProgress: opts.onProgress }),
      });
      return result.digest;
    } finally {
      client.close();
    }
  }

  /**
   * Imports an OCI layout directory, OCI archive or docker-archive at `path`,
   * unpacks its layers, and tags it with `opts.tags` (default: the names the
   * archive carries). Tags move from any image that had them. Idempotent for
   * the same content. Rejects `InvalidArgument` (bad tag, hostile or corrupt
   * content — the message names the entry), `NotFound` (no such path).
   */
  async importImage(path: string, opts: ImportOptions = {}): Promise<ImageId> {
    const store = await this.content();
    const requested = (opts.tags ?? []).map((t) => parseReference(t));
    const lease = store.lease();
    try {
      const imported = await importFromPath(path, {
        store, tmpDir: this.tmpDir, lease,
        selectors: requested.map(formatReference),
        ...(opts.signal && { signal: opts.signal }),
        ...(opts.onProgress && { onProgress: opts.onProgress }),
      });
      let refs = requested;
      if (opts.tags === undefined) {
        refs = imported.names.flatMap((n) => {
          try {
            return [parseReference(n)];
          } catch {
            return [];
          }
        });
      }
      return await this.recordImage({ ...imported, refs, lease, ...(opts.signal && { signal: opts.signal }) });
    } catch (err) {
      // Drop whatever this import stored before it failed; the failure is what the caller needs.
      lease.release();
      await this.garbageCollect().catch(() => undefined);
      throw err;
    } finally {
      lease.release();
    }
  }

  /**
   * Records an image whose manifest, config and layer blobs are already in the
   * content store (written under `input.lease` by an import, pull, build or
   * commit): unpacks its layers, creates the image record and points `refs` at it
   * (moving them from any other image). Idempotent for the same content: an image
   * the store holds keeps its record, and so its manifest digest. The caller still
   * releases its lease. Rejects `InvalidArgument` when a digest reference does not
   * match the manifest.
   */
  async recordImage(input: RecordImageInput): Promise<ImageId> {
    const store = await this.content();
    const { manifest, parsedManifest, config, lease } = input;
    const id = input.configDigest as string as ImageId;
    this.manifests.set(manifest.digest, parsedManifest);
    this.configs.set(id, config);
    for (const d of config.rootfs.diff_ids) lease.add(d);
    await this.ensureLayers(store, parsedManifest, config, input.signal ? { signal: input.signal } : {});
    const unused = await store.update((db) => {
      const previous = db.images[id];
      const keptPrevious = previous !== undefined && previous.manifestDigest !== manifest.digest;
      if (!keptPrevious) {
        db.images[id] = {
          id,
          manifestDigest: manifest.digest as Digest,
          manifestMediaType: manifest.mediaType,
          manifestSize: manifest.size,
          createdAtMs: previous?.createdAtMs ?? Date.now(),
        };
      }
      for (const r of input.refs) this.addRef(db, id, r);
      return keptPrevious;
    });
    if (unused) {
      lease.release();
      await this.garbageCollect();
    }
    return id;
  }

  /** Adds `newRef` to the image `ref` resolves to, moving it from any other image. Rejects `NotFound`, `InvalidArgument`. */
  async tagImage(ref: ImageRef, newRef: ImageRef, _opts?: CallOptions): Promise<void> {
    const store = await this.content();
    const target = parseReference(newRef);
    await store.update((db) => {
      const r = this.resolve(db, ref);
      if (!r) throw new RuntimeError('NotFound', `image ${JSON.stringify(ref)} not found`);
      this.addRef(db, r.record.id, target);
    });
  }

  /**
   * Removes a reference; the image goes when no reference is left (or when
   * `ref` is an image ID). A digest reference removes every reference of its
   * repository to the image. Refuses with `FailedPrecondition`, naming the
   * containers, when the image would go while pinned. Idempotent: resolves if
   * `ref` names nothing. Collects unreachable blobs and layers afterwards.
   */
  async removeImage(ref: ImageRef, _opts?: CallOptions): Promise<void> {
    const store = await this.content();
    const removedImage = await store.update((db) => {
      const r = this.resolve(db, ref);
      if (!r) return false;
      const id = r.record.id;
      const mine = refsOf(db, id);
      let drop: string[];
      if (r.by === 'id') drop = mine;
      else if (r.by === 'digest') drop = mine.filter((x) => nameOfRef(x) === referenceName(r.ref!));
      else {
        const tag = formatReference(r.ref!);
        drop = [tag];
        const name = referenceName(r.ref!);
        const sameRepoTagsLeft = mine.some((x) => x !== tag && !isDigestRef(x) && nameOfRef(x) === name);
        if (!sameRepoTagsLeft) drop.push(...mine.filter((x) => isDigestRef(x) && nameOfRef(x) === name));
      }
      const goesAway = mine.every((x) => drop.includes(x));
      if (goesAway) {
        const pins = db.pins[id] ?? [];
        if (pins.length > 0)
          throw new RuntimeError('FailedPrecondition', `image ${JSON.stringify(ref)} (${id}) is in use by container ${pins.join(', ')}`);
        delete db.images[id];
        delete db.pins[id];
      }
      for (const x of drop) delete db.refs[x];
      return goesAway;
    });
    if (removedImage) await this.garbageCollect();
  }

  /** Space and inodes used by the store's root (blobs, layers, database). */
  async imageFsInfo(_opts?: CallOptions): Promise<FilesystemUsage[]> {
    await this.content();
    let usedBytes = 0;
    let inodesUsed = 0;
    const seen = new Set<number>();
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        const st = await lstat(p).catch(() => undefined);
        if (!st || seen.has(st.ino)) continue;
        if (st.nlink > 1) seen.add(st.ino);
        inodesUsed++;
        usedBytes += st.blocks * 512;
        if (e.isDirectory()) await walk(p);
      }
    };
    await walk(this.root);
    return [{ mountpoint: this.root, usedBytes, inodesUsed }];
  }

  // ---- commit and export --------------------------------------------------

  /**
   * Makes a new image from `input.baseImage` plus the overlayfs upper directory
   * `input.upperDir` as its top layer (whiteouts converted to OCI ones), with
   * `input.changes` applied to the config, and tags it with `input.tags`
   * (`docker commit`). The caller keeps the directory still (pauses the
   * container). Rejects as `commitImage` does; a failed commit stores nothing.
   */
  commit(input: CommitInput): Promise<CommitResult> {
    return commitImage(this, input);
  }

  /**
   * Writes the images `refs` name as one `oci-archive` or `docker-archive`
   * tarball to `out` (a stream or a file path), readable by `importImage`,
   * skopeo, podman and Docker (`docker save`). Rejects as `exportImage` does.
   */
  exportImages(refs: readonly ImageRef[], format: ExportFormat, out: Writable | string, opts?: ExportOptions): Promise<void> {
    return exportImage(this, refs, format, out, opts);
  }

  // ---- RootfsSource --------------------------------------------------------

  /**
   * The image `ref` resolves to (as `imageStatus`) with its layer directories,
   * bottom first, unpacking any layer not yet unpacked. Rejects `NotFound`
   * when absent. Call `pin` before creating a container from it.
   */
  async resolveForRun(ref: ImageRef, opts?: CallOptions): Promise<RunnableImage> {
    const store = await this.content();
    const r = this.resolve(store.refDb, ref);
    if (!r) throw new RuntimeError('NotFound', `image ${JSON.stringify(ref)} not found`);
    const manifest = await this.manifestOf(store, r.record);
    const config = await this.configOf(store, r.record);
    const layerDirs = await this.ensureLayers(store, manifest, config, opts ?? {});
    return { image: await this.toImage(store, r.record), layerDirs };
  }

  /**
   * Records that `containerId` uses the image (`imageId` may be any form
   * `imageStatus` accepts); persisted. Idempotent. Rejects `NotFound`.
   */
  async pin(imageId: string, containerId: string): Promise<void> {
    const store = await this.content();
    await store.update((db) => {
      const r = this.resolve(db, imageId);
      if (!r) throw new RuntimeError('NotFound', `image ${JSON.stringify(imageId)} not found`);
      const pins = new Set(db.pins[r.record.id] ?? []);
      pins.add(containerId);
      db.pins[r.record.id] = [...pins].sort();
    });
  }

  /** Forgets that use; an image left with neither references nor pins is removed. Idempotent. */
  async unpin(imageId: string, containerId: string): Promise<void> {
    const store = await this.content();
    const removed = await store.update((db) => {
      let r: Resolved | undefined;
      try {
        r = this.resolve(db, imageId);
      } catch (err) {
        if (isRuntimeError(err, 'InvalidArgument')) return false;
        throw err;
      }
      if (!r) return false;
      const id = r.record.id;
      const left = (db.pins[id] ?? []).filter((c) => c !== containerId);
      if (left.length > 0) db.pins[id] = left;
      else delete db.pins[id];
      if (left.length === 0 && refsOf(db, id).length === 0) {
        delete db.images[id];
        return true;
      }
      return false;
    });
    if (removed) await this.garbageCollect();
  }

  // ---- maintenance ---------------------------------------------------------

  /** Removes blobs and unpacked layers that no image record (and no import in progress) uses. */
  async garbageCollect(): Promise<ImageGarbageCollectResult> {
    const store = await this.content();
    const blobs = await store.garbageCollect();
    const live = store.leasedDigests();
    for (const record of Object.values(store.refDb.images)) {
      const config = await this.configOf(store, record).catch(() => undefined);
      for (const d of config?.rootfs.diff_ids ?? []) live.add(d);
    }
    const removedLayers: string[] = [];
    for (const name of await readdir(this.layersDir)) {
      if (name.startsWith('.')) continue;
      if (live.has(`sha256:${name}`) || this.unpacking.has(`sha256:${name}`)) continue;
      await rm(join(this.layersDir, name), { recursive: true, force: true });
      removedLayers.push(`sha256:${name}`);
    }
    for (const d of blobs.removedBlobs) {
      this.manifests.delete(d);
      this.configs.delete(d);
    }
    return { removedBlobs: blobs.removedBlobs, removedLayers, freedBlobBytes: blobs.freedBytes };
  }

  // ---- internals -----------------------------------------------------------

  private addRef(db: RefDatabaseDraft, id: ImageId, ref: ImageReference): void {
    const record = db.images[id]!;
    if (ref.digest !== undefined && ref.digest !== record.manifestDigest)
      throw new RuntimeError('InvalidArgument', `reference ${formatReference(ref)} does not match the image's manifest digest ${record.manifestDigest}`);
    const keys = ref.digest !== undefined
      ? [`${referenceName(ref)}@${ref.digest}`, ...(ref.tag !== undefined ? [`${referenceName(ref)}:${ref.tag}`] : [])]
      : [formatReference(ref.tag === undefined ? { ...ref, tag: 'latest' } : ref)];
    for (const key of keys) {
      const previous = db.refs[key];
      db.refs[key] = id;
      if (previous !== undefined && previous !== id && refsOf(db, previous).length === 0 && (db.pins[previous] ?? []).length === 0)
        delete db.images[previous];
    }
  }

  private resolve(db: RefDatabase, input: string): Resolved | undefined {
    if (FULL_ID.test(input)) {
      const record = db.images[input];
      return record && { record, by: 'id' };
    }
    if (/^[a-f0-9]{64}$/.test(input)) {
      const record = db.images[`sha256:${input}`];
      return record && { record, by: 'id' };
    }
    let ref: ImageReference | undefined;
    let parseError: unknown;
    try {
      ref = parseReference(input);
    } catch (err) {
      parseError = err;
    }
    if (ref !== undefined) {
      if (ref.digest !== undefined) {
        const name = referenceName(ref);
        const key = `${name}@${ref.digest}`;
        const byKey = db.refs[key];
        if (byKey !== undefined && db.images[byKey]) return { record: db.images[byKey]!, by: 'digest', ref };
        for (const record of Object.values(db.images)) {
          if (record.manifestDigest === ref.digest && refsOf(db, record.id).some((x) => nameOfRef(x) === name))
            return { record, by: 'digest', ref };
        }
      } else {
        const key = formatReference(ref.tag === undefined ? { ...ref, tag: 'latest' } : ref);
        const id = db.refs[key];
        if (id !== undefined && db.images[id]) return { record: db.images[id]!, by: 'tag', ref: { ...ref, tag: ref.tag ?? 'latest' } };
      }
    }
    const short = SHORT_ID.exec(input);
    if (short) {
      const matches = Object.values(db.images).filter((r) => digestHex(r.id as string as Digest).startsWith(short[1]!));
      if (matches.length > 1) throw new RuntimeError('InvalidArgument', `image ID prefix ${JSON.stringify(input)} is ambiguous`);
      if (matches.length === 1) return { record: matches[0]!, by: 'id' };
    }
    if (parseError !== undefined) throw parseError;
    return undefined;
  }

  private async manifestOf(store: ContentStore, record: ImageRecord): Promise<ImageManifest> {
    let m = this.manifests.get(record.manifestDigest);
    if (!m) {
      m = parseManifest(await store.readBlob(record.manifestDigest), `manifest ${record.manifestDigest}`);
      this.manifests.set(record.manifestDigest, m);
    }
    return m;
  }

  private async configOf(store: ContentStore, record: ImageRecord): Promise<OciImageConfig> {
    let c = this.configs.get(record.id);
    if (!c) {
      c = parseImageConfig(await store.readBlob(record.id as string as Digest), `config ${record.id}`);
      this.configs.set(record.id, c);
    }
    return c;
  }

  private async toImage(store: ContentStore, record: ImageRecord): Promise<Image> {
    const db = store.refDb;
    const manifest = await this.manifestOf(store, record);
    const config = await this.configOf(store, record);
    const refs = refsOf(db, record.id);
    const repoTags = refs.filter((x) => !isDigestRef(x));
    const repoDigests = new Set(refs.filter(isDigestRef));
    for (const t of repoTags) repoDigests.add(`${nameOfRef(t)}@${record.manifestDigest}`);
    return {
      id: record.id,
      repoTags,
      repoDigests: [...repoDigests].sort(),
      sizeBytes: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
      config: toImageConfig(config),
    };
  }

  /** Unpacks every layer not yet unpacked (once per diff ID, even under concurrent calls); returns their dirs, bottom first. */
  private async ensureLayers(
    store: ContentStore, manifest: ImageManifest, config: OciImageConfig, opts: CallOptions,
  ): Promise<string[]> {
    return Promise.all(manifest.layers.map(async (layer, i) => {
      const diffId = config.rootfs.diff_ids[i]!;
      let p = this.unpacking.get(diffId);
      if (!p) {
        p = unpackLayer({
          layersDir: this.layersDir,
          diffId,
          open: () => store.openBlob(layer.digest),
          ...(opts.signal && { signal: opts.signal }),
        }).then((r) => r.dir).finally(() => this.unpacking.delete(diffId));
        this.unpacking.set(diffId, p);
      }
      return p;
    }));
  }
}

/**
 * The content-addressed blob store and the local reference database, laid out
 * as an OCI image layout under `root`:
 *
 * ```
 * <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
 * <root>/blobs/sha256/<hex>  every blob, stored once, verified on write
 * <root>/index.json          OCI index of the stored images (derived, for other tools)
 * <root>/refs.json           the reference database: images, refs, pins, registry repositories (source of truth)
 * <root>/ingest/             blobs being written (and the built-in registry's uploads)
 * ```
 *
 * Words: an *image record* is an image the store holds, keyed by its image ID
 * (the config digest) and pointing at one manifest; a *ref* is a normalized
 * reference (`docker.io/library/busybox:latest`) naming an image record; a *pin*
 * says a container uses an image; a *lease* protects blobs being imported from
 * garbage collection until the import is recorded; a *repository* is what the
 * built-in registry (`registry/`) holds under one name: manifests, tags and
 * blob links, kept apart from the image records (a push makes no local image).
 *
 * One process owns a root: the database is cached in memory and written
 * atomically (tmp, fsync, rename) on every change, changes are serialised.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeFileAtomic } from '../atomic-file.ts';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ImageId } from '../cri/types.ts';
import { Digester, digestHex, isDigest, toDigest, type Digest } from './digest.ts';
import { MEDIA_TYPE, REF_NAME_ANNOTATION, isIndexMediaType, isManifestMediaType, parseIndex, parseManifest } from './oci.ts';

export interface ContentStoreOptions {
  /** Directory of the OCI layout; created if missing. */
  readonly root: string;
}

/** An image the store holds. */
export interface ImageRecord {
  /** The config digest. */
  readonly id: ImageId;
  readonly manifestDigest: Digest;
  readonly manifestMediaType: string;
  readonly manifestSize: number;
  readonly createdAtMs: number;
}

/** A manifest (or index) a registry repository holds, by digest. */
export interface RepositoryManifest {
  readonly mediaType: string;
  readonly size: number;
  readonly createdAtMs: number;
  /** OCI 1.1 `subject`: the manifest this one refers to (for the referrers API). */
  readonly subject?: Digest;
  /** OCI 1.1 `artifactType` (or, for an image manifest without one, its config's media type). */
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * One repository of the built-in registry. Every manifest and every blob link is a
 * garbage-collection root: the registry unlinks blobs no manifest uses once they are
 * older than its grace period, and then collects.
 */
export interface RepositoryRecord {
  /** Manifests and indexes by digest. */
  readonly manifests: Readonly<Record<string, RepositoryManifest>>;
  /** Tag → manifest digest (always a key of `manifests`). */
  readonly tags: Readonly<Record<string, Digest>>;
  /** Blobs uploaded to or mounted into the repository: digest → when linked (ms since the epoch). */
  readonly blobs: Readonly<Record<string, number>>;
}

/** The reference database (`refs.json`). */
export interface RefDatabase {
  readonly version: 1;
  /** Image records by image ID. */
  readonly images: Readonly<Record<string, ImageRecord>>;
  /** Normalized reference (tag or digest form) → image ID. */
  readonly refs: Readonly<Record<string, ImageId>>;
  /** Image ID → IDs of the containers using it, sorted. */
  readonly pins: Readonly<Record<string, readonly string[]>>;
  /** The built-in registry's repositories by name (`team/busybox`). Absent in files written before it. */
  readonly repositories: Readonly<Record<string, RepositoryRecord>>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends Readonly<Record<string, infer V>> ? Record<string, V> : T[K] };
/** A draft of the database handed to `update`. */
export type RefDatabaseDraft = Mutable<RefDatabase>;

export interface WriteBlobOptions extends CallOptions {
  /** Expected digest; when absent the digest is computed and returned. */
  readonly digest?: string;
  /** Expected size in bytes; the write is rejected if the content differs. */
  readonly size?: number;
  /** Names the blob in errors, e.g. `layer 2 of busybox.tar`. */
  readonly what?: string;
  /** Protects the blob from garbage collection until the lease is released. */
  readonly lease?: Lease;
  /** Called as bytes are written, with the count so far. */
  readonly onBytes?: (bytes: number) => void;
}

export interface WriteBlobResult {
  readonly digest: Digest;
  readonly size: number;
  /** True when the blob was already stored and the source was not read. */
  readonly existed: boolean;
}

export interface GarbageCollectResult {
  readonly removedBlobs: readonly Digest[];
  readonly freedBytes: number;
}

/** Digests (blobs or layer diff IDs) held back from garbage collection by an operation in progress. */
export class Lease {
  readonly digests = new Set<string>();
  constructor(private readonly onRelease: (l: Lease) => void) {}
  add(digest: string): void {
    this.digests.add(digest);
  }
  /** Ends the lease; its digests are collectable again unless something else references them. */
  release(): void {
    this.onRelease(this);
  }
}

const EMPTY_DB: RefDatabase = { version: 1, images: {}, refs: {}, pins: {}, repositories: {} };

const exists = async (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** The blob store and reference database of one OCI layout directory. See the module comment. */
export class ContentStore {
  readonly root: string;
  private db: RefDatabase = EMPTY_DB;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly leases = new Set<Lease>();

  private constructor(opts: ContentStoreOptions) {
    this.root = opts.root;
  }

  /** Opens (creating if needed) the store at `root`, discarding unfinished writes of an earlier process. */
  static async open(opts: ContentStoreOptions): Promise<ContentStore> {
    const store = new ContentStore(opts);
    await store.init();
    return store;
  }

  private async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await rm(join(this.root, 'ingest'), { recursive: true, force: true });
    await mkdir(join(this.root, 'ingest'));
    if (!(await exists(join(this.root, 'oci-layout'))))
      await writeFileAtomic(join(this.root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    try {
      const parsed = JSON.parse(await readFile(join(this.root, 'refs.json'), 'utf8')) as RefDatabase;
      if (parsed.version !== 1) throw new RuntimeError('Internal', `${this.root}/refs.json: unknown version ${String(parsed.version)}`);
      this.db = { version: 1, images: parsed.images ?? {}, refs: parsed.refs ?? {}, pins: parsed.pins ?? {}, repositories: parsed.repositories ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.persist(EMPTY_DB);
    }
  }

  /** Path of a blob's file (which may not exist). */
  blobPath(digest: Digest): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  /** Size of a stored blob; rejects `NotFound` when absent. */
  async blobSize(digest: Digest): Promise<number> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (err) {
      throw notFound(digest, err);
    }
  }

  /** A stored blob's bytes (for manifests and configs); rejects `NotFound` when absent. */
  async readBlob(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      throw notFound(digest, err);
    }
  }

  /** A stream of a stored blob; rejects `NotFound` when absent. */
  async openBlob(digest: Digest): Promise<ReadStream> {
    if (!(await this.hasBlob(digest))) throw notFound(digest);
    return createReadStream(this.blobPath(digest));
  }

  /**
   * Stores a blob, verifying its digest (and size) while streaming: the bytes
   * go to a temporary file that is hashed, fsynced and renamed into place only
   * if they match; on mismatch nothing is left and the write rejects with
   * `InvalidArgument`. A blob already stored is not written again (`existed`),
   * and `source` is then not called.
   */
  async writeBlob(source: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: WriteBlobOptions = {}): Promise<WriteBlobResult> {
    const what = opts.what ?? 'blob';
    const expected = opts.digest === undefined ? undefined : toDigest(opts.digest, what);
    if (expected !== undefined) {
      opts.lease?.add(expected);
      if (await this.hasBlob(expected)) {
        const size = await this.blobSize(expected);
        if (opts.size !== undefined && size !== opts.size)
          throw new RuntimeError('InvalidArgument', `${what} ${expected}: size ${opts.size} given, stored blob has ${size} bytes`);
        return { digest: expected, size, existed: true };
      }
    }
    const tmp = join(this.root, 'ingest', randomBytes(12).toString('hex'));
    const digester = new Digester();
    const fh = await open(tmp, 'wx', 0o444);
    let renamed = false;
    try {
      try {
        for await (const chunk of source()) {
          opts.signal?.throwIfAborted();
          digester.update(chunk);
          if (opts.size !== undefined && digester.bytes > opts.size)
            throw new RuntimeError('InvalidArgument', `${what}${expected ? ` ${expected}` : ''}: more than the ${opts.size} bytes given`);
          await fh.write(chunk);
          opts.onBytes?.(digester.bytes);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = digester.digest();
      if (expected !== undefined && digest !== expected)
        throw new RuntimeError('InvalidArgument', `${what} ${expected}: content has digest ${digest}`);
      if (opts.size !== undefined && digester.bytes !== opts.size)
        throw new RuntimeError('InvalidArgument', `${what} ${digest}: ${digester.bytes} bytes, ${opts.size} given`);
      opts.lease?.add(digest);
      await rename(tmp, this.blobPath(digest));
      renamed = true;
      await syncDir(join(this.root, 'blobs', 'sha256'));
      return { digest, size: digester.bytes, existed: false };
    } finally {
      if (!renamed) await rm(tmp, { force: true });
    }
  }

  /** Directory of blobs being written; files in it are removed when the store opens. */
  get ingestDir(): string {
    return join(this.root, 'ingest');
  }

  /**
   * Moves a file the caller wrote under `ingestDir` and has already hashed into the
   * store as blob `digest` (fsync, rename, fsync of the directory). The caller vouches
   * for the digest: it must have hashed exactly the bytes of `path`. If the blob is
   * already stored the file is removed instead. Adds the digest to `lease` first.
   */
  async commitIngested(path: string, digest: Digest, opts: { readonly lease?: Lease } = {}): Promise<{ readonly existed: boolean }> {
    opts.lease?.add(digest);
    if (await this.hasBlob(digest)) {
      await rm(path, { force: true });
      return { existed: true };
    }
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(path, this.blobPath(digest));
    await syncDir(join(this.root, 'blobs', 'sha256'));
    return { existed: false };
  }

  /** The reference database as of the last completed update. Do not mutate. */
  get refDb(): RefDatabase {
    return this.db;
  }

  /**
   * Changes the reference database: `fn` edits a draft, which is written
   * atomically and becomes current only if `fn` resolves. Updates (and garbage
   * collection) run one at a time, in call order.
   */
  update<T>(fn: (draft: RefDatabaseDraft) => T | Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      const draft = structuredClone(this.db) as RefDatabaseDraft;
      const result = await fn(draft);
      await this.persist(draft);
      this.db = draft;
      return result;
    });
  }

  /** Starts a lease; release it once the blobs it holds are referenced by an image record (or not needed). */
  lease(): Lease {
    const l = new Lease((x) => this.leases.delete(x));
    this.leases.add(l);
    return l;
  }

  /** Digests held by leases now (blobs and layer diff IDs). */
  leasedDigests(): Set<string> {
    const out = new Set<string>();
    for (const l of this.leases) for (const d of l.digests) out.add(d);
    return out;
  }

  /**
   * Removes every blob reachable from no image record and no registry
   * repository (manifests and blob links) and held by no lease.
   * Image records exist while a ref names them or a container pins them (and
   * for untagged imports, until removed), so this keeps every referenced and
   * every pinned image whole. Serialised with `update`.
   */
  garbageCollect(): Promise<GarbageCollectResult> {
    return this.exclusive(async () => {
      const live = await this.reachableBlobs();
      for (const d of this.leasedDigests()) live.add(d);
      const removedBlobs: Digest[] = [];
      let freedBytes = 0;
      for (const hex of await readdir(join(this.root, 'blobs', 'sha256'))) {
        const digest = `sha256:${hex}` as Digest;
        if (live.has(digest)) continue;
        const p = join(this.root, 'blobs', 'sha256', hex);
        freedBytes += (await stat(p)).size;
        await unlink(p);
        removedBlobs.push(digest);
      }
      return { removedBlobs, freedBytes };
    });
  }

  /**
   * Digests of every blob an image record or a registry repository reaches
   * (manifest, config, layers; children of indexes; a repository's blob links).
   */
  async reachableBlobs(): Promise<Set<string>> {
    const live = new Set<string>();
    const work: { digest: Digest; mediaType: string; lenient: boolean }[] = Object.values(this.db.images).map((r) => ({
      digest: r.manifestDigest, mediaType: r.manifestMediaType, lenient: false,
    }));
    for (const repo of Object.values(this.db.repositories)) {
      for (const [digest, m] of Object.entries(repo.manifests)) work.push({ digest: digest as Digest, mediaType: m.mediaType, lenient: true });
      for (const digest of Object.keys(repo.blobs)) live.add(digest);
    }
    const walked = new Set<string>();
    while (work.length > 0) {
      const { digest, mediaType, lenient } = work.pop()!;
      if (walked.has(digest)) continue;
      walked.add(digest);
      live.add(digest);
      if (!(await this.hasBlob(digest))) continue;
      if (lenient) {
        // Registry content may be any OCI artifact, with layer types the image parsers refuse.
        const refs = referencedByDocument(await this.readBlob(digest));
        for (const d of refs.blobs) live.add(d);
        for (const c of refs.children) work.push({ ...c, lenient: true });
      } else if (isManifestMediaType(mediaType)) {
        const m = parseManifest(await this.readBlob(digest), `manifest ${digest}`);
        live.add(m.config.digest);
        for (const l of m.layers) live.add(l.digest);
      } else if (isIndexMediaType(mediaType)) {
        const idx = parseIndex(await this.readBlob(digest), `index ${digest}`);
        for (const m of idx.manifests) work.push({ digest: m.digest, mediaType: m.mediaType, lenient: false });
      }
    }
    return live;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async persist(db: RefDatabase): Promise<void> {
    await writeFileAtomic(join(this.root, 'refs.json'), `${JSON.stringify(db, null, 2)}\n`);
    // index.json mirrors the records so other OCI tools (skopeo, umoci) can read the store.
    const manifests: object[] = [];
    for (const r of Object.values(db.images).sort((a, b) => a.id.localeCompare(b.id))) {
      const base = { mediaType: r.manifestMediaType, digest: r.manifestDigest, size: r.manifestSize };
      const names = Object.entries(db.refs).filter(([ref, id]) => id === r.id && !ref.includes('@')).map(([ref]) => ref).sort();
      if (names.length === 0) manifests.push(base);
      for (const name of names) manifests.push({ ...base, annotations: { [REF_NAME_ANNOTATION]: name } });
    }
    await writeFileAtomic(
      join(this.root, 'index.json'),
      `${JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests }, null, 2)}\n`,
    );
  }
}

/** What a manifest or index (of any artifact type) references: blobs directly, and child manifests. */
function referencedByDocument(bytes: Buffer): { blobs: string[]; children: { digest: Digest; mediaType: string }[] } {
  const blobs: string[] = [];
  const children: { digest: Digest; mediaType: string }[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { blobs, children };
  }
  const d = doc as { config?: { digest?: unknown }; layers?: unknown; blobs?: unknown; manifests?: unknown };
  const digestOf = (v: unknown): string | undefined => {
    const x = (v as { digest?: unknown } | null)?.digest;
    return typeof x === 'string' && isDigest(x) ? x : undefined;
  };
  const cfg = digestOf(d.config);
  if (cfg) blobs.push(cfg);
  for (const list of [d.layers, d.blobs]) if (Array.isArray(list)) for (const l of list) { const x = digestOf(l); if (x) blobs.push(x); }
  if (Array.isArray(d.manifests)) {
    for (const m of d.manifests) {
      const x = digestOf(m);
      if (x) children.push({ digest: x as Digest, mediaType: String((m as { mediaType?: unknown }).mediaType ?? '') });
    }
  }
  return { blobs, children };
}

const notFound = (digest: Digest, cause?: unknown): RuntimeError =>
  new RuntimeError('NotFound', `blob ${digest} not found`, cause === undefined ? undefined : { cause });

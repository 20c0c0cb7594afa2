/**
 * The registry's state: repositories → tags → manifest digests, the manifests each
 * repository holds and the blobs linked into it. It lives in the content store's
 * reference database (`refs.json`, `repositories`), so it is written atomically with
 * everything else and the store's garbage collection keeps what it names.
 *
 * Words: a blob is *linked* into a repository when it was uploaded to it, mounted
 * into it, or found already stored when pushed; a client can read a blob only from a
 * repository it is linked into. A repository exists while it holds a manifest or a link.
 */
import type { ContentStore, RefDatabaseDraft, RepositoryManifest, RepositoryRecord } from '../runtime/images/content-store.ts';
import type { Digest } from '../runtime/images/digest.ts';
import { manifestBlobUnknown } from './errors.ts';

/** A manifest to record, with what it references (from `parseRegistryManifest`). */
export interface PutManifestInput {
  readonly name: string;
  readonly digest: Digest;
  readonly manifest: RepositoryManifest;
  /** Blobs (config, layers) that must be linked into the repository. */
  readonly blobs: readonly Digest[];
  /** Manifests (children of an index) that the repository must hold. */
  readonly manifests: readonly Digest[];
  /** Tags to point at the manifest. */
  readonly tags: readonly string[];
}

/** A page of names and whether more follow. */
export interface Page {
  readonly items: readonly string[];
  /** The last item of this page when more follow (the next page's `last`). */
  readonly next?: string;
}

const EMPTY: RepositoryRecord = { manifests: {}, tags: {}, blobs: {} };

/** Sorted, after `last`, at most `n` (all when undefined). */
export function paginate(all: readonly string[], n: number | undefined, last: string | undefined): Page {
  const sorted = [...all].sort();
  const from = last === undefined ? sorted : sorted.filter((x) => x > last);
  if (n === undefined || from.length <= n) return { items: from };
  const items = from.slice(0, n);
  return n === 0 ? { items } : { items, next: items[items.length - 1]! };
}

/** Reads and changes repositories in one content store. Changes are serialised by the store. */
export class Repositories {
  constructor(private readonly store: ContentStore) {}

  /** The repository, or undefined when it does not exist. */
  get(name: string): RepositoryRecord | undefined {
    return this.store.refDb.repositories[name];
  }

  /** Names of every repository. */
  names(): string[] {
    return Object.keys(this.store.refDb.repositories);
  }

  /** True when `digest` is linked into `name` or is a manifest it holds. */
  hasBlob(name: string, digest: Digest): boolean {
    const r = this.get(name);
    return r !== undefined && (r.blobs[digest] !== undefined || r.manifests[digest] !== undefined);
  }

  /** Links a stored blob into the repository (creating it); idempotent, keeps the first link time. */
  linkBlob(name: string, digest: Digest, nowMs = Date.now()): Promise<void> {
    return this.store.update((db) => {
      const r = db.repositories[name] ?? EMPTY;
      if (r.blobs[digest] !== undefined) return;
      db.repositories[name] = { ...r, blobs: { ...r.blobs, [digest]: nowMs } };
    });
  }

  /** Unlinks a blob; false when it was not linked. The repository goes when nothing is left in it. */
  unlinkBlob(name: string, digest: Digest): Promise<boolean> {
    return this.store.update((db) => {
      const r = db.repositories[name];
      if (r?.blobs[digest] === undefined) return false;
      const { [digest]: _, ...blobs } = r.blobs;
      setOrDrop(db, name, { ...r, blobs });
      return true;
    });
  }

  /**
   * Records a manifest and points `tags` at it. Rejects `MANIFEST_BLOB_UNKNOWN`
   * (nothing is recorded) when a referenced blob is not linked into the repository
   * or a referenced manifest is not held by it.
   */
  putManifest(input: PutManifestInput): Promise<void> {
    return this.store.update((db) => {
      const r = db.repositories[input.name] ?? EMPTY;
      for (const b of input.blobs) {
        if (r.blobs[b] === undefined && r.manifests[b] === undefined)
          throw manifestBlobUnknown(`blob ${b} is not in repository ${input.name}`, { digest: b });
      }
      for (const m of input.manifests) {
        if (r.manifests[m] === undefined) throw manifestBlobUnknown(`manifest ${m} is not in repository ${input.name}`, { digest: m });
      }
      const previous = r.manifests[input.digest];
      const tags = { ...r.tags };
      for (const t of input.tags) tags[t] = input.digest;
      db.repositories[input.name] = {
        ...r,
        manifests: { ...r.manifests, [input.digest]: previous ? { ...input.manifest, createdAtMs: previous.createdAtMs } : input.manifest },
        tags,
      };
    });
  }

  /** Removes a manifest and every tag pointing at it; false when the repository does not hold it. */
  deleteManifest(name: string, digest: Digest): Promise<boolean> {
    return this.store.update((db) => {
      const r = db.repositories[name];
      if (r?.manifests[digest] === undefined) return false;
      const { [digest]: _, ...manifests } = r.manifests;
      const tags = Object.fromEntries(Object.entries(r.tags).filter(([, d]) => d !== digest));
      setOrDrop(db, name, { ...r, manifests, tags });
      return true;
    });
  }

  /** Removes a tag (the manifest stays); false when there was no such tag. */
  deleteTag(name: string, tag: string): Promise<boolean> {
    return this.store.update((db) => {
      const r = db.repositories[name];
      if (r?.tags[tag] === undefined) return false;
      const { [tag]: _, ...tags } = r.tags;
      db.repositories[name] = { ...r, tags };
      return true;
    });
  }

  /**
   * Unlinks blobs that no manifest of their repository references and that were
   * linked before `olderThanMs` (uploads whose manifest never came, or whose
   * manifests were deleted), and drops repositories left empty. Returns how many
   * links went. `referenced` lists what one manifest references.
   */
  pruneBlobLinks(olderThanMs: number, referenced: (digest: Digest, mediaType: string) => Promise<readonly string[]>): Promise<number> {
    return this.store.update(async (db) => {
      let removed = 0;
      for (const [name, r] of Object.entries(db.repositories)) {
        const used = new Set<string>();
        for (const [d, m] of Object.entries(r.manifests)) for (const x of await referenced(d as Digest, m.mediaType)) used.add(x);
        const blobs = Object.fromEntries(Object.entries(r.blobs).filter(([d, at]) => used.has(d) || at >= olderThanMs));
        removed += Object.keys(r.blobs).length - Object.keys(blobs).length;
        setOrDrop(db, name, { ...r, blobs });
      }
      return removed;
    });
  }
}

function setOrDrop(db: RefDatabaseDraft, name: string, r: RepositoryRecord): void {
  if (Object.keys(r.manifests).length === 0 && Object.keys(r.blobs).length === 0 && Object.keys(r.tags).length === 0) delete db.repositories[name];
  else db.repositories[name] = r;
}

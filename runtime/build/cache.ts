/**
 * The build cache: one entry per step, keyed on the step's cache key (the
 * instruction after substitution, the key of the step before it — so the whole
 * chain down to the base image ID — and, for COPY and ADD, the content digest
 * of the files copied). On disk under the image store root, so it survives
 * restarts:
 *
 * ```
 * <root>/build-cache/entries/<key>.json   {createdAt, layer?}
 * <root>/build-cache/layers/<diffID hex>/ the step's layer as an overlayfs upper dir (a lowerdir for later steps)
 * ```
 *
 * An entry whose layer directory is gone is a miss. Blobs live in the content
 * store; a missing blob is re-made from the layer directory by the builder.
 * One process per root; entries are written atomically.
 */
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';
import { digestHex, type Digest } from '../images/digest.ts';

/** A step's layer: the blob descriptor parts and the diff ID. */
export interface CachedLayer {
  readonly digest: Digest;
  readonly diffId: Digest;
  readonly size: number;
  readonly mediaType: string;
}

export interface CacheEntry {
  /** When the step first ran (RFC 3339): the history entry's `created`, so cached rebuilds give the same image. */
  readonly createdAt: string;
  /** Absent for steps that change only the config (or whose diff was empty). */
  readonly layer?: CachedLayer;
}

export interface BuildCacheOptions {
  /** The image store's root; the cache lives in `<root>/build-cache`. */
  readonly root: string;
}

/** See the module comment. */
export class BuildCache {
  readonly dir: string;
  private readonly entriesDir: string;
  private readonly layersDir: string;

  constructor(opts: BuildCacheOptions) {
    this.dir = join(opts.root, 'build-cache');
    this.entriesDir = join(this.dir, 'entries');
    this.layersDir = join(this.dir, 'layers');
  }

  /** Directory of a cached layer (may not exist). */
  layerDir(diffId: Digest): string {
    return join(this.layersDir, digestHex(diffId));
  }

  /** The entry for `key`, or undefined when absent or its layer directory is gone. */
  async get(key: string): Promise<CacheEntry | undefined> {
    let entry: CacheEntry;
    try {
      entry = JSON.parse(await readFile(join(this.entriesDir, `${key}.json`), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
    if (entry.layer && !(await stat(this.layerDir(entry.layer.diffId)).then((s) => s.isDirectory(), () => false))) return undefined;
    return entry;
  }

  /**
   * Stores the entry for `key`. With a layer, `upperDir` (the step's upper
   * directory) is moved in as the layer directory unless one with that diff ID
   * is there already, in which case `upperDir` is removed.
   */
  async put(key: string, entry: CacheEntry, upperDir?: string): Promise<void> {
    await mkdir(this.entriesDir, { recursive: true });
    if (entry.layer && upperDir !== undefined) {
      await mkdir(this.layersDir, { recursive: true });
      const dest = this.layerDir(entry.layer.diffId);
      if (await stat(dest).then(() => true, () => false)) await rm(upperDir, { recursive: true, force: true });
      else await rename(upperDir, dest);
    }
    await writeFileAtomic(join(this.entriesDir, `${key}.json`), JSON.stringify(entry));
  }

  /** Removes every entry and layer directory. */
  async prune(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Blob uploads in progress. Each upload is a file in the content store's ingest
 * directory, hashed as it grows; finishing one checks the digest and moves the file
 * into the store (no second copy), then links the blob into the repository.
 *
 * Uploads live in memory and in the ingest directory, which the store empties when it
 * opens: an upload does not survive a restart (the client starts again). An upload
 * idle for longer than `idleTimeoutMs` is abandoned: `sweep` removes it.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { appendFile, chmod, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../runtime/images/content-store.ts';
import type { Digest } from '../runtime/images/digest.ts';
import { blobUploadInvalid, blobUploadUnknown, digestInvalid, rangeInvalid, sizeInvalid } from './errors.ts';
import type { Repositories } from './repositories.ts';

/** One upload in progress. */
export interface Upload {
  readonly id: string;
  readonly name: string;
  /** Bytes received so far. */
  readonly size: number;
  readonly startedAtMs: number;
  readonly lastActivityMs: number;
}

interface UploadState {
  readonly id: string;
  readonly name: string;
  readonly path: string;
  readonly startedAtMs: number;
  size: number;
  hash: Hash;
  lastActivityMs: number;
  busy: boolean;
}

export interface UploadsOptions {
  readonly store: ContentStore;
  readonly repositories: Repositories;
  /** Default 15 minutes. */
  readonly idleTimeoutMs?: number;
  readonly now?: () => number;
}

/** A `Content-Range` of a chunk (`<start>-<end>`, inclusive; a leading `bytes ` is accepted). */
export interface ChunkRange {
  readonly start: number;
  readonly end: number;
}

/** Parses a PATCH's `Content-Range`; throws `RANGE_INVALID` when malformed. */
export function parseContentRange(header: string, current: Upload): ChunkRange {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw rangeInvalid(`invalid Content-Range ${JSON.stringify(header)}`, undefined, rangeHeaders(current));
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw rangeInvalid(`invalid Content-Range ${JSON.stringify(header)}`, undefined, rangeHeaders(current));
  return { start, end };
}

/** The `Range` header of an upload's progress: `0-<last byte>` (`0-0` when empty, as distribution). */
export const uploadRange = (u: Upload): string => `0-${Math.max(0, u.size - 1)}`;

const rangeHeaders = (u: Upload): Record<string, string> => ({ Range: uploadRange(u) });

/** See the module comment. */
export class Uploads {
  private readonly uploads = new Map<string, UploadState>();
  private readonly store: ContentStore;
  private readonly repositories: Repositories;
  private readonly idleTimeoutMs: number;
  private readonly now: () => number;

  constructor(opts: UploadsOptions) {
    this.store = opts.store;
    this.repositories = opts.repositories;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 15 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Uploads in progress. */
  list(): Upload[] {
    return [...this.uploads.values()].map(snapshot);
  }

  /** Starts an empty upload into repository `name`. */
  start(name: string): Upload {
    const id = randomUUID();
    const now = this.now();
    const state: UploadState = {
      id, name, path: join(this.store.ingestDir, `upload-${id}`), startedAtMs: now, size: 0,
      hash: createHash('sha256'), lastActivityMs: now, busy: false,
    };
    this.uploads.set(id, state);
    return snapshot(state);
  }

  /** The upload `id` of repository `name`; throws `BLOB_UPLOAD_UNKNOWN`. */
  get(name: string, id: string): Upload {
    return snapshot(this.state(name, id));
  }

  /**
   * Appends `body` to the upload. With `range`, its start must be the upload's size
   * (else `RANGE_INVALID`, with the `Range` so far) and the body must have exactly
   * its length. A failed append (client gone, wrong length) leaves the upload as it
   * was before. Rejects `BLOB_UPLOAD_INVALID` while another request writes to it.
   */
  async append(name: string, id: string, body: Readable, opts: { range?: ChunkRange; onBytes?: (n: number) => void } = {}): Promise<Upload> {
    const s = this.state(name, id);
    if (s.busy) throw blobUploadInvalid(`upload ${id} is being written by another request`);
    if (opts.range && opts.range.start !== s.size)
      throw rangeInvalid(`chunk starts at ${opts.range.start}, upload has ${s.size} bytes`, undefined, { Range: uploadRange(s), Location: uploadLocation(s) });
    s.busy = true;
    const before = { size: s.size, hash: s.hash.copy() };
    try {
      let n = 0;
      const hash = s.hash;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          n += chunk.length;
          opts.onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      await pipeline(body, counter, createWriteStream(s.path, { flags: 'a', mode: 0o644 }));
      if (opts.range && n !== opts.range.end - opts.range.start + 1)
        throw rangeInvalid(`chunk has ${n} bytes, Content-Range says ${opts.range.end - opts.range.start + 1}`, undefined, { Range: uploadRange({ ...snapshot(s), size: before.size }) });
      s.size += n;
      s.lastActivityMs = this.now();
      return snapshot(s);
    } catch (err) {
      s.hash = before.hash;
      s.size = before.size;
      await truncate(s.path, before.size).catch(() => undefined);
      throw err;
    } finally {
      s.busy = false;
    }
  }

  /**
   * Completes the upload: appends `body` if given, checks the content against
   * `digest` (and `size` when given), moves it into the store and links it into the
   * repository. On a digest or size mismatch the upload is dropped and the call
   * rejects `DIGEST_INVALID` / `SIZE_INVALID`; nothing is stored.
   */
  async finish(name: string, id: string, digest: Digest, body?: Readable, opts: { size?: number; onBytes?: (n: number) => void } = {}): Promise<{ size: number }> {
    if (body) await this.append(name, id, body, opts.onBytes ? { onBytes: opts.onBytes } : {});
    const s = this.state(name, id);
    if (s.busy) throw blobUploadInvalid(`upload ${id} is being written by another request`);
    s.busy = true;
    const lease = this.store.lease();
    try {
      const got = `sha256:${s.hash.copy().digest('hex')}`;
      if (got !== digest) {
        await this.drop(s);
        throw digestInvalid(`upload has digest ${got}, not ${digest}`, { digest });
      }
      if (opts.size !== undefined && opts.size !== s.size) {
        await this.drop(s);
        throw sizeInvalid(`upload has ${s.size} bytes, not ${opts.size}`, { size: opts.size });
      }
      await appendFile(s.path, '', { mode: 0o644 });
      await chmod(s.path, 0o444);
      await this.store.commitIngested(s.path, digest, { lease });
      this.uploads.delete(s.id);
      await this.repositories.linkBlob(name, digest, this.now());
      return { size: s.size };
    } finally {
      s.busy = false;
      lease.release();
    }
  }

  /** Cancels the upload and removes its data; throws `BLOB_UPLOAD_UNKNOWN`. */
  async cancel(name: string, id: string): Promise<void> {
    await this.drop(this.state(name, id));
  }

  /** Removes uploads idle for longer than the timeout; returns their IDs. */
  async sweep(): Promise<string[]> {
    const cutoff = this.now() - this.idleTimeoutMs;
    const gone: string[] = [];
    for (const s of [...this.uploads.values()]) {
      if (s.busy || s.lastActivityMs > cutoff) continue;
      await this.drop(s);
      gone.push(s.id);
    }
    return gone;
  }

  /** Removes every upload (shutdown). */
  async close(): Promise<void> {
    for (const s of [...this.uploads.values()]) await this.drop(s);
  }

  private state(name: string, id: string): UploadState {
    const s = this.uploads.get(id);
    if (!s || s.name !== name) throw blobUploadUnknown(`upload ${JSON.stringify(id)} not found in ${name}`);
    return s;
  }

  private async drop(s: UploadState): Promise<void> {
    this.uploads.delete(s.id);
    await rm(s.path, { force: true });
  }
}

/** The `Location` of an upload. */
export const uploadLocation = (u: { name: string; id: string }): string => `/v2/${u.name}/blobs/uploads/${u.id}`;

const snapshot = (s: UploadState): Upload => ({ id: s.id, name: s.name, size: s.size, startedAtMs: s.startedAtMs, lastActivityMs: s.lastActivityMs });

/**
 * The storage port: a revision log of keys and values, as kine and etcd keep one.
 *
 * Words used here:
 * - key: a string such as `/berth.dev/containers/default/web`. Keys sort bytewise.
 * - value: the stored bytes of one object, here its JSON text.
 * - revision: one integer for the whole store, increased by every successful write
 *   (create, update or delete). It never goes back and is never reused.
 * - modRevision: the revision of the write that produced a key's current value.
 * - createRevision: the revision at which the key was (last) created.
 * - compacted revision R (after `compact(R)`): lists at a revision < R and watches
 *   with `afterRevision` < R fail with `StoreError('Compacted')`; at or after R they work.
 *
 * Every implementation passes `store/testing/conformance.ts`.
 */

/** The closed set of store failures; `api/server` maps each to one HTTP status. */
export type StoreErrorCode = 'KeyExists' | 'NotFound' | 'RevisionMismatch' | 'Compacted' | 'FutureRevision' | 'Closed';

/** A failure of the store, by code. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isStoreError = (err: unknown, code?: StoreErrorCode): err is StoreError =>
  err instanceof StoreError && (code === undefined || err.code === code);

/** One key at one revision. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  readonly createRevision: number;
}

/** A change to one key, as watches deliver it. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /** For `put`, the new value. For `delete`, the last value with `modRevision` = the delete's revision. */
  readonly kv: KeyValue;
  /** The value before this change; absent for a create. */
  readonly prevKv?: KeyValue;
}

export interface ListOptions {
  /** Read the state as of this revision (0 or absent: the latest). Older than the compacted revision: `Compacted`. */
  readonly revision?: number;
  /** At most this many items (0 or absent: no limit). */
  readonly limit?: number;
  /** Start at this key (inclusive); used for paging with `continue`. */
  readonly startKey?: string;
}

export interface ListResult {
  readonly items: readonly KeyValue[];
  /** The revision the list was read at; pass it back to read further pages at the same revision. */
  readonly revision: number;
  /** True when `limit` cut the list short. */
  readonly more: boolean;
  /** How many keys remain after this page, when `more`. */
  readonly remaining: number;
}

export interface WatchOptions {
  /** Deliver every change with revision > this. Older than the compacted revision: `Compacted`. */
  readonly afterRevision: number;
  /** Ends the watch; the iterator then completes. */
  readonly signal?: AbortSignal;
  /**
   * How many undelivered events the watcher may fall behind before the store ends it
   * (a slow reader must not hold memory or block writers). The iterator then throws
   * `StoreError('Compacted')`, which clients see as 410 and relist. Default 10,000.
   */
  readonly maxBacklog?: number;
}

/** Statistics for metrics and benchmarks. */
export interface StoreStats {
  readonly revision: number;
  readonly compactRevision: number;
  /** Bytes on disk (database and its WAL), 0 for memory. */
  readonly sizeBytes: number;
  readonly keys: number;
  readonly watchers: number;
}

/**
 * The storage port. All methods are safe to call concurrently; writes are applied
 * in one total order, and a write's promise resolves only once it is durable.
 */
export interface RevisionLog {
  /** The latest revision. */
  currentRevision(): Promise<number>;

  /** Creates `key`. Rejects with `KeyExists` if it exists. Resolves to the new revision. */
  create(key: string, value: string): Promise<KeyValue>;

  /**
   * Replaces the value of `key` if its modRevision is `expectedModRevision`.
   * Rejects with `NotFound` if absent, `RevisionMismatch` if modified since.
   */
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue>;

  /**
   * Deletes `key`, if `expectedModRevision` is given only at that revision.
   * Rejects with `NotFound` if absent, `RevisionMismatch` if modified since.
   * Resolves to the deleted value, whose `modRevision` is the revision of the delete.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;

  /** The current value of `key`, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;

  /** Keys starting with `prefix`, in key order, at one revision. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;

  /** How many keys start with `prefix` now. */
  count(prefix: string): Promise<number>;

  /**
   * Changes to keys starting with `prefix` after `afterRevision`, in revision order,
   * first those already in the log, then live ones. Never blocks writers.
   */
  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchEvent>;

  /**
   * Forgets history up to and including `revision`: older revisions of keys and
   * deleted keys are removed. Never blocks writers for long. Idempotent.
   */
  compact(revision: number): Promise<void>;

  /** The revision of the last compaction (0 if none): the oldest revision still readable. */
  compactRevision(): Promise<number>;

  stats(): Promise<StoreStats>;

  /** Stops watches (their iterators complete) and releases files. Idempotent. */
  close(): Promise<void>;
}

/**
 * Remembers the resourceVersion of this process's last write to each object, so the
 * controller can hold a key until its informer has seen that write ("a reconciler
 * sees its own last write before it runs again for that key").
 */
import type { KubeObject } from '../../api/types/index.ts';
import { keyOf, resourceName, type ResourceKind } from './resource-kind.ts';
import { isAtOrAfter } from './internal/resource-version.ts';
import { realClock, type Clock } from './clock.ts';

export interface WriteTrackerOptions {
  readonly clock?: Clock;
  /**
   * Writes older than this are forgotten even if no controller settled them (writes to
   * kinds nobody waits on, such as Events). Far above a watch's delivery delay and the
   * controller's wait (≤ 2 s), so forgetting one never skips a wait that mattered.
   * Default 60 s.
   */
  readonly maxAgeMs?: number;
  /** At most this many writes are remembered; the oldest go first. Default 100,000. */
  readonly maxEntries?: number;
}

/**
 * The last write per object. `ApiClient` records into it; `Controller` reads it.
 * Bounded: it holds only the writes of the last `maxAgeMs` not yet settled, at most
 * `maxEntries`, and every call costs O(1) amortized. Single-threaded; no locking.
 */
export class WriteTracker {
  /** In the order of recording, oldest first: a newer write of a key moves it to the end. */
  private readonly writes = new Map<string, { rv: string; atMs: number }>();
  private readonly clock: Clock;
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;

  /** `clock` alone is accepted too, as before options existed. */
  constructor(opts: WriteTrackerOptions | Clock = {}) {
    const o: WriteTrackerOptions = 'nowMs' in opts ? { clock: opts } : opts;
    this.clock = o.clock ?? realClock;
    this.maxAgeMs = o.maxAgeMs ?? 60_000;
    this.maxEntries = Math.max(1, o.maxEntries ?? 100_000);
  }

  /** Records a successful write whose response is `obj`. */
  record(kind: ResourceKind, obj: KubeObject | undefined): void {
    const rv = obj?.metadata?.resourceVersion;
    const name = obj?.metadata?.name;
    if (!rv || !name) return;
    const k = this.key(kind, obj.metadata.namespace ?? '', name);
    const prev = this.writes.get(k);
    if (prev && isAtOrAfter(prev.rv, rv)) return;
    const now = this.clock.nowMs();
    this.writes.delete(k);
    this.writes.set(k, { rv, atMs: now });
    this.prune(now);
  }

  /** The resourceVersion of the last recorded write to this object, if any. */
  lastWrite(kind: ResourceKind, namespace: string, name: string): string | undefined {
    return this.writes.get(this.key(kind, namespace, name))?.rv;
  }

  /** Drops the entry once a cache has caught up to `rv` (kept if a newer write was recorded since). */
  settle(kind: ResourceKind, namespace: string, name: string, rv: string): void {
    const k = this.key(kind, namespace, name);
    if (this.writes.get(k)?.rv === rv) this.writes.delete(k);
  }

  /** Number of objects with an unsettled write. */
  size(): number {
    return this.writes.size;
  }

  private key(kind: ResourceKind, namespace: string, name: string): string {
    return `${resourceName(kind)}|${keyOf(kind.namespaced ? namespace : '', name)}`;
  }

  /** Drops from the oldest end: expired entries, then any beyond `maxEntries`. Stops at the first entry it keeps. */
  private prune(nowMs: number): void {
    const cutoff = nowMs - this.maxAgeMs;
    for (const [k, v] of this.writes) {
      if (v.atMs >= cutoff && this.writes.size <= this.maxEntries) return;
      this.writes.delete(k);
    }
  }
}

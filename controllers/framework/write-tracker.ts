/**
 * Remembers the resourceVersion of this process's last write to each object, so the
 * controller can hold a key until its informer has seen that write ("a reconciler
 * sees its own last write before it runs again for that key").
 */
import type { KubeObject } from '../../api/types/index.ts';
import { keyOf, resourceName, type ResourceKind } from './resource-kind.ts';
import { isAtOrAfter } from './internal/resource-version.ts';
import { realClock, type Clock } from './clock.ts';

/** Entries older than this are dropped when the map grows; the controller's wait is capped far below it. */
const MAX_AGE_MS = 5 * 60_000;
const PRUNE_OVER = 10_000;

/** The last write per object. `ApiClient` records into it; `Controller` reads it. Single-threaded; no locking. */
export class WriteTracker {
  private readonly writes = new Map<string, { rv: string; atMs: number }>();

  constructor(private readonly clock: Clock = realClock) {}

  /** Records a successful write whose response is `obj`. */
  record(kind: ResourceKind, obj: KubeObject | undefined): void {
    const rv = obj?.metadata?.resourceVersion;
    const name = obj?.metadata?.name;
    if (!rv || !name) return;
    const k = this.key(kind, obj.metadata.namespace ?? '', name);
    const prev = this.writes.get(k);
    if (prev && isAtOrAfter(prev.rv, rv)) return;
    this.writes.set(k, { rv, atMs: this.clock.nowMs() });
    if (this.writes.size > PRUNE_OVER) this.prune();
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

  private prune(): void {
    const cutoff = this.clock.nowMs() - MAX_AGE_MS;
    for (const [k, v] of this.writes) if (v.atMs < cutoff) this.writes.delete(k);
  }
}

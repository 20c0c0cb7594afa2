import {
  StoreError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type RevisionLog,
  type StoreStats,
  type WatchEvent,
  type WatchOptions,
} from '../revision-log.ts';
import { compareKeys, maxKey } from '../internal/keys.ts';
import { WatchHub, failedWatch } from '../internal/watch-hub.ts';

/**
 * An in-memory `RevisionLog` for tests: the full semantics (history, lists at old
 * revisions, watches from a revision, compaction, backlog limits) without durability.
 *
 * Writes apply in call order and resolve at once. Nothing survives the process.
 */
export class MemoryLog implements RevisionLog {
  /** Every retained change, ascending by revision. A change is stored as its watch event. */
  private log: WatchEvent[] = [];
  /** Retained changes per key, ascending by revision. */
  private readonly history = new Map<string, WatchEvent[]>();
  private sortedKeysCache: string[] | undefined;
  private liveKeys = 0;
  private revision = 0;
  private compacted = 0;
  private closed = false;
  private readonly hub = new WatchHub({
    readHistory: (prefix, after, limit) => this.readHistory(prefix, after, limit),
    currentRevision: () => this.revision,
    compactRevision: () => this.compacted,
  });

  async currentRevision(): Promise<number> {
    this.ensureOpen();
    return this.revision;
  }

  async create(key: string, value: string): Promise<KeyValue> {
    this.ensureOpen();
    if (this.latest(key)) throw new StoreError('KeyExists', `key ${key} already exists`);
    const rev = this.revision + 1;
    const kv: KeyValue = { key, value, modRevision: rev, createRevision: rev };
    this.append({ type: 'put', kv });
    return kv;
  }

  async update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    this.ensureOpen();
    const prev = this.expect(key, expectedModRevision);
    const kv: KeyValue = { key, value, modRevision: this.revision + 1, createRevision: prev.createRevision };
    this.append({ type: 'put', kv, prevKv: prev });
    return kv;
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    this.ensureOpen();
    const prev = this.expect(key, expectedModRevision);
    const kv: KeyValue = { ...prev, modRevision: this.revision + 1 };
    this.append({ type: 'delete', kv, prevKv: prev });
    return kv;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    return this.latest(key);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.ensureOpen();
    const revision = opts.revision || this.revision;
    if (revision > this.revision) {
      throw new StoreError('FutureRevision', `revision ${revision} is newer than ${this.revision}`);
    }
    if (revision < this.compacted) {
      throw new StoreError('Compacted', `revision ${revision} is compacted (compacted to ${this.compacted})`);
    }
    const all = this.keysFrom(maxKey(prefix, opts.startKey ?? ''), prefix)
      .map((key) => this.at(key, revision))
      .filter((kv): kv is KeyValue => kv !== undefined);
    const limit = opts.limit ?? 0;
    if (limit > 0 && all.length > limit) {
      return { items: all.slice(0, limit), revision, more: true, remaining: all.length - limit };
    }
    return { items: all, revision, more: false, remaining: 0 };
  }

  async count(prefix: string): Promise<number> {
    this.ensureOpen();
    return this.keysFrom(prefix, prefix).filter((key) => this.latest(key)).length;
  }

  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchEvent> {
    if (this.closed) return failedWatch(new StoreError('Closed', 'store is closed'));
    return this.hub.watch(prefix, opts);
  }

  async compact(revision: number): Promise<void> {
    this.ensureOpen();
    if (revision <= this.compacted) return;
    if (revision > this.revision) {
      throw new StoreError('FutureRevision', `cannot compact to ${revision}: newer than ${this.revision}`);
    }
    this.compacted = revision;
    const removed = new Set<WatchEvent>();
    for (const [key, events] of this.history) {
      let keep = 0;
      while (keep + 1 < events.length && events[keep + 1]!.kv.modRevision <= revision) keep++;
      const last = events[keep]!;
      const drop = last.kv.modRevision <= revision && last.type === 'delete' ? keep + 1 : keep;
      if (drop === 0) continue;
      for (const ev of events.splice(0, drop)) removed.add(ev);
      if (events.length === 0) {
        this.history.delete(key);
        this.sortedKeysCache = undefined;
      }
    }
    if (removed.size > 0) this.log = this.log.filter((ev) => !removed.has(ev));
  }

  async compactRevision(): Promise<number> {
    this.ensureOpen();
    return this.compacted;
  }

  async stats(): Promise<StoreStats> {
    this.ensureOpen();
    return {
      revision: this.revision,
      compactRevision: this.compacted,
      sizeBytes: 0,
      keys: this.liveKeys,
      watchers: this.hub.size,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.closeAll();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }

  private append(ev: WatchEvent): void {
    const key = ev.kv.key;
    this.revision = ev.kv.modRevision;
    this.log.push(ev);
    let events = this.history.get(key);
    if (!events) {
      events = [];
      this.history.set(key, events);
      this.sortedKeysCache = undefined;
    }
    events.push(ev);
    if (ev.type === 'delete') this.liveKeys--;
    else if (!ev.prevKv) this.liveKeys++;
    this.hub.publish([ev]);
  }

  private expect(key: string, expectedModRevision: number | undefined): KeyValue {
    const cur = this.latest(key);
    if (!cur) throw new StoreError('NotFound', `key ${key} not found`);
    if (expectedModRevision !== undefined && cur.modRevision !== expectedModRevision) {
      throw new StoreError(
        'RevisionMismatch',
        `key ${key} is at revision ${cur.modRevision}, expected ${expectedModRevision}`,
      );
    }
    return cur;
  }

  private latest(key: string): KeyValue | undefined {
    const events = this.history.get(key);
    const last = events?.[events.length - 1];
    return last?.type === 'put' ? last.kv : undefined;
  }

  private at(key: string, revision: number): KeyValue | undefined {
    const events = this.history.get(key) ?? [];
    let found: WatchEvent | undefined;
    for (const ev of events) {
      if (ev.kv.modRevision > revision) break;
      found = ev;
    }
    return found?.type === 'put' ? found.kv : undefined;
  }

  /** Keys with any retained history, >= `from`, that start with `prefix`, in key order. */
  private keysFrom(from: string, prefix: string): string[] {
    this.sortedKeysCache ??= [...this.history.keys()].sort(compareKeys);
    const keys = this.sortedKeysCache;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(keys[mid]!, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < keys.length && keys[i]!.startsWith(prefix); i++) out.push(keys[i]!);
    return out;
  }

  private readHistory(prefix: string, afterRevision: number, limit: number): WatchEvent[] {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.kv.modRevision <= afterRevision) lo = mid + 1;
      else hi = mid;
    }
    const out: WatchEvent[] = [];
    for (let i = lo; i < this.log.length && out.length < limit; i++) {
      const ev = this.log[i]!;
      if (ev.kv.key.startsWith(prefix)) out.push(ev);
    }
    return out;
  }
}


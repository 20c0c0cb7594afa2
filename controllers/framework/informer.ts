/**
 * `SharedInformer`: reflects one kind (optionally one namespace and selector) from the
 * API server into a local cache by list + watch, keeps that cache current, indexes it,
 * and tells handlers about adds, updates and deletes. Reconcilers read it through
 * `Lister`; controllers subscribe to it to enqueue keys.
 *
 * It is written directly on client-node's `Watch` (not `makeInformer`), because
 * client-node 1.4.0's informer stops for good on any non-410 error and fires `error`
 * on `stop()`. Here the retry policy is ours: it never stops until `stop()`.
 */
import type { KubeObject, KubeList } from '../../api/types/index.ts';
import { ApiStatusError, isGone } from './api-status-error.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import type { ApiClient } from './client.ts';
import { realClock, sleep, type Clock, type TimerHandle } from './clock.ts';
import { deepFreeze } from './internal/deep-equal.ts';
import { isAtOrAfter } from './internal/resource-version.ts';
import type { RawWatchEvent, WatchStream } from './internal/transport.ts';
import type { Lister } from './lister.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { ControllerMetrics, InformerRestartReason } from './metrics.ts';
import { apiVersionOf, objectKey, resourceName, type ResourceKind } from './resource-kind.ts';

/** Callbacks for cache changes. Called synchronously, in event order, after the cache has changed. */
export interface InformerEventHandler<T extends KubeObject> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  /** `obj` is the last state seen (the watch's final state, or the cached one after a re-list). */
  onDelete?(obj: T): void;
}

/** A function from an object to the index values it is filed under. */
export type IndexFunc<T extends KubeObject> = (obj: T) => readonly string[];

/** The index every informer has: `byIndex(NAMESPACE_INDEX, ns)`. */
export const NAMESPACE_INDEX = 'namespace';

export interface InformerOptions<T extends KubeObject> {
  readonly client: ApiClient;
  readonly kind: ResourceKind<T>;
  /** Only this namespace; default all. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  /** e.g. `spec.nodeName=node-1`; the server must support the field. */
  readonly fieldSelector?: string;
  readonly log?: Logger;
  readonly metrics?: ControllerMetrics;
  readonly clock?: Clock;
  /** Delay between failed attempts. Default 200 ms doubling to 30 s. */
  readonly backoff?: BackoffOptions;
  /** Each watch asks the server to end it after a random time in [t, 2t). Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** Page size of lists. Default 500. */
  readonly pageSize?: number;
}

interface WatchOutcome {
  readonly expired: boolean;
  readonly events: number;
  readonly durationMs: number;
}

/** A watch that lasted this long or delivered events was healthy: retry at once. */
const HEALTHY_WATCH_MS = 1_000;
/** Abort a watch this long after the server should have ended it (a silently dead connection). */
const WATCH_GRACE_MS = 30_000;

/**
 * A list + watch cache of one kind.
 *
 * Contract: after `start()` it keeps the cache equal to the server's state, forever:
 * a dropped connection or any error re-watches from the last resourceVersion seen,
 * a 410 (history compacted) re-lists, each with exponential back-off, logged and
 * counted in `berth_informer_restarts_total`. A re-list reports only real changes
 * (objects whose resourceVersion is unchanged raise no event). `stop()` ends it for
 * good; an informer cannot be started again. Cached objects are deep-frozen.
 */
export class SharedInformer<T extends KubeObject> implements Lister<T> {
  readonly kind: ResourceKind<T>;
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private readonly handlers = new Set<InformerEventHandler<T>>();
  private readonly rvWaiters = new Set<() => void>();
  private readonly syncWaiters = new Set<() => void>();
  private readonly stopper = new AbortController();
  private readonly log: Logger;
  private readonly clock: Clock;
  private rv: string | undefined;
  private synced = false;
  private running: Promise<void> | undefined;
  private stream: WatchStream | undefined;

  constructor(private readonly opts: InformerOptions<T>) {
    this.kind = opts.kind;
    this.clock = opts.clock ?? realClock;
    this.log = (opts.log ?? silentLogger).child({
      informer: resourceName(opts.kind),
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
    });
    this.addIndexer(NAMESPACE_INDEX, (o) => [o.metadata.namespace ?? '']);
  }

  /** Starts list + watch in the background. Idempotent; a no-op after `stop()`. */
  start(): void {
    if (this.running || this.stopper.signal.aborted) return;
    this.running = this.run();
  }

  /** Stops watching and retrying; resolves when the background loop has ended. Idempotent. */
  async stop(): Promise<void> {
    this.stopper.abort();
    this.stream?.abort();
    await this.running;
    for (const w of [...this.syncWaiters, ...this.rvWaiters]) w();
  }

  /** True once the first list is in the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves `true` once synced, or `false` if `signal` aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return this.waitUntil(() => this.synced, this.syncWaiters, undefined, signal);
  }

  /**
   * Resolves `true` once the cache reflects every change up to resourceVersion `rv`
   * (it has seen that revision or a later one), `false` after `timeoutMs` or on abort.
   */
  waitForResourceVersion(rv: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.waitUntil(() => isAtOrAfter(this.rv, rv), this.rvWaiters, timeoutMs, signal);
  }

  /** The resourceVersion the cache is current to (last list, event or bookmark). */
  lastSyncResourceVersion(): string | undefined {
    return this.rv;
  }

  /**
   * Subscribes `handler`; returns its removal. If the informer has synced already,
   * `onAdd` is called at once for every cached object, so late subscribers miss nothing.
   */
  addEventHandler(handler: InformerEventHandler<T>): () => void {
    this.handlers.add(handler);
    if (this.synced) for (const obj of this.items.values()) this.call(handler, 'onAdd', () => handler.onAdd?.(obj));
    return () => this.handlers.delete(handler);
  }

  /** Adds an index. Objects already cached are indexed at once. Throws if the name is taken. */
  addIndexer(name: string, fn: IndexFunc<T>): void {
    if (this.indexers.has(name)) throw new Error(`indexer ${JSON.stringify(name)} already exists`);
    this.indexers.set(name, fn);
    this.indices.set(name, new Map());
    for (const [key, obj] of this.items) this.index(name, fn, key, obj);
  }

  get(namespace: string, name: string): T | undefined {
    return this.items.get(this.kind.namespaced && namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    if (!namespace) return [...this.items.values()];
    return this.byIndex(NAMESPACE_INDEX, namespace);
  }

  byIndex(indexName: string, value: string): T[] {
    const index = this.indices.get(indexName);
    if (!index) throw new Error(`no indexer ${JSON.stringify(indexName)}`);
    return [...(index.get(value) ?? [])].map((k) => this.items.get(k)!).filter(Boolean);
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.opts.backoff);
    let expiredInARow = 0;
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      let phase: 'list' | 'watch' = 'list';
      let delayMs = 0;
      let reason: InformerRestartReason;
      try {
        if (this.rv === undefined) {
          await this.relist();
          backoff.reset();
        }
        phase = 'watch';
        const outcome = await this.watchOnce();
        if (signal.aborted) break;
        if (outcome.expired) {
          reason = 'expired';
          this.rv = undefined;
          delayMs = expiredInARow++ > 0 ? backoff.nextDelayMs() : 0;
        } else {
          reason = 'closed';
          expiredInARow = 0;
          if (outcome.events > 0 || outcome.durationMs >= HEALTHY_WATCH_MS) backoff.reset();
          else delayMs = backoff.nextDelayMs();
        }
        this.log.debug({ reason, delayMs, events: outcome.events }, 'watch ended; watching again');
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          reason = 'expired';
          this.rv = undefined;
          delayMs = expiredInARow++ > 0 ? backoff.nextDelayMs() : 0;
        } else {
          reason = phase === 'list' ? 'list_error' : 'watch_error';
          delayMs = backoff.nextDelayMs();
        }
        this.log.warn({ err: errorInfo(err), reason, delayMs, attempt: backoff.attempts() }, `informer ${phase} failed; retrying`);
      }
      this.opts.metrics?.informerRestarted(resourceName(this.kind), reason);
      if (delayMs > 0) await sleep(this.clock, delayMs, signal);
    }
  }

  /** Lists everything (page by page) and makes the cache equal to it. */
  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let listRv: string | undefined;
    do {
      const page: KubeList<T> = await this.opts.client.list(this.kind, {
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
        ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
        limit: this.opts.pageSize ?? 500,
        ...(cont ? { continue: cont } : {}),
        signal: this.stopper.signal,
      });
      for (const item of page.items) {
        item.apiVersion ??= apiVersionOf(this.kind);
        item.kind ??= this.kind.kind;
        fresh.set(objectKey(item), item);
      }
      cont = page.metadata?.continue || undefined;
      listRv = page.metadata?.resourceVersion;
    } while (cont);
    if (this.stopper.signal.aborted) return;
    for (const [key, obj] of fresh) this.put(key, obj);
    for (const [key, old] of [...this.items]) if (!fresh.has(key)) this.drop(key, old);
    this.rv = listRv;
    this.log.debug({ items: fresh.size, resourceVersion: listRv }, 'listed');
    if (!this.synced) {
      this.synced = true;
      this.log.info({ items: fresh.size }, 'informer synced');
    }
    this.notify();
  }

  /** One watch from `this.rv` until it ends. Throws on errors; `expired` on a 410. */
  private async watchOnce(): Promise<WatchOutcome> {
    const started = this.clock.nowMs();
    const base = this.opts.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.max(1, Math.floor(base * (1 + Math.random())));
    let events = 0;
    let expired = false;
    let failure: unknown;
    let stream: WatchStream | undefined;
    let ending = false;
    const end = () => {
      ending = true;
      stream?.abort();
    };
    const onEvent = (e: RawWatchEvent) => {
      if (ending) return;
      try {
        switch (e.type) {
          case 'ADDED':
          case 'MODIFIED':
            events++;
            this.upsert(e.object as T);
            break;
          case 'DELETED':
            events++;
            this.remove(e.object as T);
            break;
          case 'BOOKMARK':
            this.advance(e.object?.metadata?.resourceVersion);
            break;
          case 'ERROR': {
            const st = e.object ?? {};
            if (st.code === 410) expired = true;
            else failure = new ApiStatusError(st.code ?? 500, st.reason ?? '', `watch: ${st.message ?? 'ERROR event'}`, st);
            end();
            break;
          }
          default:
            this.log.warn({ type: e.type }, 'ignoring watch event of unknown type');
        }
      } catch (err) {
        failure = err;
        end();
      }
    };
    stream = await this.opts.client.watch(
      this.kind,
      {
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
        ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
        ...(this.rv ? { resourceVersion: this.rv } : {}),
        timeoutSeconds,
        allowWatchBookmarks: true,
      },
      onEvent,
    );
    this.stream = stream;
    if (ending || this.stopper.signal.aborted) stream.abort();
    const watchdog: TimerHandle = this.clock.setTimer(() => {
      failure ??= new Error(`watch sent nothing past its ${timeoutSeconds}s timeout: connection presumed dead`);
      end();
    }, timeoutSeconds * 1000 + WATCH_GRACE_MS);
    const err = await stream.done;
    this.clock.clearTimer(watchdog);
    this.stream = undefined;
    const durationMs = this.clock.nowMs() - started;
    if (expired) return { expired, events, durationMs };
    if (failure) throw failure;
    if (err && !this.stopper.signal.aborted) throw err;
    return { expired: false, events, durationMs };
  }

  private upsert(obj: T): void {
    if (!obj?.metadata?.name) return;
    obj.apiVersion ??= apiVersionOf(this.kind);
    obj.kind ??= this.kind.kind;
    this.put(objectKey(obj), obj);
    this.advance(obj.metadata.resourceVersion);
  }

  private remove(obj: T): void {
    if (!obj?.metadata?.name) return;
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old) this.drop(key, deepFreeze(obj));
    this.advance(obj.metadata.resourceVersion);
  }

  /** Stores `obj` under `key` and tells handlers, unless the cached copy has the same resourceVersion. */
  private put(key: string, obj: T): void {
    const old = this.items.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    deepFreeze(obj);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) this.index(name, fn, key, obj);
    for (const h of [...this.handlers]) {
      if (old) this.call(h, 'onUpdate', () => h.onUpdate?.(old, obj));
      else this.call(h, 'onAdd', () => h.onAdd?.(obj));
    }
  }

  private drop(key: string, last: T): void {
    const old = this.items.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.items.delete(key);
    for (const h of [...this.handlers]) this.call(h, 'onDelete', () => h.onDelete?.(last));
  }

  private advance(rv: string | undefined): void {
    if (!rv) return;
    this.rv = rv;
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.rvWaiters, ...this.syncWaiters]) w();
  }

  private index(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    const index = this.indices.get(name)!;
    for (const value of fn(obj)) {
      const keys = index.get(value) ?? new Set<string>();
      keys.add(key);
      index.set(value, keys);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  private call(_h: InformerEventHandler<T>, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: errorInfo(err), handler: what }, 'informer event handler threw');
    }
  }

  private waitUntil(done: () => boolean, waiters: Set<() => void>, timeoutMs: number | undefined, signal?: AbortSignal): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    if (signal?.aborted || this.stopper.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const finish = (ok: boolean) => {
        waiters.delete(check);
        if (timer) this.clock.clearTimer(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const check = () => {
        if (done()) finish(true);
        else if (this.stopper.signal.aborted) finish(false);
      };
      const onAbort = () => finish(false);
      waiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) timer = this.clock.setTimer(() => finish(false), timeoutMs);
    });
  }
}

/** A loggable summary of an error. */
export function errorInfo(err: unknown): Record<string, unknown> {
  if (err instanceof ApiStatusError) return { message: err.message, code: err.code, reason: err.reason };
  if (err instanceof Error) return { message: err.message, ...((err as { code?: unknown }).code ? { code: (err as { code?: unknown }).code } : {}) };
  return { message: String(err) };
}

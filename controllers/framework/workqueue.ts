/**
 * `WorkQueue`: the rate-limited, delaying work queue between informers and reconcile
 * workers, with client-go's contract.
 */
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import type { WorkQueueMetrics } from './metrics.ts';
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.ts';

export interface WorkQueueOptions<K> {
  /** The `name` label of its metrics. */
  readonly name: string;
  readonly clock?: Clock;
  /** Default `defaultControllerRateLimiter()`. */
  readonly rateLimiter?: RateLimiter<K>;
  readonly metrics?: WorkQueueMetrics;
}

type Waiter<K> = (key: K | undefined) => void;

/**
 * A FIFO queue of keys, as client-go's rate-limiting workqueue:
 *
 * - *Stingy*: a key added any number of times while it waits is handed out once.
 * - *Exclusive*: a key is never handed to two workers at once. A key added while a
 *   worker holds it is queued again when that worker calls `done`.
 * - *Fair*: keys are handed out in the order they were first added.
 * - `addAfter` delays an add; `addRateLimited` delays it by the rate limiter (per-key
 *   exponential back-off under an overall token bucket); `forget` resets the back-off.
 * - `shutDown` refuses new adds and drops pending delays; `get` still hands out keys
 *   already queued and then resolves `undefined`. `shutDownWithDrain` also waits until
 *   every handed-out key is `done`.
 *
 * Every `get` that returns a key must be followed by exactly one `done(key)`.
 */
export class WorkQueue<K = string> {
  readonly name: string;
  private readonly queue: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Map<K, number>();
  private readonly addedAt = new Map<K, number>();
  private readonly waiting = new Map<K, { readyAtMs: number; timer: TimerHandle }>();
  private readonly waiters: Waiter<K>[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter<K>;
  private readonly metrics: WorkQueueMetrics | undefined;
  private readonly untrack: (() => void) | undefined;
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions<K>) {
    this.name = opts.name;
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
    this.metrics = opts.metrics;
    this.untrack = this.metrics?.trackInFlight(() => {
      const now = this.clock.nowMs();
      return [...this.processing.values()].map((start) => (now - start) / 1000);
    });
  }

  /** Queues `key` unless it is already queued; ignored after shutdown. */
  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.metrics?.added();
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.clock.nowMs());
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.metrics?.depth(this.queue.length);
    this.dispatch();
  }

  /** Adds `key` after `delayMs`; keeps the earlier time if it is already waiting. `delayMs ≤ 0` adds now. */
  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const readyAtMs = this.clock.nowMs() + delayMs;
    const prev = this.waiting.get(key);
    if (prev && prev.readyAtMs <= readyAtMs) return;
    if (prev) this.clock.clearTimer(prev.timer);
    const timer = this.clock.setTimer(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAtMs, timer });
  }

  /** Adds `key` after the rate limiter's delay for it (a retry). */
  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.metrics?.retried();
    this.addAfter(key, this.rateLimiter.whenMs(key));
  }

  /** Resets `key`'s back-off; call when it was processed without error. */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  /** Retries counted for `key` since it was last forgotten. */
  numRequeues(key: K): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * Hands out the next key, waiting until there is one. Resolves `undefined` once
   * the queue is shut down and empty. The caller owns the key until `done(key)`.
   */
  get(): Promise<K | undefined> {
    if (this.queue.length > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends processing of `key`; re-queues it if it was added meanwhile. */
  done(key: K): void {
    const start = this.processing.get(key);
    if (start === undefined) return;
    this.processing.delete(key);
    this.metrics?.worked((this.clock.nowMs() - start) / 1000);
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.metrics?.depth(this.queue.length);
      this.dispatch();
    }
    if (this.processing.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Keys waiting to be handed out (not counting delayed or in-flight ones). */
  len(): number {
    return this.queue.length;
  }

  /** Keys handed out and not yet `done`. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for an `addAfter` / `addRateLimited` delay. */
  delayed(): number {
    return this.waiting.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Refuses new adds, drops pending delays and wakes idle `get` callers with `undefined`. Idempotent. */
  shutDown(): void {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const { timer } of this.waiting.values()) this.clock.clearTimer(timer);
      this.waiting.clear();
      this.untrack?.();
    }
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** `shutDown`, then resolves once every handed-out key is `done`. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.waiters.length > 0) this.waiters.shift()!(this.take());
  }

  private take(): K {
    const key = this.queue.shift()!;
    const now = this.clock.nowMs();
    this.metrics?.depth(this.queue.length);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.queued((now - added) / 1000);
    this.addedAt.delete(key);
    this.processing.set(key, now);
    this.dirty.delete(key);
    return key;
  }
}

/**
 * Rate limiters for the work queue, after client-go's `workqueue` package: how long a
 * key must wait before it is retried.
 */
import { realClock, type Clock } from './clock.ts';

/** Decides the delay of each retry of a key. Not thread-safe; one per queue. */
export interface RateLimiter<K> {
  /** The delay before `key` may be processed again; counts one more failure of `key`. */
  whenMs(key: K): number;
  /** Clears the failure count of `key` (call after it succeeded). */
  forget(key: K): void;
  /** Failures counted for `key` since it was last forgotten. */
  numRequeues(key: K): number;
}

/** Per-key exponential back-off: `baseDelayMs · 2^failures`, capped at `maxDelayMs`. */
export class ItemExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();

  constructor(
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 1_000_000,
  ) {}

  whenMs(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n, 62));
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall token bucket (golang.org/x/time/rate as client-go uses it): `burst`
 * retries at once, then `qps` per second, whatever the key. Each call reserves a token.
 */
export class BucketRateLimiter<K> implements RateLimiter<K> {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.lastMs = clock.nowMs();
  }

  whenMs(_key: K): number {
    const now = this.clock.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastMs) / 1000) * this.qps);
    this.lastMs = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(_key: K): void {}

  numRequeues(_key: K): number {
    return 0;
  }
}

/** The longest delay of several limiters; every limiter sees every call. */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  private readonly limiters: readonly RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    this.limiters = limiters;
  }

  whenMs(key: K): number {
    return Math.max(0, ...this.limiters.map((l) => l.whenMs(key)));
  }

  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: K): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

/** client-go's default controller limiter: 5 ms doubling to 1000 s per key, under 10 qps with a burst of 100. */
export function defaultControllerRateLimiter<K>(clock: Clock = realClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ItemExponentialFailureRateLimiter<K>(5, 1_000_000), new BucketRateLimiter<K>(10, 100, clock));
}

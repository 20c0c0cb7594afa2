/**
 * Exponential back-off for retry loops (the informer's re-list / re-watch, leader
 * election): each failure doubles the delay up to a cap, with up to 20 % jitter.
 */

export interface BackoffOptions {
  /** First delay. Default 200 ms. */
  readonly initialMs?: number;
  /** Largest delay. Default 30 s. */
  readonly maxMs?: number;
  /** Fraction of random extra delay, 0–1. Default 0.2. */
  readonly jitter?: number;
  /** Source of randomness in [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

/** The delay sequence of one retry loop. Not shared between loops. */
export class Backoff {
  private failures = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 200;
    this.maxMs = opts.maxMs ?? 30_000;
    this.jitter = opts.jitter ?? 0.2;
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  nextDelayMs(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 52));
    this.failures++;
    return Math.min(this.maxMs, base * (1 + this.jitter * this.random()));
  }

  /** Failures counted since the last `reset`. */
  attempts(): number {
    return this.failures;
  }

  /** Starts over from `initialMs`; call after a success. */
  reset(): void {
    this.failures = 0;
  }
}

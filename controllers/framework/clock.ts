/**
 * Time as the framework sees it. Everything that waits (the work queue's delays and
 * back-off, the informer's retries, leader election) takes a `Clock`, so tests can
 * use `FakeClock` (`testing/fake-clock.ts`) instead of sleeping.
 */

/** An opaque handle returned by `Clock.setTimer`. */
export type TimerHandle = object;

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since the epoch. Monotonic enough for durations. */
  nowMs(): number;
  /** Calls `fn` once after `delayMs` (≥ 0). */
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  /** Cancels a timer; a no-op for a timer that fired or was cleared. */
  clearTimer(handle: TimerHandle): void;
}

/** The wall clock with Node timers. Timers are `unref`'d: they never keep the process alive. */
export const realClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (fn, delayMs) => {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return t;
  },
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Resolves after `delayMs` on `clock`, or as soon as `signal` aborts (it never rejects).
 * Returns `false` when it ended because of the signal.
 */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimer(timer);
      resolve(false);
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

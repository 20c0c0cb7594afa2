/**
 * A manual clock for tests: time moves only when the test calls `advance`.
 */
import type { Clock, TimerHandle } from '../clock.ts';

interface FakeTimer {
  readonly id: number;
  readonly atMs: number;
  readonly fn: () => void;
}

/** A `Clock` whose time and timers move only through `advance`. */
export class FakeClock implements Clock {
  private now: number;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { id, atMs: this.now + Math.max(0, delayMs), fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }

  /** Timers not yet fired. */
  pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Lets pending promise callbacks run, then moves time forward by `ms`, firing due
   * timers in time order (timers they schedule within the window fire too) and
   * letting promise callbacks run after each.
   */
  async advance(ms: number): Promise<void> {
    await flushMicrotasks(); // work already started runs at the current time
    const end = this.now + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.timers.values()) if (t.atMs <= end && (!next || t.atMs < next.atMs || (t.atMs === next.atMs && t.id < next.id))) next = t;
      if (!next) break;
      this.timers.delete(next.id);
      this.now = Math.max(this.now, next.atMs);
      next.fn();
      await flushMicrotasks();
    }
    this.now = end;
    await flushMicrotasks();
  }
}

/** Lets queued promise callbacks run (several turns, for chains of awaits). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

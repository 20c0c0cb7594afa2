import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ControllerMetrics } from './metrics.ts';
import { BucketRateLimiter, defaultControllerRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter } from './rate-limiter.ts';
import { FakeClock, flushMicrotasks } from './testing/fake-clock.ts';
import { metricValue } from './testing/fixtures.ts';
import { WorkQueue } from './workqueue.ts';

function newQueue(clock = new FakeClock()) {
  const registry = new Registry();
  const queue = new WorkQueue<string>({ name: 'test', clock, metrics: new ControllerMetrics(registry).forQueue('test') });
  return { queue, clock, registry };
}

/** Starts a `get` and reports whether it has resolved, without waiting for it. */
function pendingGet(queue: WorkQueue<string>) {
  const state: { done: boolean; key: string | undefined } = { done: false, key: undefined };
  const promise = queue.get().then((k) => {
    state.done = true;
    state.key = k;
    return k;
  });
  return { state, promise };
}

describe('WorkQueue', () => {
  interface Case {
    readonly name: string;
    /** Steps: `+k` add, `>k` get (expect k), `-k` done, `.` get must wait (expect nothing ready). */
    readonly steps: readonly string[];
  }
  const cases: Case[] = [
    { name: 'hands out a key added many times while waiting once (stingy)', steps: ['+a', '+a', '+b', '+a', '>a', '>b', '.'] },
    { name: 'hands out keys in first-added order (fair)', steps: ['+c', '+a', '+b', '+a', '>c', '>a', '>b'] },
    { name: 'never hands one key to two workers: a re-add while processing waits for done', steps: ['+a', '>a', '+a', '.', '-a', '>a'] },
    { name: 'does not re-queue a key on done when nobody re-added it', steps: ['+a', '>a', '-a', '.'] },
    { name: 'lets other keys pass a key that is being processed', steps: ['+a', '>a', '+a', '+b', '>b', '-a', '>a'] },
  ];
  it.each(cases)('$name', async ({ steps }) => {
    const { queue } = newQueue();
    for (const step of steps) {
      const [op, key] = [step[0], step.slice(1)];
      if (op === '+') queue.add(key);
      if (op === '-') queue.done(key);
      if (op === '>') expect(await queue.get()).toBe(key);
      if (op === '.') {
        const g = pendingGet(queue);
        await flushMicrotasks();
        expect(g.state.done).toBe(false);
        queue.shutDown(); // releases the waiting get
        expect(await g.promise).toBeUndefined();
        return;
      }
    }
  });

  it('hands a key re-added during processing to the next waiting worker once done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    expect(await queue.get()).toBe('a');
    const second = pendingGet(queue);
    queue.add('a');
    queue.add('a');
    await flushMicrotasks();
    expect(second.state.done).toBe(false);
    queue.done('a');
    expect(await second.promise).toBe('a');
    expect(queue.len()).toBe(0);
  });

  it('delays addAfter until the clock reaches it, keeping the earliest time', async () => {
    const { queue, clock } = newQueue();
    queue.addAfter('a', 100);
    queue.addAfter('a', 50);
    queue.addAfter('a', 80);
    const g = pendingGet(queue);
    await clock.advance(49);
    expect(g.state.done).toBe(false);
    await clock.advance(1);
    expect(g.state).toEqual({ done: true, key: 'a' });
    expect(queue.delayed()).toBe(0);
    queue.addAfter('b', 0); // no delay: added at once
    expect(queue.len()).toBe(1);
  });

  it('backs off a retried key exponentially and forget resets it', async () => {
    const { queue, clock, registry } = newQueue();
    const readyAfter = async (key: string): Promise<number> => {
      const g = pendingGet(queue);
      let waited = 0;
      while (!g.state.done) {
        await clock.advance(1);
        waited++;
      }
      queue.done(key);
      return waited;
    };
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      queue.addRateLimited('a');
      waits.push(await readyAfter('a'));
    }
    expect(waits).toEqual([5, 10, 20, 40]);
    expect(queue.numRequeues('a')).toBe(4);
    queue.forget('a');
    expect(queue.numRequeues('a')).toBe(0);
    queue.addRateLimited('a');
    expect(await readyAfter('a')).toBe(5);
    expect(await metricValue(registry, 'workqueue_retries_total', { name: 'test' })).toBe(5);
  });

  it('shutDown refuses adds, drops delays, still hands out queued keys, then ends', async () => {
    const { queue, clock } = newQueue();
    queue.add('a');
    queue.addAfter('later', 10);
    queue.shutDown();
    queue.add('b');
    await clock.advance(100);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBeUndefined();
    expect(queue.isShuttingDown()).toBe(true);
  });

  it('shutDownWithDrain waits for keys in flight to be done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => (drained = true));
    queue.done('a');
    await flushMicrotasks();
    expect(drained).toBe(false);
    queue.done('b');
    await drain;
    expect(drained).toBe(true);
  });

  it('reports depth, adds and in-flight work in metrics', async () => {
    const { queue, clock, registry } = newQueue();
    queue.add('a');
    queue.add('a');
    queue.add('b');
    expect(await metricValue(registry, 'workqueue_depth', { name: 'test' })).toBe(2);
    expect(await metricValue(registry, 'workqueue_adds_total', { name: 'test' })).toBe(2);
    await queue.get();
    await clock.advance(3_000);
    expect(await metricValue(registry, 'workqueue_depth', { name: 'test' })).toBe(1);
    expect(await metricValue(registry, 'workqueue_longest_running_processor_seconds', { name: 'test' })).toBe(3);
    expect(await metricValue(registry, 'workqueue_unfinished_work_seconds', { name: 'test' })).toBe(3);
    queue.done('a');
    expect(await metricValue(registry, 'workqueue_longest_running_processor_seconds', { name: 'test' })).toBe(0);
    const text = await registry.metrics();
    expect(text).toMatch(/workqueue_queue_duration_seconds_count\{name="test"\} 1/);
    expect(text).toMatch(/workqueue_work_duration_seconds_count\{name="test"\} 1/);
  });
});

describe('rate limiters', () => {
  const exp = [
    { name: 'starts at 5 ms', failures: 1, wantLastMs: 5 },
    { name: 'doubles on each failure', failures: 5, wantLastMs: 80 },
    { name: 'is still below the cap after 18 failures', failures: 18, wantLastMs: 655_360 },
    { name: 'caps at 1000 s', failures: 19, wantLastMs: 1_000_000 },
    { name: 'stays at the cap', failures: 200, wantLastMs: 1_000_000 },
  ];
  it.each(exp)('item exponential back-off $name', ({ failures, wantLastMs }) => {
    const l = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    const got = Array.from({ length: failures }, () => l.whenMs('k'));
    expect(got.at(-1)).toBe(wantLastMs);
    expect(l.whenMs('other')).toBe(5); // per key
  });

  it('lets a burst through, then spaces retries at the overall rate', async () => {
    const clock = new FakeClock();
    const l = new BucketRateLimiter<string>(10, 100, clock);
    const first = Array.from({ length: 100 }, (_, i) => l.whenMs(`k${i}`));
    expect(first.every((d) => d === 0)).toBe(true);
    expect(l.whenMs('x')).toBeCloseTo(100);
    expect(l.whenMs('y')).toBeCloseTo(200);
    await clock.advance(100); // one token refilled; two were owed
    expect(l.whenMs('z')).toBeCloseTo(200);
    await clock.advance(10_000);
    expect(l.whenMs('w')).toBe(0);
  });

  it('takes the longer of per-key back-off and the overall limit', () => {
    const clock = new FakeClock();
    const l = new MaxOfRateLimiter<string>(new ItemExponentialFailureRateLimiter(5, 1_000_000), new BucketRateLimiter(1, 1, clock));
    expect(l.whenMs('a')).toBe(5);
    expect(l.whenMs('b')).toBeCloseTo(1_000);
    expect(l.numRequeues('a')).toBe(1);
    l.forget('a');
    expect(l.numRequeues('a')).toBe(0);
    expect(defaultControllerRateLimiter<string>(clock).whenMs('a')).toBe(5);
  });
});

import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Controller, type ControllerOptions } from './controller.ts';
import { ControllerMetrics } from './metrics.ts';
import { TerminalError, type ReconcileContext, type Reconciler, type Request, type Result } from './reconcile.ts';
import { FakeClock, flushMicrotasks } from './testing/fake-clock.ts';
import { metricValue } from './testing/fixtures.ts';

/** A reconciler driven by a script of per-attempt behaviours, recording every call. */
class ScriptedReconciler implements Reconciler {
  readonly calls: string[] = [];
  constructor(private readonly behave: (attempt: number, req: Request, ctx: ReconcileContext) => Promise<Result>) {}
  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    this.calls.push(`${req.namespace}/${req.name}`);
    return this.behave(this.calls.length, req, ctx);
  }
}

function start(reconciler: Reconciler, opts: Partial<ControllerOptions> = {}) {
  const clock = new FakeClock();
  const registry = new Registry();
  const controller = new Controller({ name: 'test', reconciler, clock, metrics: new ControllerMetrics(registry), ...opts });
  controller.start();
  onTestFinished(() => controller.stop());
  const count = (name: string, labels: Record<string, string> = {}) => metricValue(registry, name, { controller: 'test', ...labels });
  return { controller, clock, registry, count };
}

const req = { namespace: 'default', name: 'a' };

describe('Controller', () => {
  it('requeues with back-off when reconcile throws, and forgets the back-off after a success', async () => {
    const r = new ScriptedReconciler(async (attempt) => {
      if (attempt <= 3) throw new Error(`boom ${attempt}`);
      return {};
    });
    const { controller, clock, count } = start(r);
    controller.enqueue(req);
    await flushMicrotasks();
    expect(r.calls).toHaveLength(1);
    for (const [waitMs, calls] of [[4, 1], [1, 2], [9, 2], [1, 3], [19, 3], [1, 4]] as const) {
      await clock.advance(waitMs);
      expect(r.calls).toHaveLength(calls);
    }
    await clock.advance(10_000);
    expect(r.calls).toHaveLength(4);
    expect(controller.queue.numRequeues('default/a')).toBe(0);
    expect(await count('controller_runtime_reconcile_errors_total')).toBe(3);
    expect(await count('controller_runtime_reconcile_total', { result: 'error' })).toBe(3);
    expect(await count('controller_runtime_reconcile_total', { result: 'success' })).toBe(1);
  });

  it('records a TerminalError without retrying', async () => {
    const r = new ScriptedReconciler(async () => {
      throw new TerminalError('spec.image is not a valid reference');
    });
    const { controller, clock, count } = start(r);
    controller.enqueue(req);
    await clock.advance(3_600_000);
    expect(r.calls).toHaveLength(1);
    expect(controller.queue.delayed()).toBe(0);
    expect(await count('controller_runtime_terminal_reconcile_errors_total')).toBe(1);
    expect(await count('controller_runtime_reconcile_errors_total')).toBe(1);
    expect(await count('controller_runtime_reconcile_total', { result: 'error' })).toBe(1);
  });

  it('honours requeueAfter, and requeueAfter 0 requeues at once', async () => {
    const r = new ScriptedReconciler(async (attempt) => (attempt === 1 ? { requeueAfterMs: 1_000 } : attempt === 2 ? { requeueAfterMs: 0 } : {}));
    const { controller, clock, count } = start(r);
    controller.enqueue(req);
    await clock.advance(999);
    expect(r.calls).toHaveLength(1);
    await clock.advance(1);
    expect(r.calls).toHaveLength(3);
    await clock.advance(60_000);
    expect(r.calls).toHaveLength(3);
    expect(await count('controller_runtime_reconcile_total', { result: 'requeue_after' })).toBe(1);
    expect(await count('controller_runtime_reconcile_total', { result: 'requeue' })).toBe(1);
    expect(await count('controller_runtime_reconcile_total', { result: 'success' })).toBe(1);
  });

  it('never reconciles one key concurrently, while other keys proceed', async () => {
    const running = new Map<string, number>();
    let maxSameKey = 0;
    const releases: (() => void)[] = [];
    const r = new ScriptedReconciler(async (_attempt, q) => {
      const k = q.name;
      running.set(k, (running.get(k) ?? 0) + 1);
      maxSameKey = Math.max(maxSameKey, running.get(k)!);
      if (k === 'a') await new Promise<void>((resolve) => releases.push(resolve));
      running.set(k, running.get(k)! - 1);
      return {};
    });
    const { controller } = start(r, { workers: 4 });
    controller.enqueue(req);
    await flushMicrotasks();
    for (let i = 0; i < 5; i++) controller.enqueue(req);
    controller.enqueue({ namespace: 'default', name: 'b' });
    await flushMicrotasks();
    expect(r.calls).toEqual(['default/a', 'default/b']);
    releases.shift()!();
    await flushMicrotasks();
    expect(r.calls).toEqual(['default/a', 'default/b', 'default/a']); // the five re-adds became one
    releases.shift()!();
    await flushMicrotasks();
    expect(r.calls).toHaveLength(3);
    expect(maxSameKey).toBe(1);
  });

  it('aborts the reconcile signal after the timeout and retries', async () => {
    const aborted: string[] = [];
    const r = new ScriptedReconciler(async (attempt, _q, ctx) => {
      if (attempt > 1) return {};
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      aborted.push(String((ctx.signal.reason as Error).message));
      throw ctx.signal.reason;
    });
    const { controller, clock } = start(r, { reconcileTimeoutMs: 100 });
    controller.enqueue(req);
    await clock.advance(99);
    expect(aborted).toEqual([]);
    await clock.advance(1);
    expect(aborted).toEqual(['reconcile timed out after 100 ms']);
    await clock.advance(5);
    expect(r.calls).toHaveLength(2);
  });

  it('stop aborts running reconciles, waits for them, and reconciles nothing after', async () => {
    let finished = false;
    const r = new ScriptedReconciler(async (_a, _q, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      await flushMicrotasks();
      finished = true;
      return {};
    });
    const { controller } = start(r);
    controller.enqueue(req);
    controller.enqueue({ namespace: 'default', name: 'queued' });
    await flushMicrotasks();
    await controller.stop();
    expect(finished).toBe(true);
    controller.enqueue({ namespace: 'default', name: 'late' });
    await flushMicrotasks();
    expect(r.calls).toEqual(['default/a']);
  });
});

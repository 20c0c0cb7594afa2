/**
 * `Controller`: the loop that takes keys off a work queue and reconciles them, with
 * the retry policy in one `switch` (controller-runtime's `reconcileHandler`).
 */
import { randomUUID } from 'node:crypto';
import type { KubeObject } from '../../api/types/index.ts';
import { realClock, type Clock } from './clock.ts';
import { errorInfo, type SharedInformer } from './informer.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { ControllerMetrics, ReconcileResultLabel } from './metrics.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { isTerminal, type Reconciler, type Request } from './reconcile.ts';
import { keyOf, parseKey, type ResourceKind } from './resource-kind.ts';
import { WorkQueue } from './workqueue.ts';
import type { WriteTracker } from './write-tracker.ts';

/** Turns a watched object into the requests to enqueue (e.g. itself, or its owner). */
export type MapFunc<T extends KubeObject = KubeObject> = (obj: T) => readonly Request[];

/** Read-your-writes: before reconciling a key, wait until these caches show this process's last write to it. */
export interface OwnWritesOptions {
  readonly tracker: WriteTracker;
  /** The kind whose objects are the controller's keys. */
  readonly kind: ResourceKind;
  /** The caches the reconciler reads that kind from. */
  readonly informers: readonly SharedInformer<KubeObject>[];
  /** The longest wait; after it the key is reconciled anyway (logged). */
  readonly maxWaitMs: number;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics (`controller` label) and its queue (`name` label). */
  readonly name: string;
  readonly reconciler: Reconciler;
  /** Keys reconciled at once (never the same key twice). Default 1. */
  readonly workers?: number;
  /** Each reconcile's signal aborts after this long. Default 60 s. */
  readonly reconcileTimeoutMs?: number;
  readonly log?: Logger;
  readonly metrics?: ControllerMetrics;
  readonly clock?: Clock;
  /** Default: 5 ms doubling to 1000 s per key, under 10 qps / burst 100. */
  readonly rateLimiter?: RateLimiter<string>;
  readonly ownWrites?: OwnWritesOptions;
}

type Outcome =
  | { readonly kind: 'terminal'; readonly err: unknown }
  | { readonly kind: 'error'; readonly err: unknown }
  | { readonly kind: 'requeueAfter'; readonly delayMs: number }
  | { readonly kind: 'done' };

/**
 * Runs a reconciler over a work queue of keys. `enqueue` (or informer handlers added
 * with `watch`) feed it; `start` runs the workers; `stop` stops taking keys, aborts
 * running reconciles' signals and waits for them to return. One run only: create a
 * new controller to run again.
 */
export class Controller {
  readonly name: string;
  readonly queue: WorkQueue<string>;
  private readonly stopper = new AbortController();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly workers: number;
  private running: Promise<void>[] = [];
  /** The abort controllers of the reconciles running now; `stop` aborts them. */
  private readonly inFlight = new Set<AbortController>();

  constructor(private readonly opts: ControllerOptions) {
    this.name = opts.name;
    this.clock = opts.clock ?? realClock;
    this.workers = Math.max(1, opts.workers ?? 1);
    this.log = (opts.log ?? silentLogger).child({ controller: opts.name });
    this.queue = new WorkQueue<string>({
      name: opts.name,
      clock: this.clock,
      ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
      ...(opts.metrics ? { metrics: opts.metrics.forQueue(opts.name) } : {}),
    });
    opts.metrics?.initController(opts.name, this.workers);
  }

  /** Queues a request (deduplicated with any queued request for the same key). */
  enqueue(req: Request): void {
    this.queue.add(keyOf(req.namespace, req.name));
  }

  /** Enqueues `map(obj)` for every add, update (old and new object) and delete the informer reports. */
  watch<T extends KubeObject>(informer: SharedInformer<T>, map: MapFunc<T>): void {
    const enqueue = (obj: T) => {
      for (const req of map(obj)) this.enqueue(req);
    };
    this.unsubscribe.push(
      informer.addEventHandler({
        onAdd: enqueue,
        onUpdate: (oldObj, newObj) => {
          enqueue(oldObj);
          enqueue(newObj);
        },
        onDelete: enqueue,
      }),
    );
  }

  /** Starts the workers. Idempotent. */
  start(): void {
    if (this.running.length > 0 || this.stopper.signal.aborted) return;
    this.log.info({ workers: this.workers }, 'starting workers');
    for (let i = 0; i < this.workers; i++) this.running.push(this.worker());
  }

  /** Stops: no new reconciles, running ones see their signal abort; resolves when they have returned. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.stopper.abort();
    for (const a of this.inFlight) a.abort(this.stopper.signal.reason);
    await this.queue.shutDownWithDrain();
    await Promise.all(this.running);
    this.log.info({}, 'stopped');
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        // after stop the queue still hands out what it held; those keys are dropped, not reconciled
        if (!this.stopper.signal.aborted) await this.reconcileHandler(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileHandler(key: string): Promise<void> {
    const { reconciler, metrics } = this.opts;
    const req: Request = parseKey(key);
    const log = this.log.child({ key, reconcileId: randomUUID() });
    await this.waitForOwnWrite(req, log);

    // one controller per reconcile, aborted by its timer or by stop(): no AbortSignal.any and
    // no listener on the stopper, both of which cost more than a short reconcile
    const abort = new AbortController();
    if (this.stopper.signal.aborted) abort.abort(this.stopper.signal.reason);
    this.inFlight.add(abort);
    const timer = this.clock.setTimer(() => abort.abort(new Error(`reconcile timed out after ${this.opts.reconcileTimeoutMs ?? 60_000} ms`)), this.opts.reconcileTimeoutMs ?? 60_000);
    const signal = abort.signal;
    const started = this.clock.nowMs();
    metrics?.activeWorkers.inc({ controller: this.name });
    let outcome: Outcome;
    try {
      const result = await reconciler.reconcile({ signal, log }, req);
      const after = result?.requeueAfterMs;
      outcome = after !== undefined && after >= 0 ? { kind: 'requeueAfter', delayMs: after } : { kind: 'done' };
    } catch (err) {
      outcome = isTerminal(err) ? { kind: 'terminal', err } : { kind: 'error', err };
    } finally {
      this.clock.clearTimer(timer);
      this.inFlight.delete(abort);
      metrics?.activeWorkers.dec({ controller: this.name });
      metrics?.reconcileTime.observe({ controller: this.name }, (this.clock.nowMs() - started) / 1000);
    }

    let result: ReconcileResultLabel;
    switch (outcome.kind) {
      case 'terminal':
        // record, no retry: the reconciler wrote the reason into status itself
        result = 'error';
        metrics?.reconcileErrors.inc({ controller: this.name });
        metrics?.terminalReconcileErrors.inc({ controller: this.name });
        log.error({ err: errorInfo(outcome.err) }, 'reconciler error (terminal, not retried)');
        this.queue.forget(key);
        break;
      case 'error':
        result = 'error';
        metrics?.reconcileErrors.inc({ controller: this.name });
        log.error({ err: errorInfo(outcome.err), retries: this.queue.numRequeues(key) }, 'reconciler error; retrying with back-off');
        this.queue.addRateLimited(key);
        break;
      case 'requeueAfter':
        result = outcome.delayMs === 0 ? 'requeue' : 'requeue_after';
        this.queue.forget(key);
        this.queue.addAfter(key, outcome.delayMs);
        break;
      case 'done':
        result = 'success';
        this.queue.forget(key);
        break;
    }
    metrics?.reconcileTotal.inc({ controller: this.name, result });
  }

  private async waitForOwnWrite(req: Request, log: Logger): Promise<void> {
    const own = this.opts.ownWrites;
    if (!own || own.maxWaitMs <= 0) return;
    const rv = own.tracker.lastWrite(own.kind, req.namespace, req.name);
    if (!rv) return;
    const started = this.clock.nowMs();
    const caughtUp = await Promise.all(own.informers.map((i) => i.waitForResourceVersion(rv, own.maxWaitMs, this.stopper.signal)));
    if (caughtUp.every(Boolean)) own.tracker.settle(own.kind, req.namespace, req.name, rv);
    else log.warn({ resourceVersion: rv, waitedMs: this.clock.nowMs() - started }, 'cache has not caught up with our last write; reconciling anyway');
  }
}

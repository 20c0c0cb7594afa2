/**
 * Prometheus metrics of the controller runtime, named as controller-runtime and
 * client-go name them, so existing dashboards and alerts work unchanged. All metrics
 * go to the `Registry` passed in, never to prom-client's global registry.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What a work queue reports; `ControllerMetrics.forQueue` makes one per queue name. */
export interface WorkQueueMetrics {
  /** A key entered the queue (not counted when it was already waiting). */
  added(): void;
  /** Current number of keys waiting to be handed out. */
  depth(n: number): void;
  /** A key was handed to a worker after waiting `seconds`. */
  queued(seconds: number): void;
  /** A worker finished a key after `seconds`. */
  worked(seconds: number): void;
  /** `addRateLimited` was called. */
  retried(): void;
  /** Registers a source of in-flight work ages (seconds) for the unfinished/longest gauges; returns its removal. */
  trackInFlight(source: () => readonly number[]): () => void;
}

/** `controller_runtime_reconcile_total` result label values. */
export type ReconcileResultLabel = 'success' | 'error' | 'requeue' | 'requeue_after';

/** Why an informer re-listed or re-watched: `berth_informer_restarts_total` reason label values. */
export type InformerRestartReason = 'expired' | 'watch_error' | 'list_error' | 'closed';

const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0,
  2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go: ExponentialBuckets(10e-9, 10, 12). */
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

/**
 * The framework's metrics on one registry. Constructing a second instance on the same
 * registry reuses the registered metrics. Shared by all controllers, queues and
 * informers of a `Manager`.
 */
export class ControllerMetrics {
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly terminalReconcileErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly maxConcurrentReconciles: Gauge<'controller'>;
  readonly informerRestarts: Counter<'resource' | 'reason'>;
  private readonly queueDepth: Gauge<'name'>;
  private readonly queueAdds: Counter<'name'>;
  private readonly queueLatency: Histogram<'name'>;
  private readonly workDuration: Histogram<'name'>;
  private readonly retries: Counter<'name'>;
  private readonly inFlight = new Map<string, Set<() => readonly number[]>>();

  constructor(readonly registry: Registry) {
    const existing = <M>(name: string): M | undefined => registry.getSingleMetric(name) as M | undefined;
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      existing<Counter<L>>(name) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect?: (this: Gauge<L>) => void) =>
      existing<Gauge<L>>(name) ?? new Gauge<L>({ name, help, labelNames, registers: [registry], ...(collect ? { collect } : {}) });
    const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]) =>
      existing<Histogram<L>>(name) ?? new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });

    this.reconcileTotal = counter('controller_runtime_reconcile_total', 'Total number of reconciliations per controller', ['controller', 'result']);
    this.reconcileErrors = counter('controller_runtime_reconcile_errors_total', 'Total number of reconciliation errors per controller', ['controller']);
    this.terminalReconcileErrors = counter('controller_runtime_terminal_reconcile_errors_total', 'Total number of terminal reconciliation errors per controller', ['controller']);
    this.reconcileTime = histogram('controller_runtime_reconcile_time_seconds', 'Length of time per reconciliation per controller', ['controller'], RECONCILE_BUCKETS);
    this.activeWorkers = gauge('controller_runtime_active_workers', 'Number of currently used workers per controller', ['controller']);
    this.maxConcurrentReconciles = gauge('controller_runtime_max_concurrent_reconciles', 'Maximum number of concurrent reconciles per controller', ['controller']);
    this.informerRestarts = counter('berth_informer_restarts_total', 'Times an informer re-listed or re-watched, by resource and reason', ['resource', 'reason']);
    this.queueDepth = gauge('workqueue_depth', 'Current depth of workqueue', ['name']);
    this.queueAdds = counter('workqueue_adds_total', 'Total number of adds handled by workqueue', ['name']);
    this.queueLatency = histogram('workqueue_queue_duration_seconds', 'How long in seconds an item stays in workqueue before being requested', ['name'], QUEUE_BUCKETS);
    this.workDuration = histogram('workqueue_work_duration_seconds', 'How long in seconds processing an item from workqueue takes', ['name'], QUEUE_BUCKETS);
    this.retries = counter('workqueue_retries_total', 'Total number of retries handled by workqueue', ['name']);

    const inFlight = this.inFlight;
    const ages = (name: string) => [...(inFlight.get(name) ?? [])].flatMap((f) => f());
    gauge(
      'workqueue_unfinished_work_seconds',
      'How many seconds of work has been done that is in progress and hasn\'t been observed by work_duration. Large values indicate stuck threads.',
      ['name'],
      function collect() {
        for (const name of inFlight.keys()) this.set({ name }, ages(name).reduce((a, b) => a + b, 0));
      },
    );
    gauge(
      'workqueue_longest_running_processor_seconds',
      'How many seconds has the longest running processor for workqueue been running.',
      ['name'],
      function collect() {
        for (const name of inFlight.keys()) this.set({ name }, Math.max(0, ...ages(name)));
      },
    );
  }

  /** Metrics of the work queue called `name` (label `name`). */
  forQueue(name: string): WorkQueueMetrics {
    const labels = { name };
    this.queueDepth.set(labels, 0);
    this.queueAdds.inc(labels, 0);
    this.retries.inc(labels, 0);
    return {
      added: () => this.queueAdds.inc(labels),
      depth: (n) => this.queueDepth.set(labels, n),
      queued: (s) => this.queueLatency.observe(labels, s),
      worked: (s) => this.workDuration.observe(labels, s),
      retried: () => this.retries.inc(labels),
      trackInFlight: (source) => {
        const set = this.inFlight.get(name) ?? new Set();
        set.add(source);
        this.inFlight.set(name, set);
        return () => set.delete(source);
      },
    };
  }

  /** Counts one informer restart. */
  informerRestarted(resource: string, reason: InformerRestartReason): void {
    this.informerRestarts.inc({ resource, reason });
  }

  /** Sets every counter of `controller` to zero so it is exported before its first reconcile. */
  initController(controller: string, workers: number): void {
    for (const result of ['success', 'error', 'requeue', 'requeue_after'] as const) this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc({ controller }, 0);
    this.terminalReconcileErrors.inc({ controller }, 0);
    this.maxConcurrentReconciles.set({ controller }, workers);
    this.activeWorkers.set({ controller }, 0);
  }
}

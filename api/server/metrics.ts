/**
 * Prometheus metrics of the API server and its store, served at `/metrics`
 * under kube-apiserver's metric names where one exists.
 */
import type { Request, RequestHandler, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreStats } from '../../store/revision-log.ts';
import type { GroupResource } from '../errors.ts';
import { plainNode } from './plain-node.ts';

/**
 * The fields of `res.locals.requestInfo` these metrics read. The router sets it
 * before the handler runs; requests without it (discovery, /healthz, 404s before
 * routing) are labelled by HTTP method with empty group/resource/scope.
 */
export interface MetricsRequestInfo {
  /** kube's request verb: get, list, watch, create, update, patch, apply, delete, deletecollection. */
  readonly verb: string;
  /** '' for the core group. */
  readonly group: string;
  /** Plural resource, e.g. `containers`. */
  readonly resource: string;
  /** e.g. `status`, or ''. */
  readonly subresource: string;
  readonly scope: 'namespace' | 'cluster' | 'resource' | '';
}

export interface ApiMetricsOptions {
  /** Also export prom-client's process_* and nodejs_* metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /** Called when a collect callback (`setStoreStatsSource`, `setStorageObjectsSource`) rejects. */
  readonly onCollectError?: (err: unknown) => void;
}

/** kube-apiserver's `apiserver_request_duration_seconds` buckets. */
export const REQUEST_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
];

const exponential = (start: number, factor: number, count: number): number[] =>
  Array.from({ length: count }, (_, i) => start * factor ** i);

/** etcd's WAL fsync buckets: 1 ms doubling to about 8 s. */
const COMMIT_DURATION_BUCKETS_SECONDS = exponential(0.001, 2, 14);
const COMMIT_BATCH_SIZE_BUCKETS = exponential(1, 2, 11);
const COMPACTION_DURATION_BUCKETS_SECONDS = exponential(0.001, 2, 16);

/** prom-client gauges whose `_total` suffix fails `promtool check metrics`. */
const LINT_FAILING_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** kube's RequestInfo verbs → the `verb` label values kube-apiserver's metrics use. */
const METRIC_VERBS: Readonly<Record<string, string>> = {
  get: 'GET',
  list: 'LIST',
  watch: 'WATCH',
  watchlist: 'WATCH',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  apply: 'APPLY',
  delete: 'DELETE',
  deletecollection: 'DELETE',
  connect: 'CONNECT',
  proxy: 'CONNECT',
};

/** Verbs left out of the latency histogram: their duration is the client's choice. */
const LONG_RUNNING_VERBS = new Set(['WATCH', 'CONNECT']);

const APPLY_PATCH_TYPE = 'application/apply-patch+yaml';

type RequestLabel = 'verb' | 'group' | 'resource' | 'subresource' | 'scope';

/**
 * The API server's metrics, in a registry of their own (never prom-client's
 * global one, so several servers can live in one process, as tests do).
 *
 * The `verb` label uses kube-apiserver's metric vocabulary (`GET`, `LIST`,
 * `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`, `DELETE`), so kube dashboards and
 * alerts work unchanged. All methods are cheap and synchronous; call them from
 * any request or store path.
 */
export class ApiMetrics {
  /** The registry `handler()` serves; add metrics of your own to it. */
  readonly registry = new Registry();

  private readonly requests: Counter<RequestLabel | 'code'>;
  private readonly requestDuration: Histogram<RequestLabel>;
  private readonly watchers: Gauge<'group' | 'resource'>;
  private readonly watchEvents: Counter<'group' | 'resource'>;
  private readonly commitDuration: Histogram;
  private readonly commitBatchSize: Histogram;
  private readonly compactions: Counter;
  private readonly compactedRows: Counter;
  private readonly compactionDuration: Histogram;
  private readonly storeRevision: Gauge;
  private readonly storeCompactRevision: Gauge;
  private readonly storeSize: Gauge;
  private storeStatsSource?: () => Promise<StoreStats>;
  private storeStatsInFlight?: Promise<StoreStats | undefined>;
  private storageObjectsSource?: () => Promise<ReadonlyMap<string, number>>;

  constructor(private readonly opts: ApiMetricsOptions = {}) {
    const self = this;
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of LINT_FAILING_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }
    const requestLabels: RequestLabel[] = ['verb', 'group', 'resource', 'subresource', 'scope'];
    this.requests = new Counter({
      name: 'apiserver_request_total',
      help: 'Counter of apiserver requests broken out for each verb, API group, resource, scope and HTTP response code.',
      labelNames: [...requestLabels, 'code'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'apiserver_request_duration_seconds',
      help: 'Response latency distribution in seconds for each verb, API group, resource, subresource and scope (watches excluded).',
      labelNames: requestLabels,
      buckets: [...REQUEST_DURATION_BUCKETS_SECONDS],
      registers,
    });
    this.watchers = new Gauge({
      name: 'apiserver_registered_watchers',
      help: 'Number of currently open watches for a given resource.',
      labelNames: ['group', 'resource'],
      registers,
    });
    this.watchEvents = new Counter({
      name: 'apiserver_watch_events_total',
      help: 'Number of events sent in watch clients.',
      labelNames: ['group', 'resource'],
      registers,
    });
    new Gauge({
      name: 'apiserver_storage_objects',
      help: 'Number of stored objects at the time of last check split by resource type.',
      labelNames: ['resource'],
      registers,
      collect: async function (this: Gauge<'resource'>) {
        await self.collectStorageObjects(this);
      },
    });
    const storeGauge = (name: string, help: string, pick: (s: StoreStats) => number): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect: async function (this: Gauge) {
          const stats = await self.scrapeStoreStats();
          if (stats) this.set(pick(stats));
          // a label-less gauge always has a sample: NaN says "unknown" where 0 would lie
          else if (self.storeStatsSource) this.set(Number.NaN);
        },
      });
    this.storeRevision = storeGauge('berth_store_revision', 'The latest revision of the revision log.', (s) => s.revision);
    this.storeCompactRevision = storeGauge(
      'berth_store_compact_revision',
      'The revision up to which the revision log has been compacted.',
      (s) => s.compactRevision,
    );
    this.storeSize = storeGauge('berth_store_size_bytes', 'Bytes on disk of the store (database and WAL).', (s) => s.sizeBytes);
    this.commitDuration = new Histogram({
      name: 'berth_store_commit_duration_seconds',
      help: 'Latency of one durable commit (write and fsync) of a batch of writes.',
      buckets: COMMIT_DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.commitBatchSize = new Histogram({
      name: 'berth_store_commit_batch_size',
      help: 'Number of writes committed together in one batch.',
      buckets: COMMIT_BATCH_SIZE_BUCKETS,
      registers,
    });
    this.compactions = new Counter({
      name: 'berth_store_compactions_total',
      help: 'Number of compactions of the revision log.',
      registers,
    });
    this.compactedRows = new Counter({
      name: 'berth_store_compacted_rows_total',
      help: 'Number of revision log rows removed by compaction.',
      registers,
    });
    this.compactionDuration = new Histogram({
      name: 'berth_store_compaction_duration_seconds',
      help: 'Duration of one compaction of the revision log.',
      buckets: COMPACTION_DURATION_BUCKETS_SECONDS,
      registers,
    });
  }

  /**
   * Express middleware, mounted before the router, that counts every request
   * in `apiserver_request_total` and times it in `apiserver_request_duration_seconds`
   * (watches only in the counter) once the response is closed. Labels come from
   * `res.locals.requestInfo` as it is at that time. A request whose client left
   * before any response gets `code="0"`.
   */
  middleware(): RequestHandler {
    // Node's http API only (see plain-node.ts).
    return plainNode((req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const labels = requestLabels(req, res);
        const code = res.headersSent ? String(res.statusCode) : '0';
        this.requests.inc({ ...labels, code });
        if (!LONG_RUNNING_VERBS.has(labels.verb)) this.requestDuration.observe(labels, seconds);
      });
      next();
    });
  }

  /** Express handler serving the registry in Prometheus text format 0.0.4. */
  handler(): RequestHandler {
    return async (_req, res, next) => {
      try {
        const body = await this.registry.metrics();
        res.setHeader('Content-Type', this.registry.contentType);
        res.end(body);
      } catch (err) {
        next(err);
      }
    };
  }

  /**
   * Counts one open watch of `gr` in `apiserver_registered_watchers` and returns
   * the function that uncounts it; calling that more than once has no further effect.
   */
  watchStarted(gr: GroupResource): () => void {
    const labels = { group: gr.group, resource: gr.resource };
    this.watchers.inc(labels);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.watchers.dec(labels);
    };
  }

  /** Counts `count` events sent to watch clients of `gr`. */
  observeWatchEvents(gr: GroupResource, count = 1): void {
    this.watchEvents.inc({ group: gr.group, resource: gr.resource }, count);
  }

  /**
   * Sets where `apiserver_storage_objects` comes from: called at each scrape, it
   * resolves to object counts keyed by the `resource` label, which kube spells
   * `<plural>.<group>` (`containers.berth.dev`, or `namespaces` for core).
   * If it rejects, the metric has no samples in that scrape.
   */
  setStorageObjectsSource(source: () => Promise<ReadonlyMap<string, number>>): void {
    this.storageObjectsSource = source;
  }

  /**
   * Sets where the `berth_store_*` gauges come from: called once per scrape
   * (typically `() => log.stats()`). If it rejects, the gauges are NaN in that
   * scrape. Replaces values pushed by `setStoreStats`.
   */
  setStoreStatsSource(source: () => Promise<StoreStats>): void {
    this.storeStatsSource = source;
  }

  /** Pushes store stats into the `berth_store_*` gauges, for callers without a source. */
  setStoreStats(stats: StoreStats): void {
    this.storeRevision.set(stats.revision);
    this.storeCompactRevision.set(stats.compactRevision);
    this.storeSize.set(stats.sizeBytes);
  }

  /** Records one durable commit of `batchSize` writes that took `seconds` (write + fsync). */
  observeCommit(batchSize: number, seconds: number): void {
    this.commitBatchSize.observe(batchSize);
    this.commitDuration.observe(seconds);
  }

  /** Records one compaction that removed `rows` rows and took `seconds`. */
  observeCompaction(rows: number, seconds: number): void {
    this.compactions.inc();
    this.compactedRows.inc(rows);
    this.compactionDuration.observe(seconds);
  }

  /** One `stats()` call shared by the three store gauges of a scrape (they collect concurrently). */
  private scrapeStoreStats(): Promise<StoreStats | undefined> {
    const source = this.storeStatsSource;
    if (!source) return Promise.resolve(undefined);
    if (!this.storeStatsInFlight) {
      this.storeStatsInFlight = source()
        .catch((err: unknown) => {
          this.opts.onCollectError?.(err);
          return undefined;
        })
        .finally(() => {
          this.storeStatsInFlight = undefined;
        });
    }
    return this.storeStatsInFlight;
  }

  private async collectStorageObjects(gauge: Gauge<'resource'>): Promise<void> {
    const source = this.storageObjectsSource;
    if (!source) return;
    gauge.reset();
    try {
      for (const [resource, count] of await source()) gauge.set({ resource }, count);
    } catch (err) {
      gauge.reset();
      this.opts.onCollectError?.(err);
    }
  }
}

function requestLabels(req: Request, res: Response): Record<RequestLabel, string> {
  const info = res.locals.requestInfo as Partial<MetricsRequestInfo> | undefined;
  if (!info?.verb) {
    return { verb: req.method.toUpperCase(), group: '', resource: '', subresource: '', scope: '' };
  }
  let verb = METRIC_VERBS[info.verb] ?? info.verb.toUpperCase();
  if (verb === 'PATCH' && req.headers['content-type']?.split(';')[0]?.trim() === APPLY_PATCH_TYPE) verb = 'APPLY';
  return {
    verb,
    group: info.group ?? '',
    resource: info.resource ?? '',
    subresource: info.subresource ?? '',
    scope: info.scope ?? '',
  };
}

/**
 * `ContainerStatsCollector`: per-container CPU, memory and pids of this node as
 * Prometheus metrics with cAdvisor's names, read from the runtime at scrape time.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ContainerStats, RuntimeContainer, RuntimeService } from '../../runtime/cri/index.ts';
import { silentLogger, type Logger } from '../framework/index.ts';

/** Runtime labels the node agent puts on each runtime container to name its Container object. */
export const RUNTIME_LABEL_NAMESPACE = 'berth.dev/namespace';
export const RUNTIME_LABEL_NAME = 'berth.dev/name';

/** Metric names, as cAdvisor exports them. */
export const CONTAINER_METRICS = [
  'container_cpu_usage_seconds_total',
  'container_memory_usage_bytes',
  'container_memory_working_set_bytes',
  'container_spec_memory_limit_bytes',
  'container_processes',
] as const;

export interface ContainerStatsCollectorOptions {
  readonly runtime: Pick<RuntimeService, 'listContainers' | 'containerStats'>;
  readonly registry: Registry;
  /** A scrape reuses stats read less than this long ago (a read in flight is always shared). Default 1 s. */
  readonly maxAgeMs?: number;
  /** Stats calls in flight at once. Default 8. */
  readonly concurrency?: number;
  readonly log?: Logger;
}

interface Sample {
  readonly labels: { readonly namespace: string; readonly name: string; readonly id: string };
  readonly stats: ContainerStats;
}

const LABELS = ['namespace', 'name', 'id'] as const;

/**
 * Registers the five metrics in `registry`; each scrape lists the running and paused
 * containers and reads their stats once (shared by the five metrics, and by scrapes
 * less than `maxAgeMs` apart). Labels: `namespace` and `name` of the Container object
 * (from the runtime labels `berth.dev/namespace` and `berth.dev/name`; a container
 * without them has namespace "" and its runtime name), and `id`, the runtime ID.
 * A container that goes away mid-scrape is left out; a scrape never fails because of
 * one container. `container_spec_memory_limit_bytes` is 0 without a limit, as in cAdvisor.
 */
export class ContainerStatsCollector {
  private snapshot: { atMs: number; samples: Promise<Sample[]>; settled: boolean } | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: ContainerStatsCollectorOptions) {
    this.log = opts.log ?? silentLogger;
    const self = this;
    const registers = [opts.registry];
    new Counter({
      name: 'container_cpu_usage_seconds_total',
      help: 'Cumulative cpu time consumed by the container in seconds.',
      labelNames: LABELS,
      registers,
      async collect() {
        this.reset();
        for (const s of await self.samples()) this.inc(s.labels, s.stats.cpuUsageSecondsTotal);
      },
    });
    const gauge = (name: string, help: string, value: (s: ContainerStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: LABELS,
        registers,
        async collect() {
          this.reset();
          for (const s of await self.samples()) this.set(s.labels, value(s.stats));
        },
      });
    gauge('container_memory_usage_bytes', 'Current memory usage in bytes, including all memory regardless of when it was accessed.', (s) => s.memoryUsageBytes);
    gauge('container_memory_working_set_bytes', 'Current working set in bytes.', (s) => s.memoryWorkingSetBytes);
    gauge('container_spec_memory_limit_bytes', 'Memory limit for the container in bytes; 0 when unlimited.', (s) => s.memoryLimitBytes ?? 0);
    gauge('container_processes', 'Number of processes running inside the container.', (s) => s.pids);
  }

  /** The stats of every running or paused container: one read in flight at a time, reused for `maxAgeMs`. */
  samples(): Promise<Sample[]> {
    const now = Date.now();
    const s = this.snapshot;
    if (s && (!s.settled || now - s.atMs < (this.opts.maxAgeMs ?? 1_000))) return s.samples;
    const next = { atMs: now, samples: this.read(), settled: false };
    void next.samples.finally(() => (next.settled = true));
    this.snapshot = next;
    return next.samples;
  }

  private async read(): Promise<Sample[]> {
    let list: RuntimeContainer[];
    try {
      list = await this.opts.runtime.listContainers();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'cannot list containers for stats');
      return [];
    }
    const live = list.filter((c) => c.state === 'running' || c.state === 'paused');
    const out: Sample[] = [];
    const limit = this.opts.concurrency ?? 8;
    for (let i = 0; i < live.length; i += limit) {
      const batch = await Promise.all(
        live.slice(i, i + limit).map(async (c) => {
          try {
            const stats = await this.opts.runtime.containerStats(c.id);
            const namespace = c.labels[RUNTIME_LABEL_NAMESPACE] ?? '';
            const name = c.labels[RUNTIME_LABEL_NAME] ?? c.name;
            return { labels: { namespace, name, id: c.id }, stats };
          } catch {
            return undefined; // exited or removed since the list
          }
        }),
      );
      for (const s of batch) if (s) out.push(s);
    }
    return out;
  }
}

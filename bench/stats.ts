/**
 * Small statistics and load-shape helpers shared by the benchmarks.
 */

/** Latency percentiles in milliseconds, rounded to microseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Nearest-rank percentile (`p` in [0, 100]) of an ascending array; NaN when empty. */
export function percentile(sortedAscending: ArrayLike<number>, p: number): number {
  const n = sortedAscending.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sortedAscending[rank - 1]!;
}

/** Summarises latencies in milliseconds; the input is not modified. */
export function summarize(latenciesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    count: sorted.length,
    meanMs: round3(sum / Math.max(1, sorted.length)),
    p50Ms: round3(percentile(sorted, 50)),
    p90Ms: round3(percentile(sorted, 90)),
    p99Ms: round3(percentile(sorted, 99)),
    maxMs: round3(sorted.length ? sorted[sorted.length - 1]! : Number.NaN),
  };
}

/** Median of a few numbers. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface ClosedLoopOptions {
  /** Concurrent clients; each has at most one operation in flight. */
  readonly clients: number;
  /** Operations in total, shared among the clients. */
  readonly total: number;
  /** Performs operation `index` (0 ≤ index < total); a rejection aborts the run. */
  readonly op: (index: number) => Promise<void>;
}

export interface ClosedLoopResult {
  readonly seconds: number;
  readonly opsPerSecond: number;
  /** Per-operation latency, in operation order. */
  readonly latenciesMs: Float64Array;
}

/**
 * Runs `total` operations with `clients` concurrent closed-loop clients: each client
 * starts its next operation as soon as its previous one finished. Rejects with the
 * first operation error (the other clients stop taking new work).
 */
export async function closedLoop(opts: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latenciesMs = new Float64Array(opts.total);
  let next = 0;
  let failed = false;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      while (!failed && next < opts.total) {
        const i = next++;
        const t0 = performance.now();
        try {
          await opts.op(i);
        } catch (err) {
          failed = true;
          throw err;
        }
        latenciesMs[i] = performance.now() - t0;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { seconds, opsPerSecond: opts.total / seconds, latenciesMs };
}

/** Wall-clock time in milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const nowAbsMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a benchmark is to the runner (`run.ts`), and the context it runs in.
 */
import path from 'node:path';
import { ApiClient } from './api-client.ts';
import { makeTempDir } from './cleanup.ts';
import { readMachineBusySeconds, readProcessCpuSeconds } from './proc.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

/** One line of the results table. */
export interface ResultRow {
  readonly metric: string;
  /** Already formatted with its unit, e.g. `1,234 /s` or `0.81 ms`. */
  readonly value: string;
  /** The target from issue 2, formatted, if there is one. */
  readonly target?: string;
  /** Whether `value` meets `target`; absent when there is no target. */
  readonly met?: boolean;
}

export interface BenchmarkResult {
  /** Printed as one JSON line; numbers in the units their names say. */
  readonly summary: Record<string, unknown>;
  readonly rows: readonly ResultRow[];
}

export interface BenchContext {
  /** Multiplies every operation count (1 = the sizes documented in README.md). */
  readonly scale: number;
  /** Directory for server CPU profiles, when `--profile` was given. */
  readonly profileDir?: string;
  /** Progress messages (stderr). */
  log(message: string): void;
}

/** A benchmark: starts what it needs, measures, stops everything it started. */
export interface Benchmark {
  /** Short name used on the command line, e.g. `creates`. */
  readonly name: string;
  readonly title: string;
  /** The runner gives up on the benchmark after this long. */
  readonly budgetMs: number;
  run(ctx: BenchContext): Promise<BenchmarkResult>;
}

/** `count × scale`, at least 1, rounded. */
export const scaled = (ctx: BenchContext, count: number): number => Math.max(1, Math.round(count * ctx.scale));

/**
 * Runs `fn` against a fresh berth server child on a new temporary data directory.
 * The server is stopped (writing its CPU profile with `--profile`) and the directory
 * removed afterwards, also when `fn` throws. `profileName` names the profile directory.
 */
export async function withServer<T>(
  ctx: BenchContext,
  profileName: string,
  fn: (server: ServerProcess, client: ApiClient) => Promise<T>,
): Promise<T> {
  const dir = makeTempDir('berth-bench-');
  try {
    const server = await startServerProcess({
      dataDir: dir.path,
      ...(ctx.profileDir ? { cpuProfDir: path.join(ctx.profileDir, profileName) } : {}),
    });
    const client = new ApiClient(server);
    try {
      return await fn(server, client);
    } finally {
      client.close();
      await server.stop();
    }
  } finally {
    dir.remove();
  }
}

/** `1234.5` → `1,235`. */
export const fmtInt = (x: number): string => Math.round(x).toLocaleString('en-US');
/** Milliseconds with two decimals. */
export const fmtMs = (ms: number): string => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
/** Bytes as MB (10^6) with one decimal. */
export const fmtMB = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
/** Bytes → MB, one decimal, as a number for JSON summaries. */
export const toMB = (bytes: number): number => Math.round(bytes / 1e5) / 10;

/** CPU used during a phase, in percent of one core (200% = both cores of this machine). */
export interface CpuShare {
  readonly serverPercent: number;
  readonly loadGeneratorPercent: number;
  /**
   * Everything else on the machine meanwhile (other processes, the kernel's share not
   * charged to these two). Well above a few percent means the numbers were disturbed.
   */
  readonly otherPercent: number;
}

/** Measures CPU shares from now until `done()` is called. */
export function cpuMeter(serverPid: number): { done(): CpuShare } {
  const s0 = readProcessCpuSeconds(serverPid);
  const c0 = process.cpuUsage();
  const m0 = readMachineBusySeconds();
  const t0 = performance.now();
  return {
    done: () => {
      const wallSeconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const server = readProcessCpuSeconds(serverPid) - s0;
      const self = (c.user + c.system) / 1e6;
      const pct = (seconds: number) => Math.round((seconds / wallSeconds) * 100);
      return { serverPercent: pct(server), loadGeneratorPercent: pct(self), otherPercent: Math.max(0, pct(readMachineBusySeconds() - m0 - server - self)) };
    },
  };
}

/**
 * Runs `fn` and measures the CPU the server child and this process (the load
 * generator) used meanwhile; a server near 100% is saturated on its single event loop.
 */
export async function withCpu<T>(server: ServerProcess, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuShare }> {
  const meter = cpuMeter(server.pid);
  const value = await fn();
  return { value, cpu: meter.done() };
}

/** Other load above which a measurement is flagged as disturbed in the table. */
export const DISTURBED_OTHER_PERCENT = 25;

/** A note for the metric column when other processes used much CPU during the phase, else ''. */
export const loadNote = (cpu: CpuShare | undefined): string =>
  cpu && cpu.otherPercent > DISTURBED_OTHER_PERCENT ? `; ⚠ disturbed: other processes used ${cpu.otherPercent}% CPU` : '';

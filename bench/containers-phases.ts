/**
 * Where the time of one apply → Running goes, from the server's own log (`--log-level
 * debug`: the access log of every request, the scheduler's `bound container` and the
 * runtime's `container created`, all with millisecond times) and the benchmark's
 * watch. The server and the benchmark read the same clock, so their times compare.
 * Runs must not overlap: runtime lines carry only the container ID and are matched by time.
 */
import fs from 'node:fs';
import { median } from './stats.ts';

/** One measured apply → Running. */
export interface RunTimes {
  readonly name: string;
  /** Absolute ms when the POST was sent. */
  readonly postSentAbsMs: number;
  /** Absolute ms when the watch event with `phase: Running` was read. */
  readonly runningSeenAbsMs: number;
}

/** Phases of one apply → Running, in order, milliseconds; they add up to the whole. */
export interface Phases {
  /** POST sent → create committed and answered (server's access log). */
  readonly apiCreate: number;
  /** → the scheduler's bind (PATCH of spec.nodeName) answered: watch to the scheduler, queue, fit, status write, bind. */
  readonly schedulerBind: number;
  /** → the runtime has created the container: watch to the agent, queue, reconcile, image check, bundle, conmon + `runc create`. */
  readonly agentCreate: number;
  /** → the agent's status write arrives: `runc start`, status read, status built. */
  readonly runtimeStart: number;
  /** → the status write answered. */
  readonly statusWrite: number;
  /** → the benchmark's watch read the `Running` event. */
  readonly watchDelivery: number;
}

export const PHASE_NAMES: readonly (keyof Phases)[] = [
  'apiCreate', 'schedulerBind', 'agentCreate', 'runtimeStart', 'statusWrite', 'watchDelivery',
];

interface LogLine {
  readonly atMs: number;
  readonly msg?: string;
  readonly method?: string;
  readonly path?: string;
  readonly code?: number;
  readonly durationMs?: number;
  readonly key?: string;
  readonly component?: string;
}

function readLog(logPath: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of fs.readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Omit<LogLine, 'atMs'> & { time?: string };
      if (o.time) out.push({ ...o, atMs: Date.parse(o.time) });
    } catch {
      // a partial last line
    }
  }
  return out;
}

/** The phases of each run that the log covers; runs whose lines are missing are left out. */
export function phasesFromLog(logPath: string, runs: readonly RunTimes[]): Phases[] {
  const log = readLog(logPath);
  const out: Phases[] = [];
  for (const run of runs) {
    const objectPath = `/apis/berth.dev/v1/namespaces/default/containers/${run.name}`;
    // pino times are whole milliseconds: widen the window by 1 ms each side
    const within = (l: LogLine) => l.atMs >= run.postSentAbsMs - 1 && l.atMs <= run.runningSeenAbsMs + 1;
    const lines = log.filter(within);
    const arrival = (l: LogLine) => l.atMs - (l.durationMs ?? 0);
    const create = lines.find((l) => l.msg === 'request' && l.method === 'POST' && l.path === '/apis/berth.dev/v1/namespaces/default/containers' && l.code === 201);
    // The scheduler writes the Scheduled condition, then binds (a PATCH of spec.nodeName that
    // also adds the agent's finalizer); the agent then creates and starts the container and
    // writes its status once.
    const bind = lines.find((l) => l.msg === 'request' && l.method === 'PATCH' && l.path === objectPath && l.code === 200);
    const created = lines.find((l) => l.msg === 'container created' && bind && l.atMs >= bind.atMs - 1);
    const statusWrites = lines.filter((l) => l.msg === 'request' && l.method === 'PUT' && l.path === `${objectPath}/status` && l.code === 200);
    const runningWrite = statusWrites.at(-1);
    if (!create || !bind || !created || !runningWrite || runningWrite.atMs < created.atMs) continue;
    const points = [run.postSentAbsMs, create.atMs, bind.atMs, created.atMs, arrival(runningWrite), runningWrite.atMs, run.runningSeenAbsMs];
    const d = (i: number) => Math.max(0, points[i + 1]! - points[i]!);
    out.push({ apiCreate: d(0), schedulerBind: d(1), agentCreate: d(2), runtimeStart: d(3), statusWrite: d(4), watchDelivery: d(5) });
  }
  return out;
}

/** Median of each phase over the runs, rounded to 0.1 ms. */
export function medianPhases(phases: readonly Phases[]): Record<keyof Phases, number> {
  return Object.fromEntries(PHASE_NAMES.map((k) => [k, Math.round(median(phases.map((p) => p[k])) * 10) / 10])) as Record<keyof Phases, number>;
}

/** How many of the runs had at least one agent write rejected (500/409) before it succeeded. */
export function conflictedRuns(logPath: string, runs: readonly RunTimes[]): number {
  const log = readLog(logPath);
  return runs.filter((run) => {
    const objectPath = `/apis/berth.dev/v1/namespaces/default/containers/${run.name}`;
    return log.some((l) => l.atMs >= run.postSentAbsMs - 1 && l.atMs <= run.runningSeenAbsMs + 1 && l.msg === 'request' && l.path?.startsWith(objectPath) && (l.code === 409 || l.code === 422 || l.code === 500));
  }).length;
}

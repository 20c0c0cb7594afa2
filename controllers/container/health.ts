/**
 * `HealthProber`: Docker's HEALTHCHECK on the node agent. For each running container
 * with a healthcheck (`spec.healthcheck`, else the image's), a check runs every
 * interval through the runtime's `execSync`; `retries` consecutive failures make it
 * `Unhealthy`, a success `Healthy`; failures during the start period do not count.
 * When the reported status changes, `onChange` asks for a reconcile, which writes
 * `status.health` and the `Ready` condition.
 */
import type { ContainerStatus as ApiContainerStatus, HealthStatus } from '../../api/types/index.ts';
import type { ContainerId, ImageConfig, RuntimeService } from '../../runtime/cri/index.ts';
import { realClock, setCondition, type Clock, type Container } from '../framework/index.ts';

/** A healthcheck in milliseconds, from the Container's spec or its image's config. */
export interface HealthSpec {
  readonly exec: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

const MAX_OUTPUT = 4096;
const DEFAULT_MS = 30_000;

/**
 * The healthcheck that applies to `c`: its `spec.healthcheck`, else the image's HEALTHCHECK
 * (`CMD` runs as is, `CMD-SHELL` through `/bin/sh -c`); undefined when there is none.
 */
export function healthSpecOf(c: Container, image: ImageConfig | undefined): HealthSpec | undefined {
  const h = c.spec.healthcheck;
  if (h) {
    return {
      exec: [...h.exec],
      intervalMs: (h.intervalSeconds ?? 30) * 1000,
      timeoutMs: (h.timeoutSeconds ?? 30) * 1000,
      retries: h.retries ?? 3,
      startPeriodMs: (h.startPeriodSeconds ?? 0) * 1000,
    };
  }
  const i = image?.healthcheck;
  if (!i || i.test.length < 2) return undefined;
  const exec = i.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', i.test.slice(1).join(' ')] : i.test[0] === 'CMD' ? i.test.slice(1) : undefined;
  if (!exec?.length) return undefined;
  const ms = (ns: number | undefined, d: number) => (ns ? Math.max(1, Math.round(ns / 1e6)) : d);
  return { exec, intervalMs: ms(i.intervalNs, DEFAULT_MS), timeoutMs: ms(i.timeoutNs, DEFAULT_MS), retries: i.retries ?? 3, startPeriodMs: ms(i.startPeriodNs, 0) };
}

export interface HealthProberDeps {
  readonly runtime: Pick<RuntimeService, 'execSync'>;
  /** Called with the probe's key when its reported status changes. */
  readonly onChange: (key: string) => void;
  readonly clock?: Clock;
}

interface Probe {
  readonly containerId: ContainerId;
  readonly specKey: string;
  readonly spec: HealthSpec;
  readonly startedAtMs: number;
  health: HealthStatus;
  timer: ReturnType<typeof setTimeout> | undefined;
  stopped: boolean;
}

/** See the module comment. One probe per key (`namespace/name`). */
export class HealthProber {
  private readonly probes = new Map<string, Probe>();
  private readonly clock: Clock;

  constructor(private readonly deps: HealthProberDeps) {
    this.clock = deps.clock ?? realClock;
  }

  /**
   * Makes sure `key` is probed for `containerId` with `spec` (a new container or a new
   * spec starts over as `Starting`); resolves with the status to report.
   */
  ensure(key: string, containerId: ContainerId, spec: HealthSpec): HealthStatus {
    const specKey = JSON.stringify(spec);
    const have = this.probes.get(key);
    if (have && have.containerId === containerId && have.specKey === specKey) return have.health;
    this.stop(key);
    const probe: Probe = { containerId, specKey, spec, startedAtMs: this.clock.nowMs(), health: { status: 'Starting', failingStreak: 0 }, timer: undefined, stopped: false };
    this.probes.set(key, probe);
    this.schedule(key, probe);
    return probe.health;
  }

  /** Stops probing `key` (the container stopped or went). */
  stop(key: string): void {
    const p = this.probes.get(key);
    if (!p) return;
    p.stopped = true;
    if (p.timer) clearTimeout(p.timer);
    this.probes.delete(key);
  }

  /** Stops every probe. */
  stopAll(): void {
    for (const key of [...this.probes.keys()]) this.stop(key);
  }

  private schedule(key: string, p: Probe): void {
    if (p.stopped) return;
    p.timer = setTimeout(() => void this.check(key, p), p.spec.intervalMs);
    p.timer.unref?.();
  }

  private async check(key: string, p: Probe): Promise<void> {
    let ok = false;
    let output = '';
    try {
      const r = await this.deps.runtime.execSync(p.containerId, p.spec.exec, Math.max(1, Math.ceil(p.spec.timeoutMs / 1000)));
      ok = r.exitCode === 0;
      output = `${r.stdout.toString()}${r.stderr.toString()}`;
    } catch (err) {
      output = (err as Error).message;
    }
    if (p.stopped) return;
    const now = this.clock.nowMs();
    const inStartPeriod = now - p.startedAtMs < p.spec.startPeriodMs;
    const before = p.health.status;
    const failingStreak = ok ? 0 : inStartPeriod ? (p.health.failingStreak ?? 0) : (p.health.failingStreak ?? 0) + 1;
    const status = ok ? 'Healthy' : failingStreak >= p.spec.retries ? 'Unhealthy' : before;
    p.health = {
      status,
      failingStreak,
      lastProbeTime: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      lastOutput: output.length > MAX_OUTPUT ? output.slice(0, MAX_OUTPUT) : output,
    };
    if (status !== before) this.deps.onChange(key);
    this.schedule(key, p);
  }
}

/**
 * `status` with `health` (removed when undefined); a running container whose healthcheck
 * has not passed (`Starting`) or fails (`Unhealthy`) is not `Ready`, as in Docker and
 * Kubernetes readiness. Never mutates its input.
 */
export function withHealthStatus(status: ApiContainerStatus, health: HealthStatus | undefined, observedGeneration: number, nowMs: number): ApiContainerStatus {
  const { health: _old, ...rest } = status;
  if (!health) return rest;
  let conditions = status.conditions;
  if (status.phase === 'Running' && health.status !== 'Healthy') {
    const reason = health.status === 'Unhealthy' ? 'Unhealthy' : 'HealthcheckStarting';
    const message = health.status === 'Unhealthy'
      ? `the healthcheck failed ${health.failingStreak ?? 0} times in a row${health.lastOutput ? `: ${health.lastOutput.trim().slice(0, 200)}` : ''}`
      : 'the container runs; its healthcheck has not passed yet';
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason, message, observedGeneration }, nowMs);
  }
  return { ...rest, health, ...(conditions ? { conditions } : {}) };
}

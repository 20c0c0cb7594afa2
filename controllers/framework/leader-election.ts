/**
 * Leader election on a `coordination.k8s.io/v1` Lease, after client-go's
 * `leaderelection` package, so that of several controller processes only one acts.
 */
import type { ApiClient } from './client.ts';
import { isAlreadyExists, isConflict, isNotFound } from './api-status-error.ts';
import { realClock, sleep, type Clock } from './clock.ts';
import { errorInfo } from './informer.ts';
import { silentLogger, type Logger } from './logger.ts';
import { Lease } from './resource-kind.ts';

export interface LeaderElectionOptions {
  /** This candidate's unique name (e.g. hostname + random suffix). */
  readonly identity: string;
  /** The Lease's name, shared by all candidates of one set of controllers. */
  readonly leaseName: string;
  /** Default `berth-system`. */
  readonly namespace?: string;
  /** How long others wait after the last renewal they saw before taking over. Default 15 s. */
  readonly leaseDurationSeconds?: number;
  /** The leader steps down when it has not renewed for this long. Default 10 s; must be below the lease duration. */
  readonly renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. Default 2 s. */
  readonly retryPeriodMs?: number;
  /** On a clean stop, clear `holderIdentity` so another candidate takes over at once. Default true. */
  readonly releaseOnCancel?: boolean;
}

export interface LeaderElectorDeps {
  readonly client: ApiClient;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Called on becoming leader; leading starts when it resolves. */
  readonly onStartedLeading: () => Promise<void>;
  /** Called on losing or giving up the lease; the lease is released only after it resolves. */
  readonly onStoppedLeading: () => Promise<void>;
}

/** A Lease timestamp: RFC 3339 with microseconds (metav1.MicroTime). */
const microTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, '000Z');

/**
 * One candidate. `run` campaigns until `signal` aborts: acquire the lease (free,
 * released, or not renewed for `leaseDurationSeconds` as observed on this process's
 * clock), then renew it every `retryPeriodMs`. It stops leading — `onStoppedLeading`,
 * awaited — when a renewal has not succeeded for `renewDeadlineMs` or another holder
 * shows up, and then campaigns again. Leadership is never claimed before
 * `onStoppedLeading` of the previous term has resolved.
 */
export class LeaderElector {
  private readonly namespace: string;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private leading = false;
  private observedSpec = '';
  private observedAtMs = 0;
  private observedHolder: string | undefined;

  constructor(
    private readonly opts: LeaderElectionOptions,
    private readonly deps: LeaderElectorDeps,
  ) {
    this.namespace = opts.namespace ?? 'berth-system';
    this.leaseDurationSeconds = opts.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationSeconds * 1000)
      throw new RangeError(`renewDeadlineMs (${this.renewDeadlineMs}) must be below leaseDurationSeconds (${this.leaseDurationSeconds} s)`);
    this.clock = deps.clock ?? realClock;
    this.log = (deps.log ?? silentLogger).child({ lease: `${this.namespace}/${opts.leaseName}`, identity: opts.identity });
  }

  /** True while this candidate holds the lease and its leading callbacks run. */
  isLeader(): boolean {
    return this.leading;
  }

  /** The holder seen on the last read of the lease. */
  observedLeader(): string | undefined {
    return this.observedHolder;
  }

  /** Campaigns and leads until `signal` aborts; resolves after stepping down (and releasing). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      this.leading = true;
      this.log.info({}, 'became leader');
      let lost = false;
      try {
        await this.deps.onStartedLeading();
        lost = await this.renewUntilLost(signal);
      } finally {
        this.log.info({ lost }, 'stopping leading');
        try {
          await this.deps.onStoppedLeading();
        } finally {
          this.leading = false;
        }
      }
      if (!lost) {
        if (this.opts.releaseOnCancel ?? true) await this.release();
        break;
      }
    }
  }

  /** Tries until acquired (true) or aborted (false). */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      try {
        if (await this.tryAcquireOrRenew(signal)) return true;
        this.log.debug({ holder: this.observedHolder }, 'lease held by another candidate');
      } catch (err) {
        if (signal.aborted) return false;
        this.log.warn({ err: errorInfo(err) }, 'could not acquire lease');
      }
      await sleep(this.clock, this.retryPeriodMs * (1 + 0.2 * Math.random()), signal);
    }
    return false;
  }

  /** Renews every retry period; resolves true when leadership was lost, false when aborted. */
  private async renewUntilLost(signal: AbortSignal): Promise<boolean> {
    let lastRenewMs = this.clock.nowMs();
    while (!signal.aborted) {
      await sleep(this.clock, this.retryPeriodMs, signal);
      if (signal.aborted) return false;
      const remainingMs = Math.max(1, this.renewDeadlineMs - (this.clock.nowMs() - lastRenewMs));
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(remainingMs)]));
      } catch (err) {
        if (signal.aborted) return false;
        this.log.warn({ err: errorInfo(err) }, 'could not renew lease');
      }
      if (ok) {
        lastRenewMs = this.clock.nowMs();
        continue;
      }
      if (this.observedHolder && this.observedHolder !== this.opts.identity) {
        this.log.warn({ holder: this.observedHolder }, 'lease taken by another candidate');
        return true;
      }
      if (this.clock.nowMs() - lastRenewMs >= this.renewDeadlineMs) {
        this.log.warn({ renewDeadlineMs: this.renewDeadlineMs }, 'failed to renew lease within the renew deadline');
        return true;
      }
    }
    return false;
  }

  /** One attempt: create, take over an expired or released lease, or renew ours. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client } = this.deps;
    const { identity, leaseName } = this.opts;
    const now = this.clock.nowMs();
    let lease: Lease | undefined;
    try {
      lease = await client.get(Lease, this.namespace, leaseName, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!lease) {
      try {
        const created = await client.create<Lease>(
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: leaseName, namespace: this.namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
          { signal },
        );
        this.observe(created, now);
        return true;
      } catch (err) {
        if (isAlreadyExists(err)) return false;
        throw err;
      }
    }
    this.observe(lease, now);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    if (holder && holder !== identity && this.observedAtMs + durationMs > now) return false;
    const mine = holder === identity;
    try {
      const updated = await client.update<Lease>(
        {
          ...lease,
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: this.leaseDurationSeconds,
            acquireTime: mine ? (spec.acquireTime ?? microTime(now)) : microTime(now),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
          },
        },
        { signal },
      );
      this.observe(updated, now);
      if (!mine) this.log.info({ previousHolder: holder ?? null }, 'took over lease');
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Clears holderIdentity if we still hold the lease, so the next candidate need not wait. */
  private async release(): Promise<void> {
    try {
      const lease = await this.deps.client.get(Lease, this.namespace, this.opts.leaseName, { signal: AbortSignal.timeout(5_000) });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = microTime(this.clock.nowMs());
      await this.deps.client.update<Lease>(
        { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } },
        { signal: AbortSignal.timeout(5_000) },
      );
      this.log.info({}, 'released lease');
    } catch (err) {
      this.log.warn({ err: errorInfo(err) }, 'could not release lease; others take over when it expires');
    }
  }

  /** Notes when the lease record last changed, on our clock (client-go's observedTime). */
  private observe(lease: Lease, now: number): void {
    const raw = JSON.stringify(lease.spec ?? {});
    if (raw !== this.observedSpec) {
      this.observedSpec = raw;
      this.observedAtMs = now;
    }
    this.observedHolder = lease.spec?.holderIdentity || undefined;
  }
}

/**
 * `Manager`: runs a set of controllers in one process over shared informers, with
 * optional leader election (controller-runtime's manager).
 */
import type { Registry } from 'prom-client';
import type { KubeObject } from '../../api/types/index.ts';
import type { BackoffOptions } from './backoff.ts';
import { sameKind, type ControllerSpec, type WatchSelectors } from './builder.ts';
import type { ApiClient } from './client.ts';
import { realClock, type Clock } from './clock.ts';
import { Controller } from './controller.ts';
import { errorInfo, SharedInformer } from './informer.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.ts';
import type { Lister } from './lister.ts';
import { silentLogger, type Logger } from './logger.ts';
import { ControllerMetrics } from './metrics.ts';
import { resourceName, type ResourceKind } from './resource-kind.ts';

export interface ManagerOptions {
  /** The client controllers write through; its write tracker drives read-your-writes. */
  readonly client: ApiClient;
  /** Where all framework metrics are registered. */
  readonly registry: Registry;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** When set, controllers run only while this process holds the Lease. */
  readonly leaderElection?: LeaderElectionOptions;
  /** Informers' retry back-off. Default 200 ms doubling to 30 s. */
  readonly informerBackoff?: BackoffOptions;
  /** Informers' watch length hint. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** `start` rejects if the informers have not synced by then. Default 120 s. */
  readonly syncTimeoutMs?: number;
  /**
   * The longest a key waits for the cache to show this process's last write to it
   * before it is reconciled again. Default 2 s; 0 turns the wait off.
   */
  readonly ownWriteWaitMs?: number;
}

/**
 * Something the manager runs besides the controllers it builds (controller-runtime's
 * `Runnable`): started once the informers have synced, stopped (and awaited) first on `stop`.
 */
export interface Runnable {
  start(): void;
  stop(): Promise<void>;
  /** Run only while this manager leads (default false: per-node work such as an agent's). */
  readonly needLeaderElection?: boolean;
}

/**
 * Owns the informers (one per kind, namespace and selectors, shared by every
 * controller and lister asking for the same), starts them and waits for them to sync,
 * then runs the controllers — at once, or while it leads. `stop` drains the
 * controllers (running reconciles finish), releases the lease, then stops the
 * informers. A manager runs once.
 */
export class Manager {
  readonly metrics: ControllerMetrics;
  private readonly informers = new Map<string, SharedInformer<KubeObject>>();
  private readonly specs: ControllerSpec[] = [];
  private readonly runnables: Runnable[] = [];
  private readonly startedRunnables = new Set<Runnable>();
  private readonly running = new Map<ControllerSpec, Controller>();
  private readonly stopper = new AbortController();
  private readonly log: Logger;
  private readonly clock: Clock;
  private elector: LeaderElector | undefined;
  private electing: Promise<void> | undefined;
  private started = false;
  private leading = false;
  private transition: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ManagerOptions) {
    this.metrics = new ControllerMetrics(opts.registry);
    this.log = opts.log ?? silentLogger;
    this.clock = opts.clock ?? realClock;
  }

  /** The shared informer for `kind` with these selectors, created (and started, if the manager runs) on first use. */
  informer<T extends KubeObject>(kind: ResourceKind<T>, selectors: WatchSelectors = {}): SharedInformer<T> {
    const key = [resourceName(kind), selectors.namespace ?? '', selectors.fieldSelector ?? '', selectors.labelSelector ?? ''].join('|');
    let informer = this.informers.get(key) as SharedInformer<T> | undefined;
    if (!informer) {
      informer = new SharedInformer<T>({
        client: this.opts.client,
        kind,
        ...selectors,
        log: this.log,
        metrics: this.metrics,
        clock: this.clock,
        ...(this.opts.informerBackoff ? { backoff: this.opts.informerBackoff } : {}),
        ...(this.opts.watchTimeoutSeconds ? { watchTimeoutSeconds: this.opts.watchTimeoutSeconds } : {}),
      });
      this.informers.set(key, informer as unknown as SharedInformer<KubeObject>);
      if (this.started) informer.start();
    }
    return informer;
  }

  /** Reads `kind` from the shared cache with these selectors (use the same selectors as the controller's watch). */
  lister<T extends KubeObject>(kind: ResourceKind<T>, selectors: WatchSelectors = {}): Lister<T> {
    return this.informer(kind, selectors);
  }

  /** Adds a controller. Its informers are created now; it runs once the manager runs (and leads). */
  add(spec: ControllerSpec): this {
    if (this.specs.some((s) => s.name === spec.name)) throw new Error(`controller ${JSON.stringify(spec.name)} already added`);
    for (const w of spec.watches) this.informer(w.kind, w.selectors);
    this.specs.push(spec);
    if (this.leading) this.transition = this.transition.then(() => this.startController(spec));
    return this;
  }

  /**
   * Adds a runnable. It starts once the informers have synced (and, with
   * `needLeaderElection`, while this manager leads); `stop` stops it before the controllers.
   */
  addRunnable(r: Runnable): this {
    this.runnables.push(r);
    if (this.started && (!r.needLeaderElection || this.leading)) {
      void Promise.all([...this.informers.values()].map((i) => i.waitForSync(this.stopper.signal))).then((synced) => {
        if (synced.every(Boolean)) this.startRunnable(r);
      });
    }
    return this;
  }

  private startRunnable(r: Runnable): void {
    if (this.startedRunnables.has(r) || this.stopper.signal.aborted) return;
    this.startedRunnables.add(r);
    r.start();
  }

  /**
   * Starts the informers, waits until they have synced, then starts the controllers
   * (or the leader election that starts them). Rejects if syncing takes longer than
   * `syncTimeoutMs`; the manager must still be stopped then.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('manager already started');
    this.started = true;
    for (const i of this.informers.values()) i.start();
    const timeout = AbortSignal.timeout(this.opts.syncTimeoutMs ?? 120_000);
    const signal = AbortSignal.any([timeout, this.stopper.signal]);
    const synced = await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
    if (!synced.every(Boolean)) {
      if (this.stopper.signal.aborted) return;
      const pending = [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => resourceName(i.kind));
      throw new Error(`informers did not sync within ${this.opts.syncTimeoutMs ?? 120_000} ms: ${pending.join(', ')}`);
    }
    for (const r of this.runnables) if (!r.needLeaderElection) this.startRunnable(r);
    if (!this.opts.leaderElection) {
      this.leading = true;
      await (this.transition = this.transition.then(() => this.startControllers()));
      return;
    }
    this.elector = new LeaderElector(this.opts.leaderElection, {
      client: this.opts.client,
      clock: this.clock,
      log: this.log,
      onStartedLeading: () => (this.transition = this.transition.then(() => this.startControllers())),
      onStoppedLeading: () => (this.transition = this.transition.then(() => this.stopControllers())),
    });
    this.electing = this.elector.run(this.stopper.signal).catch((err: unknown) => {
      this.log.error({ err: errorInfo(err) }, 'leader election failed; controllers stopped');
    });
  }

  /**
   * True from just before the controllers start until they have stopped and drained:
   * always after start without leader election, else while leading.
   */
  isLeader(): boolean {
    return this.leading;
  }

  /** Stops controllers (draining in-flight reconciles), releases the lease, stops informers. Idempotent. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.all([...this.startedRunnables].map((r) => r.stop()));
    await this.electing;
    await (this.transition = this.transition.then(() => this.stopControllers()));
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  private async startControllers(): Promise<void> {
    this.leading = true;
    for (const r of this.runnables) if (r.needLeaderElection) this.startRunnable(r);
    for (const spec of this.specs) await this.startController(spec);
  }

  private async startController(spec: ControllerSpec): Promise<void> {
    if (this.running.has(spec) || this.stopper.signal.aborted) return;
    const informers = spec.watches.map((w) => ({ w, informer: this.informer(w.kind, w.selectors) }));
    await Promise.all(informers.map(({ informer }) => informer.waitForSync(this.stopper.signal)));
    const waitMs = this.opts.ownWriteWaitMs ?? 2_000;
    const controller = new Controller({
      name: spec.name,
      reconciler: spec.reconciler,
      log: this.log,
      metrics: this.metrics,
      clock: this.clock,
      ...(spec.settings.workers ? { workers: spec.settings.workers } : {}),
      ...(spec.settings.reconcileTimeoutMs ? { reconcileTimeoutMs: spec.settings.reconcileTimeoutMs } : {}),
      ...(spec.settings.rateLimiter ? { rateLimiter: spec.settings.rateLimiter } : {}),
      ownWrites: {
        tracker: this.opts.client.writes,
        kind: spec.forKind,
        informers: informers.filter(({ w }) => sameKind(w.kind, spec.forKind)).map(({ informer }) => informer),
        maxWaitMs: waitMs,
      },
    });
    for (const { w, informer } of informers) controller.watch(informer, w.map);
    this.running.set(spec, controller);
    controller.start();
  }

  private async stopControllers(): Promise<void> {
    const controllers = [...this.running.values()];
    this.running.clear();
    await Promise.all(controllers.map((c) => c.stop()));
    this.leading = false;
  }
}

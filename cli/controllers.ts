/**
 * The control-plane controllers (scheduler, node lifecycle) under one leader-elected
 * `Manager`: what `berth controllers` runs alone and `berth server` runs in process.
 * Wiring only; the logic is in `controllers/scheduler` and `controllers/node`.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { EventRecorder, Manager, type ApiClient } from '../controllers/framework/index.ts';
import { addNodeLifecycleController } from '../controllers/node/index.ts';
import { addScheduler } from '../controllers/scheduler/index.ts';

/** Name of the leader-election Lease in `berth-system`. */
export const CONTROLLERS_LEASE_NAME = 'berth-controllers';

export interface ControlPlaneControllersOptions {
  readonly client: ApiClient;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Default true: only the Lease holder runs the controllers. */
  readonly leaderElect?: boolean;
  /** Default `<hostname>_<pid>`. */
  readonly identity?: string;
  /** Time without a heartbeat before a node is marked not ready. Default 40 s. */
  readonly nodeGracePeriodMs?: number;
  /** Default 10 s. */
  readonly unschedulableRetryMs?: number;
}

/** Running control-plane controllers. */
export interface RunningControllers {
  readonly manager: Manager;
  /** Drains the controllers and releases the Lease. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the scheduler and the node lifecycle controller; resolves once their caches have synced. */
export async function startControllers(opts: ControlPlaneControllersOptions): Promise<RunningControllers> {
  const { client, registry } = opts;
  const log = opts.logger.child({ component: 'controllers' });
  const identity = opts.identity ?? `${hostname()}_${process.pid}`;
  const manager = new Manager({
    client,
    registry,
    log,
    ...(opts.leaderElect === false ? {} : { leaderElection: { identity, leaseName: CONTROLLERS_LEASE_NAME } }),
  });
  const events = new EventRecorder({ client, component: 'berth-controllers', host: identity, log });
  addScheduler(manager, { client, events, ...(opts.unschedulableRetryMs !== undefined ? { unschedulableRetryMs: opts.unschedulableRetryMs } : {}) });
  addNodeLifecycleController(manager, { client, events, ...(opts.nodeGracePeriodMs !== undefined ? { gracePeriodMs: opts.nodeGracePeriodMs } : {}) });
  try {
    await manager.start();
  } catch (err) {
    await manager.stop();
    throw err;
  }
  log.info({ identity, leaderElect: opts.leaderElect !== false }, 'control-plane controllers started');
  return { manager, stop: () => manager.stop() };
}

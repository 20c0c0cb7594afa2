/**
 * The node agent: Node registration and heartbeat, the Container and Image
 * controllers of this node, and per-container stats metrics — what `berth agent` runs
 * alone and `berth server` runs in process. Wiring only.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { addContainerController } from '../controllers/container/index.ts';
import { EventRecorder, Manager, type ApiClient } from '../controllers/framework/index.ts';
import { addImageController } from '../controllers/image/index.ts';
import { ContainerStatsCollector, NodeRegistration } from '../controllers/node/index.ts';
import type { ImageService, RuntimeService } from '../runtime/cri/index.ts';
import { ImageStore } from '../runtime/images/index.ts';
import { DEFAULT_CGROUP_PARENT, RuncRuntimeService } from '../runtime/server/index.ts';
import { FakeRuntimeService } from '../runtime/testing/fake-runtime-service.ts';
import { BERTH_VERSION } from './runtime-kind.ts';

export { BERTH_VERSION, defaultRuntimeKind, whyNoRuntime, type RuntimeKind } from './runtime-kind.ts';

/** A node's runtime and image store, opened under a data directory. */
export interface NodeRuntime {
  readonly kind: 'runc' | 'fake';
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  /** Stops watching; containers keep running. */
  close(): Promise<void>;
}

/** Opens `<dataDir>/images` and, for `runc`, the runtime under `<dataDir>/runtime` with cgroups under `/berth`. */
export function openNodeRuntime(kind: 'runc' | 'fake', dataDir: string, logger: Logger): NodeRuntime {
  const images = new ImageStore({ root: join(dataDir, 'images') });
  if (kind === 'fake') {
    return { kind, runtime: new FakeRuntimeService(), images, close: async () => {} };
  }
  const runtime = new RuncRuntimeService({
    root: join(dataDir, 'runtime'),
    rootfs: images,
    cgroupParent: DEFAULT_CGROUP_PARENT,
    logger: logger.child({ component: 'runtime' }),
  });
  return { kind, runtime, images, close: () => runtime.close() };
}

export interface AgentOptions {
  readonly client: ApiClient;
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Default: the hostname. */
  readonly nodeName?: string;
  /** `spec.role` if the agent creates its Node. Default `worker`. */
  readonly role?: 'manager' | 'worker';
  /** Default 10 s. */
  readonly heartbeatIntervalMs?: number;
}

/** A running node agent. */
export interface RunningAgent {
  readonly nodeName: string;
  readonly manager: Manager;
  readonly registration: NodeRegistration;
  /** Drains the controllers, then stops heartbeating. The runtime is the caller's to close. Idempotent. */
  stop(): Promise<void>;
}

/** Registers the node, then starts its controllers; resolves once their caches have synced. */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const { client, runtime, images, registry } = opts;
  const nodeName = opts.nodeName ?? hostname();
  const logger = opts.logger.child({ component: 'agent', node: nodeName });
  const registration = new NodeRegistration(
    { nodeName, role: opts.role ?? 'worker', agentVersion: BERTH_VERSION, ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}) },
    { client, runtime, log: logger },
  );
  const manager = new Manager({ client, registry, log: logger });
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: nodeName, log: logger });
  addContainerController(manager, { client, runtime, images, nodeName, recorder, logger });
  addImageController(manager, { client, images, nodeName, recorder, logger });
  new ContainerStatsCollector({ runtime, registry, log: logger });

  await registration.start();
  try {
    await manager.start();
  } catch (err) {
    await manager.stop();
    await registration.stop();
    throw err;
  }
  logger.info({}, 'node agent started');
  let stopped: Promise<void> | undefined;
  return {
    nodeName,
    manager,
    registration,
    stop: () =>
      (stopped ??= (async () => {
        await manager.stop();
        await registration.stop();
      })()),
  };
}

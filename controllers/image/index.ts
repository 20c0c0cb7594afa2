/**
 * The node agent's Image controller: `addImageController` wires `ImageReconciler` to a
 * manager; the reconciler is exported for tests and custom wiring.
 */
import type { KubeObject } from '../../api/types/index.ts';
import type { ImageBuilder, ImageService, RuntimeService } from '../../runtime/cri/index.ts';
import { AgentController, runWithManager } from '../container/agent-controller.ts';
import { enqueueSelf, Image, type ApiClient, type Clock, type Controller, type EventRecorder, type Logger, type Manager, type SharedInformer } from '../framework/index.ts';
import { ImageReconciler, type ImageRetryOptions } from './reconciler.ts';

export { ImageReconciler, IMAGE_FINALIZER, tagsOf, type ImageReconcilerDeps, type ImageRetryOptions } from './reconciler.ts';

/** Name of the controller (logs, metrics, queue). */
export const IMAGE_CONTROLLER = 'image';

export interface ImageControllerDeps {
  readonly client: ApiClient;
  readonly images: ImageService;
  /** Builds and commits; absent: those sources fail with a clear message. */
  readonly builder?: ImageBuilder;
  /** Finds the runtime container a commit snapshots. */
  readonly runtime?: Pick<RuntimeService, 'listContainers'>;
  /** Where build logs are kept. */
  readonly buildLogDir?: string;
  /** Least time between two progress writes to status. Default 1 s. */
  readonly progressIntervalMs?: number;
  readonly nodeName: string;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  /** Back-off of failed imports and refused removals; default 1 s doubling to 60 s. */
  readonly retry?: ImageRetryOptions;
  readonly clock?: Clock;
}

/**
 * Adds the Image controller to `manager`: it reconciles every Image (all namespaces)
 * into this node's image store. It starts by itself once the manager's informers have
 * synced (after `manager.start()`) and is stopped by `manager.stop()`.
 */
export function addImageController(manager: Manager, deps: ImageControllerDeps): Controller {
  const imagesCache = manager.informer(Image);
  const controller = new AgentController({
    name: IMAGE_CONTROLLER,
    reconciler: new ImageReconciler({
      imagesCache,
      client: deps.client,
      images: deps.images,
      ...(deps.builder ? { builder: deps.builder } : {}),
      ...(deps.runtime ? { runtime: deps.runtime } : {}),
      ...(deps.buildLogDir ? { buildLogDir: deps.buildLogDir } : {}),
      ...(deps.progressIntervalMs !== undefined ? { progressIntervalMs: deps.progressIntervalMs } : {}),
      nodeName: deps.nodeName,
      recorder: deps.recorder,
      ...(deps.retry ? { retry: deps.retry } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    }),
    log: deps.logger.child({ node: deps.nodeName }),
    // Pulls, builds and pushes take minutes, not the default minute.
    reconcileTimeoutMs: 60 * 60_000,
    metrics: manager.metrics,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ownWrites: { tracker: deps.client.writes, kind: Image, informers: [imagesCache as unknown as SharedInformer<KubeObject>], maxWaitMs: 2_000 },
  });
  controller.watch(imagesCache, enqueueSelf);
  runWithManager(manager, controller);
  return controller;
}

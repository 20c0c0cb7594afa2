/**
 * The node agent's Volume controller: `addVolumeController` wires `VolumeReconciler`
 * to a manager; the reconciler, the paths and the Container-side resolution of
 * `volumeMounts` (`resolveVolumeMounts`) are exported for the Container reconciler,
 * tests and custom wiring.
 */
import type { KubeObject } from '../../api/types/index.ts';
import { AgentController, runWithManager } from '../container/agent-controller.ts';
import {
  Container,
  enqueueSelf,
  Node,
  parseKey,
  Volume,
  type ApiClient,
  type Clock,
  type Controller,
  type EventRecorder,
  type Logger,
  type Manager,
  type SharedInformer,
} from '../framework/index.ts';
import { VolumeReconciler, VOLUME_USERS_INDEX, volumeUsersIndex } from './reconciler.ts';

export { VolumeReconciler, VOLUME_USERS_INDEX, volumeUsersIndex, type VolumeReconcilerDeps } from './reconciler.ts';
export { CONDITION_VOLUMES_READY, resolveVolumeMounts, type VolumeMountDeps, type VolumeMountsResult } from './container-mounts.ts';
export { LABEL_AUTO_CREATED, SUPPORTED_VOLUME_DRIVERS, VOLUME_FINALIZER, volumeDataDir, volumeDir, volumeNamesOf, volumeNodeOf } from './paths.ts';
export { resolveSubPath, subPathProblem, SubPathError } from './sub-path.ts';

/** Name of the controller (logs, metrics, queue). */
export const VOLUME_CONTROLLER = 'volume';

export interface VolumeControllerDeps {
  readonly client: ApiClient;
  readonly nodeName: string;
  /** `<dataDir>/volumes`. */
  readonly volumesRoot: string;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  readonly clock?: Clock;
}

/**
 * Adds the Volume controller of node `deps.nodeName` to `manager`: it reconciles every
 * Volume (all namespaces) with respect to this node, woken by changes to Volumes and to
 * the Containers bound here that mount them. Adds `VOLUME_USERS_INDEX` to the shared
 * informer of this node's Containers (`spec.nodeName=<node>`). Starts once the
 * manager's informers have synced; stopped by `manager.stop()`. Throws if called twice
 * on the same manager for the same node.
 */
export function addVolumeController(manager: Manager, deps: VolumeControllerDeps): Controller {
  const volumes = manager.informer(Volume);
  const containers = manager.informer(Container, { fieldSelector: `spec.nodeName=${deps.nodeName}` });
  containers.addIndexer(VOLUME_USERS_INDEX, volumeUsersIndex);
  const nodes = manager.informer(Node);
  const controller = new AgentController({
    name: VOLUME_CONTROLLER,
    reconciler: new VolumeReconciler({
      volumes,
      containers,
      nodes,
      client: deps.client,
      nodeName: deps.nodeName,
      volumesRoot: deps.volumesRoot,
      recorder: deps.recorder,
      ...(deps.clock ? { clock: deps.clock } : {}),
    }),
    workers: 4,
    log: deps.logger.child({ node: deps.nodeName }),
    metrics: manager.metrics,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ownWrites: { tracker: deps.client.writes, kind: Volume, informers: [volumes as unknown as SharedInformer<KubeObject>], maxWaitMs: 2_000 },
  });
  controller.watch(volumes, enqueueSelf);
  controller.watch(containers, (c) => volumeUsersIndex(c).map(parseKey));
  runWithManager(manager, controller);
  return controller;
}

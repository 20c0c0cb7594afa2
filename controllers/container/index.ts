/**
 * The node agent's Container controller: `addContainerController` wires it to a
 * manager; `ContainerReconciler` is the reconciler (exported for tests and custom wiring).
 */
export { addContainerController, containersUsingImage, imageTags, CONTAINER_CONTROLLER, IMAGE_REF_INDEX, type ContainerControllerDeps } from './controller.ts';
export {
  ContainerReconciler,
  CONDITION_IMAGE_READY,
  CONDITION_READY,
  CONDITION_RECONCILING,
  CONDITION_STALLED,
  CONDITION_UNIMPLEMENTED,
  type ContainerReconcilerDeps,
} from './reconciler.ts';
export { AgentController, runWithManager, type AgentControllerOptions, type Feed } from './agent-controller.ts';
export { toContainerConfig, unimplementedFields, InvalidSpecError, type RunInfo } from './container-config.ts';
export { normalizeImageReference, sameImageReference } from './image-reference.ts';
export { effectiveBackoffStep, restartDelayMs, shouldRestart, type RestartBackoffOptions } from './restart-policy.ts';
export * from './labels.ts';

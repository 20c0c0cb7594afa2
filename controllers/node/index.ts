/** Node registration and heartbeat (agent), node lifecycle (control plane), container stats metrics. */
export { NodeRegistration, NODE_LEASE_NAMESPACE, REASON_AGENT_READY, REASON_RUNTIME_UNAVAILABLE, toMicroTime, type NodeRegistrationDeps, type NodeRegistrationOptions } from './agent-registration.ts';
export {
  addNodeLifecycleController,
  NodeLifecycleReconciler,
  DEFAULT_NODE_GRACE_PERIOD_MS,
  MESSAGE_NODE_STATUS_UNKNOWN,
  REASON_NODE_STATUS_UNKNOWN,
  type NodeLifecycleControllerOptions,
  type NodeLifecycleReconcilerDeps,
} from './node-lifecycle.ts';
export { ContainerStatsCollector, CONTAINER_METRICS, RUNTIME_LABEL_NAME, RUNTIME_LABEL_NAMESPACE, type ContainerStatsCollectorOptions } from './stats-collector.ts';
export { readNodeFacts, ANNOTATION_OS_IMAGE, LABEL_ARCH, LABEL_HOSTNAME, LABEL_OS, type NodeFacts, type NodeFactsSources } from './node-facts.ts';

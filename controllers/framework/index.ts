/**
 * The controller runtime: client, informers, work queue, controller loop, manager,
 * leader election, events and metrics. Reconcilers import from here.
 */
export { ApiClient, type ApiClientOptions, type ApplyOptions, type CallOptions, type DeleteCallOptions, type ListOptions, type PatchOptions, type WatchOptions, type WriteOptions } from './client.ts';
export { ApiStatusError, isAlreadyExists, isConflict, isGone, isInvalid, isNotFound } from './api-status-error.ts';
export * from './resource-kind.ts';
export { SharedInformer, NAMESPACE_INDEX, type IndexFunc, type InformerEventHandler, type InformerOptions } from './informer.ts';
export type { Lister } from './lister.ts';
export { WorkQueue, type WorkQueueOptions } from './workqueue.ts';
export { BucketRateLimiter, defaultControllerRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter, type RateLimiter } from './rate-limiter.ts';
export { findCondition, setCondition, toConditionTime } from './conditions.ts';
export { TerminalError, isTerminal, type ReconcileContext, type Reconciler, type Request, type Result } from './reconcile.ts';
export { Controller, type ControllerOptions, type MapFunc, type OwnWritesOptions } from './controller.ts';
export { controllerFor, ControllerBuilder, enqueueOwner, enqueueSelf, type ControllerSettings, type ControllerSpec, type WatchSelectors, type WatchSpec } from './builder.ts';
export { Manager, type ManagerOptions, type Runnable } from './manager.ts';
export { LeaderElector, type LeaderElectionOptions, type LeaderElectorDeps } from './leader-election.ts';
export { EventRecorder, EVENT_NORMAL, EVENT_WARNING, type EventRecorderOptions, type EventType } from './events.ts';
export { ControllerMetrics, type InformerRestartReason, type ReconcileResultLabel, type WorkQueueMetrics } from './metrics.ts';
export { WriteTracker } from './write-tracker.ts';
export { Backoff, type BackoffOptions } from './backoff.ts';
export { realClock, sleep, type Clock, type TimerHandle } from './clock.ts';
export { silentLogger, type Logger } from './logger.ts';
export * from './quantity.ts';
export * from './stable-json.ts';

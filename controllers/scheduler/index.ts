/** The scheduler: binds unscheduled Containers to nodes. */
export { addScheduler, SchedulerReconciler, NODE_NAME_INDEX, REASON_SCHEDULED, REASON_UNSCHEDULABLE, DEFAULT_UNSCHEDULABLE_RETRY_MS, type SchedulerOptions, type SchedulerReconcilerDeps } from './scheduler.ts';
export { chooseNode, fitFailures, requestOf, type Decision, type FitFailure, type NodeLoad, type ResourceRequest } from './fit.ts';
export { NodeReservations, type NodeReservation } from './node-reservations.ts';

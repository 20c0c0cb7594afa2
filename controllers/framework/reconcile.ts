/**
 * The reconciler contract: a request is only a key; the reconciler reads the whole
 * world every time, and the controller loop owns retries.
 */
import type { Logger } from './logger.ts';

/** Names the object to reconcile. It never says what changed. */
export interface Request {
  readonly namespace: string; // '' for cluster-scoped kinds
  readonly name: string;
}

export interface Result {
  /** Reconcile this key again after this delay even if nothing changes. 0: as soon as possible. */
  readonly requeueAfterMs?: number;
}

export interface ReconcileContext {
  readonly signal: AbortSignal; // aborted on shutdown or reconcile timeout
  readonly log: Logger; // already tagged with controller, key, reconcileId
}

/**
 * Moves the world toward the spec of one object. May be called any number
 * of times, concurrently for different keys but never for the same key, and
 * for objects that no longer exist. A throw requeues the key with backoff;
 * throw `TerminalError` to record the failure without retrying.
 */
export interface Reconciler {
  reconcile(ctx: ReconcileContext, req: Request): Promise<Result>;
}

/**
 * A failure that retrying cannot fix until the user edits the object (an impossible
 * spec). The loop logs and counts it and does not requeue; the reconciler records it
 * in the object's status (e.g. `Stalled=True`) before throwing.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** Whether `err` is (or wraps, through `cause`) a `TerminalError`. */
export function isTerminal(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) if (e instanceof TerminalError) return true;
  return false;
}

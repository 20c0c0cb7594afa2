import { RuntimeError } from '../cri/errors.ts';
import type { ContainerState } from '../cri/types.ts';

/**
 * Lifecycle of one container task, after containerd's `createdState` /
 * `runningState` / ...: `created` (process set up, not started), `running`,
 * `paused` (frozen), `stopped` (exited; runtime state kept for inspection) and
 * `deleted` (everything released).
 */
export type TaskState = 'created' | 'running' | 'paused' | 'stopped' | 'deleted';

const next: Record<TaskState, readonly TaskState[]> = {
  created: ['running', 'stopped', 'deleted'],
  running: ['paused', 'stopped'],
  paused: ['running', 'stopped'],
  stopped: ['deleted'],
  deleted: [],
};

/** Whether a task may move from `from` to `to`. */
export function canTransition(from: TaskState, to: TaskState): boolean {
  return next[from].includes(to);
}

/**
 * Returns `to` when the move is allowed.
 *
 * @throws RuntimeError `FailedPrecondition` naming both states otherwise.
 */
export function transition(from: TaskState, to: TaskState): TaskState {
  if (!canTransition(from, to)) {
    throw new RuntimeError('FailedPrecondition', `cannot move container from ${from} to ${to}`);
  }
  return to;
}

/**
 * Checks that a verb is allowed in the current state.
 *
 * @throws RuntimeError `FailedPrecondition` (`cannot exec in a paused container`) otherwise.
 */
export function requireState(state: TaskState, allowed: readonly TaskState[], verb: string): void {
  if (!allowed.includes(state)) {
    throw new RuntimeError('FailedPrecondition', `cannot ${verb} a ${toContainerState(state)} container`);
  }
}

/** The CRI-facing name of a task state (`stopped` is `exited`). */
export function toContainerState(state: TaskState): ContainerState {
  switch (state) {
    case 'created':
    case 'running':
    case 'paused':
      return state;
    case 'stopped':
      return 'exited';
    case 'deleted':
      return 'unknown';
  }
}

/** Reason of an exited container, as kubelet reports it. */
export function exitReason(exitCode: number | undefined, oomKilled: boolean): string {
  if (oomKilled) return 'OOMKilled';
  if (exitCode === undefined) return 'Unknown';
  return exitCode === 0 ? 'Completed' : 'Error';
}

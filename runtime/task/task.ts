import type { ContainerId } from '../cri/types.ts';
import type { ContainerRecord } from './record.ts';
import { transition, type TaskState } from './states.ts';

/** How a container's process ended. */
export interface ExitInfo {
  /** Undefined when unknown (its monitor died without writing an exit file). */
  readonly exitCode?: number;
  readonly finishedAtMs: number;
  readonly oomKilled: boolean;
  readonly message?: string;
}

/**
 * One container as the runtime tracks it: its persisted record, its state
 * machine, a lock that serialises verbs on it, and a promise that settles when its
 * process has exited.
 */
export class Task {
  /** Set while `startContainer` runs, so an exit seen meanwhile is applied after `started`. */
  starting = false;
  /** An exit observed while `starting`; applied by the start verb. */
  deferredExit?: ExitInfo;
  /** True while an exit is being read (exit file, OOM counter), so it is applied once. */
  handlingExit = false;
  private lockTail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private exitWaiters = new Set<() => void>();

  constructor(
    readonly dir: string,
    public record: ContainerRecord,
  ) {}

  get id(): ContainerId {
    return this.record.id;
  }

  get state(): TaskState {
    return this.record.state;
  }

  /** Moves the state machine; throws `FailedPrecondition` for a forbidden move. */
  moveTo(to: TaskState): void {
    this.record.state = transition(this.record.state, to);
    if (to === 'stopped' || to === 'deleted') {
      for (const w of this.exitWaiters) w();
      this.exitWaiters.clear();
    }
  }

  /** Runs `fn` after every earlier locked call on this task has settled. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    const run = this.lockTail.then(fn, fn).finally(() => this.pending--);
    this.lockTail = run.catch(() => {});
    return run;
  }

  /** Whether a verb holds or waits for the lock. */
  get busy(): boolean {
    return this.pending > 0;
  }

  /** Resolves true once the task is stopped (or deleted), false after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.state === 'stopped' || this.state === 'deleted') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.exitWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.exitWaiters.add(done);
    });
  }
}

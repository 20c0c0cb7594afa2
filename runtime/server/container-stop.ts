import { isRuntimeError, RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId } from '../cri/types.ts';
import type { Task } from '../task/task.ts';
import type { ServerContext } from './context.ts';

/** How long to wait for an exit after SIGKILL before giving up. */
const KILL_WAIT_MS = 10_000;

/**
 * Stops the container: its stop signal, then SIGKILL after the grace period.
 * A created or paused container, or a grace period of 0, gets SIGKILL at once
 * (runc thaws a paused one). Resolves once the exit is recorded.
 *
 * Idempotent: resolves if the container is already stopped or removed.
 */
export async function stopContainer(ctx: ServerContext, id: ContainerId, gracePeriodSeconds: number, opts?: CallOptions): Promise<void> {
  const task = ctx.tasks.get(id);
  if (!task) return;
  await task.locked(async () => {
    if (task.state === 'stopped' || task.state === 'deleted') return;
    if (gracePeriodSeconds > 0 && task.state === 'running') {
      await signal(ctx, task, task.record.stopSignal, opts);
      if (await task.waitForExit(gracePeriodSeconds * 1000)) return;
    }
    await killAndWait(ctx, task, opts);
  });
}

/** SIGKILLs the container and waits for its exit to be recorded. */
export async function killAndWait(ctx: ServerContext, task: Task, opts?: CallOptions): Promise<void> {
  await signal(ctx, task, 'SIGKILL', opts);
  if (await task.waitForExit(KILL_WAIT_MS)) return;
  await ctx.checkExit(task);
  if (task.state !== 'stopped' && task.state !== 'deleted') {
    throw new RuntimeError('Internal', `container ${task.id} did not exit within ${KILL_WAIT_MS} ms of SIGKILL`);
  }
}

async function signal(ctx: ServerContext, task: Task, sig: string, opts?: CallOptions): Promise<void> {
  try {
    await ctx.runc.kill(task.id, sig, {}, opts);
  } catch (err) {
    // Already exited (runc: not running / does not exist): the exit monitor records it.
    if (isRuntimeError(err, 'NotFound') || isRuntimeError(err, 'FailedPrecondition')) {
      await ctx.checkExit(task);
      return;
    }
    throw err;
  }
}

import type { CallOptions, ContainerId } from '../cri/types.ts';
import { requireState } from '../task/states.ts';
import { emit, lookup, persist, toRuntimeError, type ServerContext } from './context.ts';
import { applyExit } from './exit-monitor.ts';

/**
 * Starts the process of a `created` container (`runc start`). An exit seen while
 * starting is applied after the `started` event, so events stay in order.
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not `created`), `Internal`.
 */
export async function startContainer(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<void> {
  const task = lookup(ctx, id);
  await task.locked(async () => {
    requireState(task.state, ['created'], 'start');
    task.starting = true;
    // Taken before `runc start`: the process may run and exit before runc returns.
    const startedAtMs = Date.now();
    try {
      await ctx.runc.start(id, opts);
    } catch (err) {
      task.starting = false;
      await applyDeferredExit(ctx, task);
      throw toRuntimeError(err, 'start container');
    }
    task.starting = false;
    task.record.startedAtMs = startedAtMs;
    task.moveTo('running');
    await persist(ctx, task);
    emit(ctx, task, 'started', task.record.startedAtMs);
    await applyDeferredExit(ctx, task);
  });
}

async function applyDeferredExit(ctx: ServerContext, task: Parameters<typeof applyExit>[1]): Promise<void> {
  const exit = task.deferredExit;
  task.deferredExit = undefined;
  if (exit) await applyExit(ctx, task, exit);
}

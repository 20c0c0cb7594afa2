import type { CallOptions, ContainerId } from '../cri/types.ts';
import { requireState } from '../task/states.ts';
import { emit, lookup, persist, toRuntimeError, type ServerContext } from './context.ts';

/**
 * Freezes every process of a running container (cgroup freezer, `runc pause`).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not running), `Internal`.
 */
export async function pauseContainer(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<void> {
  const task = lookup(ctx, id);
  await task.locked(async () => {
    requireState(task.state, ['running'], 'pause');
    try {
      await ctx.runc.pause(id, opts);
    } catch (err) {
      throw toRuntimeError(err, 'pause container');
    }
    task.moveTo('paused');
    await persist(ctx, task);
    emit(ctx, task, 'paused');
  });
}

import type { CallOptions, ContainerId } from '../cri/types.ts';
import { requireState } from '../task/states.ts';
import { emit, lookup, persist, toRuntimeError, type ServerContext } from './context.ts';

/**
 * Thaws a paused container (`runc resume`).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not paused), `Internal`.
 */
export async function resumeContainer(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<void> {
  const task = lookup(ctx, id);
  await task.locked(async () => {
    requireState(task.state, ['paused'], 'resume');
    try {
      await ctx.runc.resume(id, opts);
    } catch (err) {
      throw toRuntimeError(err, 'resume container');
    }
    task.moveTo('running');
    await persist(ctx, task);
    emit(ctx, task, 'resumed');
  });
}

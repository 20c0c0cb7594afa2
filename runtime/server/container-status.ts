import type { CallOptions, ContainerId, ContainerStatus } from '../cri/types.ts';
import { lookup, toStatus, type ServerContext } from './context.ts';

/**
 * Full status of one container, from the runtime's own records (no runc call).
 *
 * Rejects with `NotFound`.
 */
export async function containerStatus(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<ContainerStatus> {
  opts?.signal?.throwIfAborted();
  const task = lookup(ctx, id);
  return toStatus(task, task.record.pid);
}

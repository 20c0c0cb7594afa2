import type { CallOptions, ContainerId, ContainerStats } from '../cri/types.ts';
import { readCgroupStats } from '../oci/cgroups.ts';
import { requireState } from '../task/states.ts';
import { lookup, toRuntimeError, type ServerContext } from './context.ts';

/**
 * CPU, memory and pids of a running or paused container, read from its cgroup
 * files (cpuacct.usage, memory.usage_in_bytes − total_inactive_file, pids.current).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (created or exited), `Internal`.
 */
export async function containerStats(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<ContainerStats> {
  opts?.signal?.throwIfAborted();
  const task = lookup(ctx, id);
  requireState(task.state, ['running', 'paused'], 'read stats of');
  try {
    const s = await readCgroupStats(task.record.cgroupsPath);
    return {
      id,
      timestampMs: Date.now(),
      cpuUsageSecondsTotal: s.cpuUsageNs / 1e9,
      memoryUsageBytes: s.memoryUsageBytes,
      memoryWorkingSetBytes: s.memoryWorkingSetBytes,
      ...(s.memoryLimitBytes !== undefined ? { memoryLimitBytes: s.memoryLimitBytes } : {}),
      pids: s.pids,
    };
  } catch (err) {
    throw toRuntimeError(err, 'read container stats');
  }
}

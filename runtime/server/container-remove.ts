import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isRuntimeError, RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId } from '../cri/types.ts';
import { removeCgroup } from '../oci/cgroups.ts';
import { unmountOverlay } from '../oci/overlay.ts';
import { emit, toRuntimeError, type ServerContext } from './context.ts';
import { killAndWait } from './container-stop.ts';
import { unmountAnonymousVolumeSeed } from './anonymous-volumes.ts';

/**
 * Removes the container and everything it used: kills it if needed, then
 * `runc delete`, the overlay mount, the cgroups, its directory (bundle, log,
 * upper layer, anonymous volumes), its exit file, and the image pin. Every step is idempotent, so
 * after a failure the container stays listed and a retry finishes the job.
 *
 * Idempotent: resolves if the container is already gone.
 */
export async function removeContainer(ctx: ServerContext, id: ContainerId, opts?: CallOptions): Promise<void> {
  const task = ctx.tasks.get(id);
  if (!task) return;
  await task.locked(async () => {
    if (task.state === 'deleted') return;
    try {
      if (task.state !== 'stopped') await killAndWait(ctx, task, opts);
      if (!(await deleteStoppedState(ctx, id, task.record.cgroupsPath))) {
        await ctx.runc.delete(id, { force: true }).catch((err: unknown) => {
          if (!isRuntimeError(err, 'NotFound')) throw err;
        });
      }
      // The container is gone from runc: what is left is independent bookkeeping.
      await Promise.all([
        (async () => {
          await unmountOverlay(task.dir);
          await unmountAnonymousVolumeSeed(task.dir);
          const left = await removeCgroup(task.record.cgroupsPath);
          if (left.length) throw new RuntimeError('Internal', `cgroups still in use: ${left.join(', ')}`);
          await rm(task.dir, { recursive: true, force: true });
        })(),
        rm(join(ctx.paths.exits, id), { force: true }),
        ctx.rootfs.unpin(task.record.imageId, id),
      ]);
    } catch (err) {
      throw toRuntimeError(err, `remove container ${id}`);
    }
    task.moveTo('deleted');
    ctx.tasks.delete(id);
    emit(ctx, task, 'removed');
  });
}

/**
 * What `runc delete` does for a container whose init has exited — and with it every
 * process of its PID namespace (berth gives each container its own): remove its cgroups
 * and runc's state directory (berth sets no poststop hooks). Done here, without starting
 * runc (a process costs ~20 ms on a slow machine, on the path of every `rm` and `run --rm`).
 * False when a cgroup still holds a process: then `runc delete --force` kills and cleans up.
 */
async function deleteStoppedState(ctx: ServerContext, id: ContainerId, cgroupsPath: string): Promise<boolean> {
  if ((await removeCgroup(cgroupsPath)).length) return false;
  await rm(join(ctx.paths.runc, id), { recursive: true, force: true });
  return true;
}

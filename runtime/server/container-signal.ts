import { constants } from 'node:os';
import { isRuntimeError, RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId } from '../cri/types.ts';
import { toSignalName } from '../oci/signals.ts';
import { requireState } from '../task/states.ts';
import { lookup, toRuntimeError, type ServerContext } from './context.ts';

/**
 * Sends a signal to the container's main process (`runc kill ID N`, as `docker kill -s`);
 * the exit monitor records an exit if the process dies of it. Not under the task's lock,
 * so a signal gets through while a `stopContainer` waits out its grace period. The
 * signal goes to runc by number: runc knows only one name per number (not `SIGIOT`).
 *
 * Rejects with `InvalidArgument` (no such Linux signal), `NotFound`,
 * `FailedPrecondition` (created, paused or exited), `Internal`.
 */
export async function signalContainer(ctx: ServerContext, id: ContainerId, signal: string, opts?: CallOptions): Promise<void> {
  const name = toSignalName(signal);
  const number = (constants.signals as Record<string, number>)[name]!;
  const task = lookup(ctx, id);
  requireState(task.state, ['running'], 'signal');
  try {
    await ctx.runc.kill(id, String(number), {}, opts);
  } catch (err) {
    // exited meanwhile (runc: not running / does not exist): let the exit monitor catch up, and say so
    if (isRuntimeError(err, 'NotFound') || isRuntimeError(err, 'FailedPrecondition')) {
      await ctx.checkExit(task);
      throw new RuntimeError('FailedPrecondition', `container ${id} is not running`, { cause: err });
    }
    throw toRuntimeError(err, 'signal container');
  }
}

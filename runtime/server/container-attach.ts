import { RuntimeError } from '../cri/errors.ts';
import type { AttachRequest, AttachStreams, CallOptions, ContainerId } from '../cri/types.ts';
import { connectAttachSocket, resizeTerminal, type AttachConnection } from '../oci/attach-socket.ts';
import { requireState, type TaskState } from '../task/states.ts';
import { lookup, type ServerContext } from './context.ts';

/** How long to wait for the exit to be recorded once conmon has closed the socket. */
const EXIT_RECORD_WAIT_MS = 2_000;

/**
 * Attaches to the main process of a created, running or paused container through
 * the attach socket of its conmon (in the container's directory): output from now
 * on, stdin when asked (the container was created with `stdin: true`, so conmon
 * holds a stdin pipe, or its TTY), terminal resizes through conmon's `ctl` fifo.
 * `close()` or `signal` detach; the container keeps running, its stdin stays open
 * (conmon runs with `--leave-stdin-open`).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (exited), `InvalidArgument` (stdin
 * on a container without stdin), `Unavailable` (its conmon is gone).
 */
export async function attach(ctx: ServerContext, id: ContainerId, req: AttachRequest, opts?: CallOptions): Promise<AttachStreams> {
  const task = lookup(ctx, id);
  requireAttachable(task.state);
  const config = task.record.config;
  if (req.stdin && !config.stdin) {
    throw new RuntimeError('InvalidArgument', 'cannot attach to stdin: the container was created without stdin (set stdin: true)');
  }
  opts?.signal?.throwIfAborted();
  let connection: AttachConnection;
  try {
    connection = await connectAttachSocket({ dir: task.dir });
  } catch (err) {
    // the process may have ended (conmon gone with its socket) since the state check
    await ctx.checkExit(task).catch(() => {});
    requireAttachable(task.state);
    throw err;
  }
  let detached = false;
  const close = (): void => {
    detached = true;
    connection.close();
  };
  opts?.signal?.addEventListener('abort', close, { once: true });
  const ended = connection.closed.then(async () => {
    opts?.signal?.removeEventListener('abort', close);
    if (detached) return undefined;
    // conmon closes attach connections when the process has exited and its output is drained
    await ctx.checkExit(task).catch(() => {});
    await task.waitForExit(EXIT_RECORD_WAIT_MS);
    return task.state === 'stopped' ? task.record.exitCode : undefined;
  });
  const tty = config.tty ?? false;
  if (!req.stdin) connection.stdin.on('error', () => {});
  if (tty) connection.stderr.resume();
  return {
    ...(req.stdin ? { stdin: connection.stdin } : {}),
    stdout: connection.stdout,
    ...(tty ? {} : { stderr: connection.stderr }),
    tty,
    resize: (cols, rows) => {
      if (!tty) return;
      resizeTerminal(task.dir, cols, rows).catch((err: unknown) => ctx.log.debug({ err, id }, 'cannot resize the terminal'));
    },
    ended,
    close,
  };
}

function requireAttachable(state: TaskState): void {
  if (state === 'stopped') throw new RuntimeError('FailedPrecondition', 'cannot attach to an exited container');
  requireState(state, ['created', 'running', 'paused'], 'attach to');
}

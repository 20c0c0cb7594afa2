import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId, ExecRequest, ExecStreams, ExecSyncResult } from '../cri/types.ts';
import { resolveUser } from '../oci/spec.ts';
import { requireState } from '../task/states.ts';
import type { Task } from '../task/task.ts';
import { lookup, type ServerContext } from './context.ts';

/**
 * Runs `cmd` in a running container (`runc exec` in the foreground, with pipes)
 * and resolves with its exit code and output. With `timeoutSeconds` > 0 the
 * process is SIGKILLed at the deadline and the call rejects with `Unavailable`.
 * When runc itself cannot run the command, the exit code is 255 and stderr holds
 * runc's message.
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not running: created, paused, exited).
 */
export async function execSync(
  ctx: ServerContext,
  id: ContainerId,
  cmd: readonly string[],
  timeoutSeconds: number,
  opts?: CallOptions,
): Promise<ExecSyncResult> {
  const task = lookup(ctx, id);
  requireState(task.state, ['running'], 'exec into');
  if (cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
  const pidFile = join(task.dir, `exec-${randomBytes(6).toString('hex')}.pid`);
  const child = ctx.runc.exec(id, cmd, { pidFile });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => stdout.push(d));
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  let timedOut = false;
  const kill = (): void => void killExecProcess(pidFile, child);
  const timer = timeoutSeconds > 0 ? setTimeout(() => ((timedOut = true), kill()), timeoutSeconds * 1000) : undefined;
  opts?.signal?.addEventListener('abort', kill, { once: true });
  try {
    const exitCode = await exitOf(child);
    if (timedOut) throw new RuntimeError('Unavailable', `exec timed out after ${timeoutSeconds} s`);
    opts?.signal?.throwIfAborted();
    return { exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
  } finally {
    clearTimeout(timer);
    opts?.signal?.removeEventListener('abort', kill);
    await rm(pidFile, { force: true });
  }
}

/**
 * Starts an interactive command in a running container, with pipes (no TTY).
 * `close()` SIGKILLs the process. A TTY exec rejects with `Unavailable` (not yet
 * implemented: it needs a console socket receiver).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not running), `InvalidArgument`, `Unavailable`.
 */
export async function exec(ctx: ServerContext, id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams> {
  const task = lookup(ctx, id);
  requireState(task.state, ['running'], 'exec into');
  if (req.tty) throw new RuntimeError('Unavailable', 'exec with a TTY is not implemented yet');
  if (req.cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
  const user = req.user ? await numericUser(task, req.user) : undefined;
  const pidFile = join(task.dir, `exec-${randomBytes(6).toString('hex')}.pid`);
  const child = ctx.runc.exec(id, req.cmd, {
    pidFile,
    stdin: req.stdin ?? false,
    env: req.env?.map((e) => `${e.name}=${e.value}`),
    ...(req.workingDir ? { cwd: req.workingDir } : {}),
    ...(user ? { user } : {}),
  });
  const close = (): void => void killExecProcess(pidFile, child);
  opts?.signal?.addEventListener('abort', close, { once: true });
  const exit = exitOf(child).finally(() => {
    opts?.signal?.removeEventListener('abort', close);
    void rm(pidFile, { force: true });
  });
  return {
    ...(child.stdin ? { stdin: child.stdin } : {}),
    stdout: child.stdout!,
    stderr: child.stderr!,
    resize() {},
    exit,
    close,
  };
}

async function numericUser(task: Task, user: string): Promise<string> {
  // The container's root as its processes see it (runc mounts it inside the container).
  const etc = `/proc/${task.record.pid}/root/etc`;
  const [passwd, group] = await Promise.all(['passwd', 'group'].map((f) => readFile(join(etc, f), 'utf8').catch(() => '')));
  const u = resolveUser(user, passwd ?? '', group ?? '');
  return `${u.uid}:${u.gid}`;
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new RuntimeError('Internal', `runc exec: ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)));
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[sig] ?? 0;
}

/** SIGKILLs the exec'd process (by its host PID) so runc exec returns; falls back to killing runc. */
async function killExecProcess(pidFile: string, child: ChildProcess): Promise<void> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    if (pid > 0) {
      process.kill(pid, 'SIGKILL');
      return;
    }
  } catch {
    // no pid yet: runc has not started the process
  }
  child.kill('SIGKILL');
}

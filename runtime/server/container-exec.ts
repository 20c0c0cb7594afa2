import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId, ExecRequest, ExecStreams, ExecSyncResult } from '../cri/types.ts';
import { resizeTerminal } from '../oci/attach-socket.ts';
import { conmonExec, conmonExecDetached, type ConmonExecDetachedOptions, type ConmonExecSession } from '../oci/conmon.ts';
import { resolveUser, toExecProcess, validTerminalSize, type OciProcess, type OciSpec } from '../oci/spec.ts';
import { requireState } from '../task/states.ts';
import type { Task } from '../task/task.ts';
import { lookup, toRuntimeError, type ServerContext } from './context.ts';

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
 * Starts an interactive command in a running container. Without a TTY: `runc exec`
 * in the foreground with pipes. With a TTY: under conmon (`execWithTty`).
 * `close()` and `signal` SIGKILL the process.
 *
 * Without a TTY, a command runc cannot start (its message goes to stderr) exits as with
 * Docker: 127 when it is not found (`executable file not found`, `no such file or directory`),
 * 126 when it cannot be run (`permission denied`…); with a TTY, conmon reports it and the
 * call rejects with `InvalidArgument`.
 *
 * Both run the container's own process spec with the request's changes (`processOf`):
 * `env` over the container's, `workingDir`, and `user` (`name`, `uid`, `uid:gid`,
 * `name:group`…) resolved in the container's /etc/passwd and /etc/group as for the
 * container's own user, supplementary groups included. An unknown user or group is
 * `InvalidArgument` with Docker's message (`unable to find user NAME: no matching entries in passwd file`).
 *
 * Rejects with `NotFound`, `FailedPrecondition` (not running), `InvalidArgument`
 * (no command; with a TTY also a command runc cannot run), `Unavailable`, `Internal`.
 */
export async function exec(ctx: ServerContext, id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams> {
  const task = lookup(ctx, id);
  requireState(task.state, ['running'], 'exec into');
  if (req.cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
  if (req.tty) return execWithTty(ctx, task, req, opts);
  const base = join(task.dir, `exec-${randomBytes(6).toString('hex')}`);
  const pidFile = `${base}.pid`;
  const processSpecPath = `${base}.json`;
  try {
    await writeFile(processSpecPath, JSON.stringify(await processOf(task, req, false)));
  } catch (err) {
    await rm(processSpecPath, { force: true });
    throw toRuntimeError(err, 'exec');
  }
  // `runc exec --process`: `Runc.exec`'s flags (`--user uid:gid`) would keep the container's supplementary groups.
  const child = ctx.runc.execProcess(id, processSpecPath, { pidFile, stdin: req.stdin ?? false });
  // runc's own message when it cannot start the command is the first thing on stderr: keep its start.
  const stderr = new PassThrough();
  let stderrHead = '';
  child.stderr!.pipe(stderr);
  child.stderr!.on('data', (d: Buffer) => {
    if (stderrHead.length < 4096) stderrHead += d.toString('utf8');
  });
  const close = (): void => void killExecProcess(pidFile, child);
  opts?.signal?.addEventListener('abort', close, { once: true });
  const exit = exitOf(child)
    .then(async (code) => (code === RUNC_FAILED && !(await stat(pidFile).catch(() => undefined)) ? startFailureCode(stderrHead) : code))
    .finally(() => {
      opts?.signal?.removeEventListener('abort', close);
      void rm(pidFile, { force: true });
      void rm(processSpecPath, { force: true });
    });
  return {
    ...(child.stdin ? { stdin: child.stdin } : {}),
    stdout: child.stdout!,
    stderr,
    tty: false,
    resize() {},
    exit,
    close,
  };
}

/**
 * A TTY exec, as Podman's `exec -it`: conmon `--exec` runs `runc exec --process`
 * with `terminal: true`, receives the pty master on runc's console socket and holds
 * it; we talk to it through its attach socket and `ctl` fifo in the session's own
 * directory (`<container>/exec-<session>`), removed when the session ends.
 *
 * conmon only gets the pty master once runc has started the process, so a resize
 * through the ctl fifo always comes after the start: the first size goes in the
 * process spec instead (`consoleSize`, which runc sets on the pty before the process runs).
 */
async function execWithTty(ctx: ServerContext, task: Task, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams> {
  const sessionId = randomBytes(16).toString('hex');
  const sessionDir = join(task.dir, `exec-${sessionId}`);
  const cleanup = (): Promise<unknown> =>
    Promise.all([rm(sessionDir, { recursive: true, force: true }), rm(join(ctx.paths.sockets, sessionId), { force: true })]);
  let session: ConmonExecSession;
  try {
    const base = await prepareSession(ctx, task, req, true, sessionId, sessionDir);
    opts?.signal?.throwIfAborted();
    session = await conmonExec({ ...base, terminal: true, stdin: req.stdin ?? false });
  } catch (err) {
    await cleanup();
    throw toRuntimeError(err, 'exec');
  }
  const { connection, pid } = session;
  let killed = false;
  const close = (): void => {
    if (killed) return;
    killed = true;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  opts?.signal?.addEventListener('abort', close, { once: true });
  // conmon drains the terminal into the socket before it reports the exit; wait for both before removing the session.
  const exit = session.exit.finally(() => {
    killed = true;
    opts?.signal?.removeEventListener('abort', close);
  });
  void Promise.allSettled([exit, connection.closed]).then(async () => {
    connection.close();
    await cleanup().catch((err: unknown) => ctx.log.warn({ err, id: task.id }, 'cannot remove an exec session directory'));
  });
  if (!req.stdin) connection.stdin.on('error', () => {});
  return {
    ...(req.stdin ? { stdin: connection.stdin } : {}),
    stdout: connection.stdout,
    tty: true,
    resize: (cols, rows) => {
      resizeTerminal(sessionDir, cols, rows).catch((err: unknown) => ctx.log.debug({ err, id: task.id }, 'cannot resize an exec terminal'));
    },
    exit,
    close,
  };
}

/**
 * Starts a command in a running container in the background (`docker exec -d`): under
 * conmon, which reaps it and outlives berth; output discarded. Resolves once the process
 * runs; its session directory goes when it exits (or with the container). With `tty`
 * the process gets a terminal (conmon holds its master) and with `stdin` a stdin kept
 * open, so a shell started `-dit` waits instead of reading EOF. Rejects with
 * `InvalidArgument` when the command cannot run (runc's message: `executable file not
 * found`…), as `exec` otherwise.
 */
export async function execDetached(ctx: ServerContext, id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<void> {
  const task = lookup(ctx, id);
  requireState(task.state, ['running'], 'exec into');
  if (req.cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
  const sessionId = randomBytes(16).toString('hex');
  const sessionDir = join(task.dir, `exec-${sessionId}`);
  const cleanup = (): Promise<unknown> => rm(sessionDir, { recursive: true, force: true });
  try {
    const base = await prepareSession(ctx, task, req, req.tty ?? false, sessionId, sessionDir);
    opts?.signal?.throwIfAborted();
    const { exit } = await conmonExecDetached({ ...base, terminal: req.tty ?? false, stdin: req.stdin ?? false });
    void exit.then(
      (code) => ctx.log.debug({ id: task.id, cmd: req.cmd, exitCode: code }, 'detached exec ended'),
      (err: unknown) => ctx.log.debug({ err, id: task.id }, 'detached exec ended without an exit code'),
    ).finally(() => cleanup().catch(() => {}));
  } catch (err) {
    await cleanup();
    throw toRuntimeError(err, 'exec');
  }
}

/** Writes the session's directory and process spec (`process.json`); resolves with what conmon needs for it. */
async function prepareSession(ctx: ServerContext, task: Task, req: ExecRequest, terminal: boolean, sessionId: string, sessionDir: string): Promise<ConmonExecDetachedOptions> {
  const processSpec = await processOf(task, req, terminal);
  await mkdir(sessionDir);
  const processSpecPath = join(sessionDir, 'process.json');
  await writeFile(processSpecPath, JSON.stringify(processSpec));
  return {
    containerId: task.id,
    sessionId,
    name: task.record.config.name,
    sessionDir,
    processSpecPath,
    runcRoot: ctx.paths.runc,
    runcBinary: ctx.runc.binary,
    socketDir: ctx.paths.sockets,
    ...(ctx.conmonBinary ? { conmonBinary: ctx.conmonBinary } : {}),
  };
}

/** The OCI process of an exec: the container's own (`config.json`) with the request's command, terminal, env, cwd and user. */
async function processOf(task: Task, req: ExecRequest, terminal: boolean): Promise<OciProcess> {
  const spec = JSON.parse(await readFile(join(task.dir, 'config.json'), 'utf8')) as OciSpec;
  const user = req.user ? await resolveExecUser(task, req.user) : undefined;
  return toExecProcess(spec.process, {
    args: req.cmd,
    terminal,
    ...(terminal && req.consoleSize ? { consoleSize: validTerminalSize(req.consoleSize) } : {}),
    ...(req.env ? { env: req.env } : {}),
    ...(req.workingDir ? { cwd: req.workingDir } : {}),
    ...(user ? { user } : {}),
  });
}

/**
 * `user[:group]` resolved against the container's own /etc/passwd and /etc/group (as
 * `resolveUser` does for the container's user); an unknown name is `InvalidArgument`
 * with Docker's exec message.
 */
async function resolveExecUser(task: Task, user: string): Promise<ReturnType<typeof resolveUser>> {
  // The container's root as its processes see it (runc mounts it inside the container).
  const etc = `/proc/${task.record.pid}/root/etc`;
  const [passwd, group] = await Promise.all(['passwd', 'group'].map((f) => readFile(join(etc, f), 'utf8').catch(() => '')));
  try {
    return resolveUser(user, passwd ?? '', group ?? '');
  } catch (err) {
    const m = err instanceof RuntimeError ? /^(user|group) "(.*)" not found in the image's \/etc\/(passwd|group)$/.exec(err.message) : null;
    if (!m) throw err;
    throw new RuntimeError('InvalidArgument', `unable to find ${m[1]} ${m[2]}: no matching entries in ${m[3]} file`, { cause: err });
  }
}

/** `runc exec`'s exit code when runc itself fails. */
const RUNC_FAILED = 255;

/**
 * Docker's exit code for a command runc could not start (moby's `translateContainerdStartErr`):
 * 127 when it is not found, 126 otherwise (it cannot be invoked).
 */
function startFailureCode(runcMessage: string): number {
  return /executable file not found|no such file or directory/i.test(runcMessage) ? 127 : 126;
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

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { RuntimeError } from '../cri/errors.ts';
import { connectAttachSocket, type AttachConnection } from './attach-socket.ts';

export interface ConmonCreateOptions {
  readonly id: string;
  readonly name: string;
  /** OCI bundle directory holding config.json. */
  readonly bundle: string;
  /** runc's `--root`. */
  readonly runcRoot: string;
  readonly runcBinary?: string;
  readonly conmonBinary?: string;
  /** Where runc writes the container init's host PID. */
  readonly pidFile: string;
  /** Where conmon writes its own PID. */
  readonly conmonPidFile: string;
  /** CRI-format log file conmon writes the container's output to. */
  readonly logPath: string;
  /** conmon writes `<exitDir>/<id>` holding the exit code when the container exits. */
  readonly exitDir: string;
  readonly socketDir: string;
  /** conmon's own stdout/stderr (never a pipe: the monitor must outlive us). */
  readonly conmonLogPath: string;
  /** Gives the container a TTY (conmon receives the pty master and holds it). */
  readonly terminal?: boolean;
  /**
   * Gives the container a stdin pipe that attach clients write to; it stays open when
   * a client goes (`--leave-stdin-open`, Kubernetes' `stdinOnce: false`).
   */
  readonly stdin?: boolean;
  /** Gives up waiting for `runc create` after this long. */
  readonly timeoutMs?: number;
}

export const DEFAULT_CONMON = '/usr/bin/conmon';

/**
 * Starts a detached conmon that runs `runc create`, and resolves with the
 * container init's PID once the container is `created`. conmon stays as the
 * container's monitor (subreaper, log writer, exit-file writer) and survives the
 * calling process. The only pipe is conmon's sync pipe (fd 3, `_OCI_SYNCPIPE`),
 * closed on our side as soon as the result arrives.
 *
 * Rejects with `RuntimeError`: `InvalidArgument` when runc cannot find or run the
 * command, `Internal` for any other failure, with runc's message.
 */
export function conmonCreate(opts: ConmonCreateOptions): Promise<{ pid: number }> {
  const args = [
    '--api-version', '1',
    '-c', opts.id,
    '-u', opts.id,
    '-n', opts.name,
    '-r', opts.runcBinary ?? '/usr/sbin/runc',
    '-b', opts.bundle,
    '-p', opts.pidFile,
    '-P', opts.conmonPidFile,
    '-l', `k8s-file:${opts.logPath}`,
    '--exit-dir', opts.exitDir,
    '--socket-dir-path', opts.socketDir,
    `--runtime-arg=--root=${opts.runcRoot}`,
    ...(opts.terminal ? ['-t'] : []),
    ...(opts.stdin ? ['-i', '--leave-stdin-open'] : []),
  ];
  const outFd = openSync(opts.conmonLogPath, 'a');
  let child;
  try {
    child = spawn(opts.conmonBinary ?? DEFAULT_CONMON, args, {
      stdio: ['ignore', outFd, outFd, 'pipe'],
      // conmon writes files relative to its working directory (an `oom` marker when the
      // container is OOM-killed): the bundle, never the directory berth was started from.
      cwd: opts.bundle,
      detached: true,
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
    });
  } finally {
    closeSync(outFd);
  }
  child.unref();
  const sync = child.stdio[3] as Readable;
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err: RuntimeError | undefined, pid?: number): void => {
      clearTimeout(timer);
      sync.removeAllListeners();
      sync.on('error', () => {});
      sync.destroy();
      if (err) reject(err);
      else resolve({ pid: pid! });
    };
    const timer = setTimeout(
      () => done(new RuntimeError('Internal', `conmon did not report the container created within ${opts.timeoutMs ?? 10_000} ms`)),
      opts.timeoutMs ?? 10_000,
    );
    child.on('error', (e) => done(new RuntimeError('Internal', `cannot start conmon: ${e.message}`, { cause: e })));
    sync.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let msg: { data?: number; message?: string };
      try {
        msg = JSON.parse(buf.slice(0, nl)) as typeof msg;
      } catch (e) {
        return done(new RuntimeError('Internal', `conmon sent an unreadable sync message: ${buf}`, { cause: e }));
      }
      if (typeof msg.data === 'number' && msg.data > 0) return done(undefined, msg.data);
      done(runcFailure('create', msg.message));
    });
    sync.on('error', () => {});
    sync.on('close', () => {
      if (!buf.includes('\n')) done(new RuntimeError('Internal', `conmon exited without reporting the container (see ${opts.conmonLogPath})`));
    });
  });
}

/** runc's failure as conmon relays it on the sync pipe: `InvalidArgument` when the command cannot run, else `Internal`. */
function runcFailure(verb: string, message: string | undefined): RuntimeError {
  const text = (message ?? 'unknown error').trim();
  const inner = /msg="((?:[^"\\]|\\.)*)"/.exec(text)?.[1]?.replace(/\\"/g, '"') ?? text;
  const code = /executable file not found|exec: .*no such file or directory|permission denied.*exec|exec format error/.test(inner)
    ? 'InvalidArgument'
    : 'Internal';
  return new RuntimeError(code, `runc ${verb} failed: ${inner}`);
}

export interface ConmonExecOptions {
  /** The running container to exec into. */
  readonly containerId: string;
  /** Unique ID of this session: conmon's `--cuuid`, names `<socketDir>/<sessionId>`. */
  readonly sessionId: string;
  readonly name: string;
  /**
   * This session's own directory (exists, empty): conmon's bundle, where it puts
   * `attach`, `ctl`, the pid file, its exit file and its own log.
   */
  readonly sessionDir: string;
  /** An OCI `process` JSON (args, env, cwd, user, capabilities, `terminal`) for `runc exec --process`. */
  readonly processSpecPath: string;
  readonly runcRoot: string;
  readonly runcBinary?: string;
  readonly conmonBinary?: string;
  readonly perlBinary?: string;
  readonly socketDir: string;
  /** Whether the process spec asks for a terminal (conmon then holds the pty master). */
  readonly terminal: boolean;
  /** Give the process a stdin (without it, it reads /dev/null). */
  readonly stdin: boolean;
  /** Gives up waiting for the process to start after this long (default 10 s). */
  readonly timeoutMs?: number;
}

/** A started exec session under conmon. */
export interface ConmonExecSession {
  /** Host PID of the exec'd process. */
  readonly pid: number;
  /** Connected before the process started, so no output is missed. */
  readonly connection: AttachConnection;
  /** Resolves with the process' exit code (128+N when killed by signal N). */
  readonly exit: Promise<number>;
}

/**
 * Runs a process in a running container the way Podman's `exec -it` does: conmon
 * `--exec --exec-attach` with its three pipes (sync, start, attach). conmon sets up
 * the session's attach socket and says so on the attach pipe; we connect; a second
 * write on the start pipe lets it run `runc exec --process`; the sync pipe then
 * carries the PID, and at the end the exit code. With `terminal`, conmon receives
 * the pty master over runc's console socket and `resizeTerminal(sessionDir, …)`
 * works.
 *
 * Rejects with `InvalidArgument` when runc cannot run the command, `Unavailable`
 * when the attach socket cannot be reached, `Internal` otherwise. On rejection the
 * session's conmon is killed; the caller removes `sessionDir` and `<socketDir>/<sessionId>`.
 */
export async function conmonExec(opts: ConmonExecOptions): Promise<ConmonExecSession> {
  const args = [...execArgs(opts), '--exec-attach'];
  const child = spawnExecConmon(opts, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', _OCI_ATTACHPIPE: '5' } });
  const pipes = child.stdio as unknown as [null, null, null, Readable, Writable, Readable];
  const sync = new JsonLines(pipes[3]);
  const start = pipes[4];
  const attach = new JsonLines(pipes[5]);
  start.on('error', () => {});
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let connection: AttachConnection | undefined;
  const kill = (): void => killByPidFile(join(opts.sessionDir, 'conmon.pid'));
  try {
    const spawned = new Promise<never>((_, reject) =>
      child.on('error', (e) => reject(new RuntimeError('Internal', `cannot start conmon: ${e.message}`, { cause: e }))),
    );
    spawned.catch(() => {}); // only raced while starting
    start.write('0'); // the first read: "you may go on" (Podman moves conmon into a cgroup before it)
    const ready = await Promise.race([attach.next(timeoutMs, 'conmon did not open the attach socket'), spawned]);
    if (typeof ready.data !== 'number' || ready.data < 0) throw runcFailure('exec', ready.message);
    connection = await connectAttachSocket({ dir: opts.sessionDir, ...(opts.perlBinary ? { perlBinary: opts.perlBinary } : {}) });
    start.end('1'); // the second read: a client is attached, run the process
    const started = await sync.next(timeoutMs, 'conmon did not report the exec process started');
    if (typeof started.data !== 'number' || started.data <= 0) throw runcFailure('exec', started.message);
    return { pid: started.data, connection, exit: exitCodeOf(sync) };
  } catch (err) {
    connection?.close();
    kill();
    sync.destroy();
    attach.destroy();
    start.destroy();
    throw err;
  } finally {
    attach.destroy();
  }
}

/** What a background exec needs: `ConmonExecOptions` without an attach socket (`terminal` and `stdin` optional). */
export type ConmonExecDetachedOptions = Omit<ConmonExecOptions, 'terminal' | 'stdin' | 'perlBinary'> & { readonly terminal?: boolean; readonly stdin?: boolean };

/**
 * Runs a process in a running container in the background, as Podman's `exec -d`:
 * conmon `--exec` without an attach socket runs `runc exec --process`, reaps the
 * process (so no zombie is left to the container's PID 1) and outlives its caller
 * (its own session, as for a container). Output is discarded (`-l none`), as Docker does.
 * Resolves once the process started, with its PID and its exit code to come (while
 * the caller lives). Rejects as `conmonExec`; then the conmon is killed.
 */
export async function conmonExecDetached(opts: ConmonExecDetachedOptions): Promise<{ pid: number; exit: Promise<number> }> {
  const child = spawnExecConmon(opts, execArgs(opts), { stdio: ['pipe'], env: { _OCI_SYNCPIPE: '3' }, detached: true });
  child.unref();
  const sync = new JsonLines(child.stdio[3] as Readable);
  try {
    const spawned = new Promise<never>((_, reject) =>
      child.on('error', (e) => reject(new RuntimeError('Internal', `cannot start conmon: ${e.message}`, { cause: e }))),
    );
    spawned.catch(() => {});
    const started = await Promise.race([sync.next(opts.timeoutMs ?? 10_000, 'conmon did not report the exec process started'), spawned]);
    if (typeof started.data !== 'number' || started.data <= 0) throw runcFailure('exec', started.message);
    const exit = exitCodeOf(sync);
    exit.catch(() => {}).finally(() => sync.destroy());
    return { pid: started.data, exit };
  } catch (err) {
    killByPidFile(join(opts.sessionDir, 'conmon.pid'));
    sync.destroy();
    throw err;
  }
}

/** conmon's arguments for an exec session (`--exec`, `-t` with a terminal, `-i` with stdin), with its files in the session's directory; output discarded (`-l none`). */
function execArgs(opts: ConmonExecDetachedOptions): string[] {
  return [
    '--api-version', '1',
    '-c', opts.containerId,
    '-u', opts.sessionId,
    '-n', opts.name,
    '-r', opts.runcBinary ?? '/usr/sbin/runc',
    '-b', opts.sessionDir,
    '-p', join(opts.sessionDir, 'pid'),
    '-P', join(opts.sessionDir, 'conmon.pid'),
    '-l', 'none',
    '--exit-dir', opts.sessionDir,
    '--socket-dir-path', opts.socketDir,
    `--runtime-arg=--root=${opts.runcRoot}`,
    '--exec',
    '--exec-process-spec', opts.processSpecPath,
    ...(opts.terminal ? ['-t'] : []),
    ...(opts.stdin ? ['-i'] : []),
  ];
}

/**
 * Spawns conmon for an exec session with its stdout and stderr to `conmon.log` and
 * `extra.stdio` as fds 3, 4, …; it runs in the session's directory (as for create:
 * conmon's relative files stay there).
 */
function spawnExecConmon(
  opts: ConmonExecDetachedOptions,
  args: readonly string[],
  extra: { readonly stdio: readonly 'pipe'[]; readonly env: Record<string, string>; readonly detached?: boolean },
): ChildProcess {
  const outFd = openSync(join(opts.sessionDir, 'conmon.log'), 'a');
  try {
    return spawn(opts.conmonBinary ?? DEFAULT_CONMON, args, {
      stdio: ['ignore', outFd, outFd, ...extra.stdio],
      cwd: opts.sessionDir,
      detached: extra.detached ?? false,
      env: { ...process.env, ...extra.env },
    });
  } finally {
    closeSync(outFd);
  }
}

/** The exec process' exit code, the last message on conmon's sync pipe. */
function exitCodeOf(sync: JsonLines): Promise<number> {
  return sync.next(Infinity, 'conmon exited without reporting the exit code').then(
    (m) => {
      if (typeof m.data !== 'number' || m.data < 0) throw runcFailure('exec', m.message);
      return m.data;
    },
    (err: unknown) => {
      throw err instanceof RuntimeError ? err : new RuntimeError('Internal', String(err));
    },
  );
}

/** Newline-delimited JSON messages from one of conmon's pipes. */
class JsonLines {
  private buf = '';
  private readonly queue: { data?: number; message?: string }[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(private readonly stream: Readable) {
    stream.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        try {
          this.queue.push(JSON.parse(line) as { data?: number; message?: string });
        } catch {
          this.queue.push({ message: `unreadable message from conmon: ${line}` });
        }
      }
      this.waiter?.();
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  async next(timeoutMs: number, onEnd: string): Promise<{ data?: number; message?: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.ended) throw new RuntimeError('Internal', onEnd);
      const left = deadline - Date.now();
      if (left <= 0) throw new RuntimeError('Internal', `${onEnd} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  destroy(): void {
    this.stream.destroy();
  }
}

function killByPidFile(pidFile: string): void {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // not started, or gone
  }
}

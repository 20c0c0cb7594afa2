import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { RuntimeError } from '../cri/errors.ts';

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
  readonly terminal?: boolean;
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
  ];
  const outFd = openSync(opts.conmonLogPath, 'a');
  let child;
  try {
    child = spawn(opts.conmonBinary ?? DEFAULT_CONMON, args, {
      stdio: ['ignore', outFd, outFd, 'pipe'],
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
      const text = (msg.message ?? 'unknown error').trim();
      const inner = /msg="((?:[^"\\]|\\.)*)"/.exec(text)?.[1]?.replace(/\\"/g, '"') ?? text;
      const code = /executable file not found|exec: .*no such file or directory|permission denied.*exec|exec format error/.test(inner)
        ? 'InvalidArgument'
        : 'Internal';
      done(new RuntimeError(code, `runc create failed: ${inner}`));
    });
    sync.on('error', () => {});
    sync.on('close', () => {
      if (!buf.includes('\n')) done(new RuntimeError('Internal', `conmon exited without reporting the container (see ${opts.conmonLogPath})`));
    });
  });
}

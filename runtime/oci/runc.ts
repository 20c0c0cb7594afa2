import { spawn, type ChildProcess } from 'node:child_process';
import { RuntimeError, type RuntimeErrorCode } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';

/** runc's view of one container (`runc state`, `runc list -f json`). */
export interface RuncState {
  readonly id: string;
  readonly pid: number;
  readonly status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  readonly bundle: string;
  readonly created: string;
}

export interface RuncOptions {
  /** runc's private state directory (`--root`). */
  readonly root: string;
  /** Path of the runc binary. */
  readonly binary?: string;
}

export interface RuncExecOptions {
  readonly env?: readonly string[];
  readonly cwd?: string;
  /** `uid[:gid]`, numeric. */
  readonly user?: string;
  /** runc writes the exec'd process' host PID here. */
  readonly pidFile?: string;
  /** Open a pipe to the process' stdin. */
  readonly stdin?: boolean;
}

export const DEFAULT_RUNC = '/usr/sbin/runc';

/**
 * The runc command line, one method per subcommand, all with `--root`. The only
 * code in berth that runs runc itself (conmon runs `runc create`).
 *
 * Failures reject with `RuntimeError`: `NotFound` when runc says the container
 * does not exist, `FailedPrecondition` when its state forbids the command,
 * `Internal` otherwise, with runc's message.
 */
export class Runc {
  readonly root: string;
  readonly binary: string;

  constructor(opts: RuncOptions) {
    this.root = opts.root;
    this.binary = opts.binary ?? DEFAULT_RUNC;
  }

  /** `runc --version`: the first line's version, e.g. `1.1.5+ds1`. */
  async version(opts?: CallOptions): Promise<string> {
    const out = await this.run(['--version'], opts, false);
    const m = /runc version (\S+)/.exec(out);
    if (!m?.[1]) throw new RuntimeError('Internal', `cannot parse runc --version output: ${out}`);
    return m[1];
  }

  start(id: string, opts?: CallOptions): Promise<void> {
    return this.void(['start', id], opts);
  }

  /** Signals the container's init (`all`: every process of its cgroup). */
  kill(id: string, signal: string, killOpts: { all?: boolean } = {}, opts?: CallOptions): Promise<void> {
    return this.void(['kill', ...(killOpts.all ? ['--all'] : []), id, signal], opts);
  }

  /** Deletes a stopped container (`force`: any container, SIGKILLing it first). */
  delete(id: string, deleteOpts: { force?: boolean } = {}, opts?: CallOptions): Promise<void> {
    return this.void(['delete', ...(deleteOpts.force ? ['--force'] : []), id], opts);
  }

  pause(id: string, opts?: CallOptions): Promise<void> {
    return this.void(['pause', id], opts);
  }

  resume(id: string, opts?: CallOptions): Promise<void> {
    return this.void(['resume', id], opts);
  }

  async state(id: string, opts?: CallOptions): Promise<RuncState> {
    return JSON.parse(await this.run(['state', id], opts)) as RuncState;
  }

  /** Every container under this root, in one runc call. */
  async list(opts?: CallOptions): Promise<RuncState[]> {
    const out = await this.run(['list', '--format', 'json'], opts);
    return (JSON.parse(out.trim() || 'null') as RuncState[] | null) ?? [];
  }

  /**
   * Starts `runc exec` in the foreground with pipes: the returned child is the
   * session; its exit code is the process' exit code (runc itself fails with 255
   * and a message on stderr). The caller owns the child and must reap it.
   */
  exec(id: string, args: readonly string[], execOpts: RuncExecOptions = {}): ChildProcess {
    const flags: string[] = [];
    for (const e of execOpts.env ?? []) flags.push('--env', e);
    if (execOpts.cwd) flags.push('--cwd', execOpts.cwd);
    if (execOpts.user) flags.push('--user', execOpts.user);
    if (execOpts.pidFile) flags.push('--pid-file', execOpts.pidFile);
    return spawn(this.binary, ['--root', this.root, 'exec', ...flags, id, ...args], {
      stdio: [execOpts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * Starts `runc exec --process SPEC` in the foreground with pipes: the process (args,
   * env, cwd, user with its supplementary groups, capabilities) entirely from the OCI
   * process JSON at `processSpecPath`. Otherwise as `exec`.
   */
  execProcess(id: string, processSpecPath: string, execOpts: { readonly pidFile?: string; readonly stdin?: boolean } = {}): ChildProcess {
    return spawn(this.binary, ['--root', this.root, 'exec', '--process', processSpecPath, ...(execOpts.pidFile ? ['--pid-file', execOpts.pidFile] : []), id], {
      stdio: [execOpts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * Starts `runc run` of the bundle in the foreground (no conmon), stdout and stderr
   * piped: a short-lived container such as a build step. The child's exit code is
   * the process' exit code. The caller owns the child; `kill` and `delete` clean up.
   */
  runForeground(id: string, bundleDir: string): ChildProcess {
    return spawn(this.binary, ['--root', this.root, 'run', '--bundle', bundleDir, id], { cwd: bundleDir, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private async void(args: string[], opts?: CallOptions): Promise<void> {
    await this.run(args, opts);
  }

  private run(args: readonly string[], opts?: CallOptions, withRoot = true): Promise<string> {
    const full = withRoot ? ['--root', this.root, ...args] : [...args];
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, full, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts?.signal });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) =>
        reject(new RuntimeError(e.name === 'AbortError' ? 'Unavailable' : 'Internal', `runc ${args[0]}: ${e.message}`, { cause: e })),
      );
      child.on('close', (code) => {
        if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
        const msg = runcMessage(Buffer.concat(err).toString('utf8'));
        reject(new RuntimeError(classify(msg), `runc ${args.join(' ')}: ${msg}`));
      });
    });
  }
}

/** Extracts `msg="…"` from runc's logrus line, or returns the text trimmed. */
export function runcMessage(stderr: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  return (m?.[1] ? m[1].replace(/\\"/g, '"') : stderr).trim();
}

function classify(msg: string): RuntimeErrorCode {
  if (/does not exist|not found/i.test(msg) && !/executable file/.test(msg)) return 'NotFound';
  if (/not running|not paused|not stopped|paused container|container is stopped|cannot (exec|start|kill)/i.test(msg)) {
    return 'FailedPrecondition';
  }
  return 'Internal';
}

/**
 * The streams of a Container through the API: its log (`GET …/containers/NAME/log`),
 * attach and exec (client-node `Attach` / `Exec` over WebSocket), with the local
 * terminal put in raw mode and resized on SIGWINCH when a TTY is asked for.
 */
import type { Readable, Writable } from 'node:stream';
import { openChannelSession, type ChannelIo, type ExecStatus } from './channel-session.ts';
import type { Connection } from './connection.ts';

export type { ExecStatus } from './channel-session.ts';

export interface LogOptions {
  readonly follow?: boolean;
  readonly tailLines?: number;
  readonly timestamps?: boolean;
  readonly sinceSeconds?: number;
  readonly sinceTime?: string;
  /** One of the two streams (Kubernetes' `stream` of pod logs); default both, merged. */
  readonly stream?: 'Stdout' | 'Stderr';
}

/** Copies a Container's log to `out`; resolves when the server ends it (with `follow`: when the container exits). */
export async function copyLogs(conn: Connection, name: string, opts: LogOptions, out: Writable, signal?: AbortSignal): Promise<void> {
  const q = new URLSearchParams();
  if (opts.follow) q.set('follow', 'true');
  if (opts.tailLines !== undefined) q.set('tailLines', String(opts.tailLines));
  if (opts.timestamps) q.set('timestamps', 'true');
  if (opts.sinceSeconds !== undefined) q.set('sinceSeconds', String(opts.sinceSeconds));
  if (opts.sinceTime) q.set('sinceTime', opts.sinceTime);
  if (opts.stream) q.set('stream', opts.stream);
  const qs = q.toString();
  const res = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${conn.namespace}/containers/${name}/log${qs ? `?${qs}` : ''}`, signal ? { signal } : {});
  try {
    for await (const chunk of res) if (!out.write(chunk as Buffer)) await new Promise((r) => out.once('drain', r));
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
}

/** The container's stdout to this process's stdout and its stderr to stderr, as Docker's CLI shows a log (two followed streams). */
export async function copyLogsSplit(conn: Connection, name: string, opts: Omit<LogOptions, 'stream'>, signal?: AbortSignal): Promise<void> {
  await Promise.all([
    copyLogs(conn, name, { ...opts, stream: 'Stdout' }, process.stdout, signal),
    copyLogs(conn, name, { ...opts, stream: 'Stderr' }, process.stderr, signal),
  ]);
}

/** Puts the local terminal in raw mode while a TTY session runs; returns the undo. */
export function rawTerminal(enabled: boolean): () => void {
  const stdin = process.stdin;
  if (!enabled || !stdin.isTTY) return () => {};
  stdin.setRawMode(true);
  return () => {
    if (stdin.isTTY) stdin.setRawMode(false);
  };
}

export interface StreamSessionOptions {
  readonly stdin: boolean;
  readonly tty: boolean;
  /** Called once the stream is open (and the terminal size sent): `run -it` starts the container then, so no output is lost. */
  readonly onOpen?: () => Promise<void>;
}

/**
 * Attaches this process's stdio to the container's main process until the session
 * ends (the process exits, or stdin ends without a TTY). With a TTY the local
 * terminal is raw (Ctrl-C and Ctrl-D travel as bytes) and its size follows SIGWINCH.
 */
export async function attachSession(conn: Connection, name: string, opts: StreamSessionOptions): Promise<void> {
  const restore = rawTerminal(opts.tty && opts.stdin);
  try {
    const q = streamQuery({ stdin: opts.stdin, stdout: true, stderr: !opts.tty, tty: opts.tty });
    const session = await openChannelSession(conn, containerStreamPath(conn, name, 'attach', q), stdioOf(opts));
    if (opts.onOpen) await opts.onOpen().catch((err: unknown) => (session.close(), Promise.reject(err)));
    await session.ended;
  } finally {
    restore();
    if (opts.stdin) process.stdin.pause();
  }
}

/** This process's stdio for a session: stderr apart without a TTY, the terminal's size sent with one. */
function stdioOf(opts: { stdin: boolean; tty: boolean }, output = true): ChannelIo {
  return {
    stdout: output ? process.stdout : null,
    stderr: output && !opts.tty ? process.stderr : null,
    stdin: opts.stdin ? process.stdin : null,
    terminal: opts.tty && process.stdout.isTTY ? process.stdout : null,
  };
}

/** The streams a session asks for, as the exec and attach queries name them. */
function streamQuery(s: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) q.set(k, String(v));
  return q;
}

/** `/apis/berth.dev/v1/namespaces/NS/containers/NAME/VERB?QUERY`. */
function containerStreamPath(conn: Connection, name: string, verb: 'exec' | 'attach', q: URLSearchParams, extra = ''): string {
  const query = [q.toString().replaceAll('+', '%20'), extra].filter(Boolean).join('&');
  return `/apis/berth.dev/v1/namespaces/${encodeURIComponent(conn.namespace)}/containers/${encodeURIComponent(name)}/${verb}?${query}`;
}

/** Runs `command` in a container with the given streams (no TTY, no extensions); resolves with the final Status. */
export async function execWithStreams(conn: Connection, name: string, command: readonly string[], io: { stdout: Writable; stderr?: Writable; stdin?: Readable }): Promise<ExecStatus | undefined> {
  const q = streamQuery({ stdin: !!io.stdin, stdout: true, stderr: !!io.stderr, tty: false });
  for (const c of command) q.append('command', c);
  const session = await openChannelSession(conn, containerStreamPath(conn, name, 'exec', q), { stdout: io.stdout, stderr: io.stderr ?? null, stdin: io.stdin ?? null });
  return session.ended;
}

export interface ExecSessionOptions extends StreamSessionOptions {
  /** Docker's `exec -u`: `name`, `uid`, `uid:gid`, `name:group` (the node resolves it in the container). */
  readonly user?: string;
  /** Docker's `exec -e`: `NAME=VALUE` each, over the container's environment. */
  readonly env?: readonly string[];
  /** Docker's `exec -w`: an absolute directory in the container. */
  readonly workingDir?: string;
  /** Docker's `exec -d`: start it in the background, no output; with `tty`/`stdin` the process gets a terminal (this one's size) / an open stdin, as `exec -dit`. */
  readonly detach?: boolean;
}

/**
 * berth's extensions of the exec query (`user=`, `env=NAME=VALUE` repeated, `workingDir=`,
 * `detach=true`; see `api/types/exec-options.ts`), as a query string to append; empty
 * without them.
 */
export function execQueryExtensions(opts: Pick<ExecSessionOptions, 'user' | 'env' | 'workingDir' | 'detach'>): string {
  const q = new URLSearchParams();
  if (opts.user) q.set('user', opts.user);
  for (const e of opts.env ?? []) q.append('env', e);
  if (opts.workingDir) q.set('workingDir', opts.workingDir);
  if (opts.detach) q.set('detach', 'true');
  // encoded as client-node encodes the rest of the query (querystring: a space is %20, not +)
  return q.toString().replaceAll('+', '%20');
}

/**
 * Runs `command` in a running container with this process's stdio; resolves with
 * Docker's exit code: the command's, 126 when it cannot be executed (or the user is
 * unknown), 127 when it is not found, 1 with the message on stderr when the exec is refused.
 * With a TTY the local terminal is raw and its size goes with the start and every change.
 */
export async function execSession(conn: Connection, name: string, command: readonly string[], opts: ExecSessionOptions): Promise<number> {
  const detach = opts.detach ?? false;
  const restore = rawTerminal(opts.tty && opts.stdin && !detach);
  try {
    const q = streamQuery({ stdin: opts.stdin, stdout: !detach, stderr: !detach && !opts.tty, tty: opts.tty });
    for (const c of command) q.append('command', c);
    // detached: nothing relayed; a terminal only lends its size
    const io = detach ? stdioOf({ stdin: false, tty: opts.tty }, false) : stdioOf(opts);
    const session = await openChannelSession(conn, containerStreamPath(conn, name, 'exec', q, execQueryExtensions(opts)), io);
    return execExitCode(await session.ended);
  } finally {
    restore();
    if (opts.stdin) process.stdin.pause();
  }
}

/** Docker's exit code for an exec's final Status. */
export function execExitCode(status: ExecStatus | undefined): number {
  if (!status) return 1;
  if (status.status === 'Success') return 0;
  const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status.reason === 'NonZeroExitCode' && code !== undefined) return Number(code);
  const msg = status.message ?? 'exec failed';
  process.stderr.write(`Error response from daemon: ${msg}\n`);
  return cannotRunExitCode(msg) ?? 1;
}

/** 127 for "command not found", 126 for "cannot execute" (and Docker's unknown exec user) messages of the runtime; undefined for others. */
export function cannotRunExitCode(message: string): number | undefined {
  if (/executable file not found|no such file or directory|not found in \$PATH/i.test(message)) return 127;
  if (/permission denied|exec format error|is a directory|unable to find (user|group) /i.test(message)) return 126;
  return undefined;
}

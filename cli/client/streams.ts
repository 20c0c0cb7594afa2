/**
 * The streams of a Container through the API: its log (`GET …/containers/NAME/log`),
 * attach and exec (client-node `Attach` / `Exec` over WebSocket), with the local
 * terminal put in raw mode and resized on SIGWINCH when a TTY is asked for.
 */
import type { Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { Connection } from './connection.ts';

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

/** Waits until a WebSocket closes. */
const closed = (ws: WebSocket): Promise<void> =>
  new Promise((resolve) => {
    if (ws.readyState === ws.CLOSED) return resolve();
    ws.on('close', () => resolve());
  });

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
    const { Attach } = await import('@kubernetes/client-node');
    const ws = (await new Attach(await conn.loadKubeConfig()).attach(conn.namespace, name, name, process.stdout, opts.tty ? null : process.stderr, opts.stdin ? process.stdin : null, opts.tty)) as unknown as WebSocket;
    if (opts.onOpen) await opts.onOpen().catch((err: unknown) => (ws.close(), Promise.reject(err)));
    await closed(ws);
  } finally {
    restore();
    if (opts.stdin) process.stdin.pause();
  }
}

/** The final Status of an exec session, as the agent sends it on channel 3. */
export interface ExecStatus {
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { readonly causes?: readonly { readonly reason?: string; readonly message?: string }[] };
}

export interface ExecSessionOptions extends StreamSessionOptions {
  /** Docker's `exec -u`: `name`, `uid`, `uid:gid`, `name:group` (the node resolves it in the container). */
  readonly user?: string;
  /** Docker's `exec -e`: `NAME=VALUE` each, over the container's environment. */
  readonly env?: readonly string[];
  /** Docker's `exec -w`: an absolute directory in the container. */
  readonly workingDir?: string;
  /** Docker's `exec -d`: start it in the background; no streams (with neither `stdin` nor `tty`). */
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
 * client-node's `Exec` runs the session (terminal size, resizes, stdin); its path only
 * gets berth's `user`/`env`/`workingDir` appended.
 */
export async function execSession(conn: Connection, name: string, command: readonly string[], opts: ExecSessionOptions): Promise<number> {
  const restore = rawTerminal(opts.tty && opts.stdin);
  let status: ExecStatus | undefined;
  try {
    const { Exec } = await import('@kubernetes/client-node');
    const exec = new Exec(await conn.loadKubeConfig());
    const extra = execQueryExtensions(opts);
    if (extra) {
      const handler = exec.handler;
      exec.handler = { connect: (path, text, binary) => handler.connect(`${path}&${extra}`, text, binary) };
    }
    const out = opts.detach ? null : process.stdout;
    const ws = (await exec.exec(conn.namespace, name, name, [...command], out, opts.tty || opts.detach ? null : process.stderr, opts.stdin ? process.stdin : null, opts.tty, (s) => {
      status = s as ExecStatus;
    })) as unknown as WebSocket;
    await closed(ws);
  } finally {
    restore();
    if (opts.stdin) process.stdin.pause();
  }
  return execExitCode(status);
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

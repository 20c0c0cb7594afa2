/**
 * The options of a Container `exec` as a query carries them, read and checked in one
 * place for both the API server (which refuses a bad exec before dialing the node) and
 * the node agent's stream server (which runs it).
 */

/**
 * Kubernetes' `PodExecOptions` (`command`, repeated; `stdin`, `stdout`, `stderr`, `tty`)
 * and berth's extensions for Docker's `exec -u/-e/-w/-d`: `user` (`name`, `uid`, `uid:gid`,
 * `name:group`, resolved by the node in the container's /etc/passwd and /etc/group),
 * `env` (`NAME=VALUE`, repeated), `workingDir` (absolute) and `detach` (run in the
 * background: the session ends with Success once the process runs; no output streams;
 * `tty` and `stdin` give the process a terminal and an open stdin nobody writes to, as
 * `docker exec -dit`).
 */
export interface ContainerExecOptions {
  readonly command: readonly string[];
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
  readonly user?: string;
  readonly env?: readonly { readonly name: string; readonly value: string }[];
  readonly workingDir?: string;
  readonly detach?: boolean;
}

/** The streams of an exec or attach query; `fail(message)` is raised when none is asked for. */
export function parseStreamOptions(q: URLSearchParams, fail: (message: string) => Error): Pick<ContainerExecOptions, 'stdin' | 'stdout' | 'stderr' | 'tty'> {
  const flag = (n: string): boolean => q.get(n) === 'true' || q.get(n) === '1';
  const streams = { stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty') };
  if (!streams.stdin && !streams.stdout && !streams.stderr) throw fail('you must specify at least 1 of stdin, stdout, stderr');
  return streams;
}

/**
 * Reads and checks an exec's query; throws `fail(message)` for a missing command or
 * stream, a repeated or empty `user`/`workingDir`, a relative `workingDir`, or an `env`
 * without `NAME=`.
 */
export function parseExecOptions(q: URLSearchParams, fail: (message: string) => Error): ContainerExecOptions {
  const command = q.getAll('command');
  if (command.length === 0) throw fail('you must specify at least one command for the container');
  const detach = q.get('detach') === 'true' || q.get('detach') === '1';
  const streams = detach ? detachedStreams(q) : parseStreamOptions(q, fail);
  const single = (n: string): string | undefined => {
    const all = q.getAll(n);
    if (all.length > 1) throw fail(`${n} may be given only once`);
    if (all[0] === '') throw fail(`${n} must not be empty`);
    return all[0];
  };
  const user = single('user');
  const workingDir = single('workingDir');
  if (workingDir !== undefined && !workingDir.startsWith('/')) throw fail(`workingDir must be an absolute path, got ${JSON.stringify(workingDir)}`);
  const env = q.getAll('env').map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw fail(`env must be NAME=VALUE, got ${JSON.stringify(kv)}`);
    return { name: kv.slice(0, i), value: kv.slice(i + 1) };
  });
  return { command, ...streams, ...(user ? { user } : {}), ...(env.length ? { env } : {}), ...(workingDir ? { workingDir } : {}), ...(detach ? { detach } : {}) };
}

/** A detached exec's streams: no output (`stdout`/`stderr` asked for are ignored); `stdin` and `tty` as asked (kept on the node, not relayed). */
function detachedStreams(q: URLSearchParams): Pick<ContainerExecOptions, 'stdin' | 'stdout' | 'stderr' | 'tty'> {
  const flag = (n: string): boolean => q.get(n) === 'true' || q.get(n) === '1';
  return { stdin: flag('stdin'), stdout: false, stderr: false, tty: flag('tty') };
}

/**
 * Docker's container verbs over `Container` objects. Each verb edits the object
 * (`spec.state`, …) and waits for its status to say the edit took effect; none
 * touches the runtime. Every function resolves with the process exit code,
 * Docker's where Docker has one (125: berth failed, 126/127: the command cannot
 * run, otherwise the container's own code).
 */
import { readFileSync } from 'node:fs';
import type { Container } from '../../api/types/index.ts';
import { ApiStatusError, isAlreadyExists, isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from './connection.ts';
import { toContainer, toEnv, FlagError, type RunFlags } from './container-spec.ts';
import { containerStateWord, containerStatusText, ellipsis, humanDuration, renderFormat, renderTable } from './format.ts';
import { attachSession, cannotRunExitCode, copyLogsSplit, execSession } from './streams.ts';
import { loginSecretFor } from './login-secrets.ts';
import { ObjectWatch, waitForObject } from './wait.ts';

/** A verb's failure that Docker reports as `Error response from daemon: …` with exit code `code`. */
export class VerbError extends Error {
  override readonly name = 'VerbError';
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

const STALLED = 'Stalled';
const IMAGE_FAILURES = new Set(['ErrImagePull', 'ErrImageNeverPull', 'InvalidImageName']);

/** The current generation's observed status, or undefined while the agent has not caught up. */
const observed = (c: Container) => ((c.status?.observedGeneration ?? 0) >= (c.metadata.generation ?? 0) ? c.status : undefined);

/**
 * Why a Container cannot run its current spec, with Docker's exit code (125 for image
 * and spec problems, 126/127 when the command cannot run); undefined when nothing failed.
 */
export function startFailure(c: Container): { readonly message: string; readonly code: number } | undefined {
  const st = observed(c);
  if (!st) return undefined;
  const stalled = st.conditions?.find((x) => x.type === STALLED && x.status === 'True');
  const reason = stalled?.reason ?? st.reason ?? '';
  const message = stalled?.message ?? st.message ?? reason;
  if (stalled || IMAGE_FAILURES.has(reason) || (st.phase === 'Pending' && reason === 'ImagePullBackOff')) {
    return { message: `container ${c.metadata.name!}: ${message}`, code: cannotRunExitCode(message) ?? 125 };
  }
  return undefined;
}

/** The short ID Docker shows: 12 characters of the runtime container ID, or of the object's uid before it has one. */
export const shortId = (c: Container): string => (c.status?.containerID ?? (c.metadata.uid ?? '').replace(/-/g, '')).slice(0, 12);

/** Finds a Container by name, or by a prefix of its runtime container ID as Docker does. */
export async function findContainer(conn: Connection, ref: string): Promise<Container> {
  try {
    return await conn.client.get(ContainerKind, conn.namespace, ref);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (/^[0-9a-f]{3,64}$/.test(ref)) {
    const list = await conn.client.list(ContainerKind, { namespace: conn.namespace });
    const hits = list.items.filter((c) => c.status?.containerID?.startsWith(ref));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw new VerbError(`multiple containers match ID prefix ${ref}: ${hits.map((h) => h.metadata.name!).join(', ')}`);
  }
  throw new VerbError(`No such container: ${ref}`);
}

/** `docker ps` columns of one Container, as `--format` fields. */
export function containerRow(c: Container, nowMs: number): Record<string, unknown> {
  const st = c.status ?? {};
  const cmd = [...(c.spec.command ?? []), ...(c.spec.args ?? [])].join(' ');
  const ports = (st.ports?.length ? st.ports : (c.spec.ports ?? [])).map((p) => {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    return p.hostPort ? `${p.hostIP ?? '127.0.0.1'}:${p.hostPort}->${p.containerPort}/${proto}` : `${p.containerPort}/${proto}`;
  });
  const facts = { phase: st.phase, startedAt: st.startedAt, finishedAt: st.finishedAt, exitCode: st.exitCode, reason: st.reason, health: st.health?.status };
  const created = c.metadata.creationTimestamp ?? '';
  return {
    ID: shortId(c),
    Image: c.spec.image,
    Command: `"${ellipsis(cmd, 20)}"`,
    CreatedAt: created,
    RunningFor: `${humanDuration(created ? nowMs - Date.parse(created) : 0)} ago`,
    Ports: ports.join(', '),
    State: containerStateWord(facts),
    Status: containerStatusText(facts, nowMs),
    Names: c.metadata.name!,
    Labels: Object.entries(c.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
    Networks: (c.spec.networks ?? []).map((n) => n.name).join(','),
    Mounts: (c.spec.volumeMounts ?? []).map((m) => m.name).join(','),
    Node: st.nodeName ?? c.spec.nodeName ?? '',
  };
}

const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
  State: 'STATE', Status: 'STATUS', Names: 'NAMES', Labels: 'LABELS', Networks: 'NETWORKS', Mounts: 'MOUNTS', Node: 'NODE',
};
const PS_DEFAULT = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

export interface PsFlags {
  readonly all?: boolean;
  readonly quiet?: boolean;
  readonly filter?: readonly string[];
  readonly format?: string;
  readonly noTrunc?: boolean;
}

/** `docker ps --filter` keys berth understands, as a predicate over rows (label= goes to the label selector). */
function psFilter(filters: readonly string[]): { labelSelector?: string; keep: (c: Container, row: Record<string, unknown>) => boolean } {
  const labels: string[] = [];
  const tests: ((c: Container, row: Record<string, unknown>) => boolean)[] = [];
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new FlagError(`--filter ${JSON.stringify(f)}: expected KEY=VALUE`);
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    switch (key) {
      case 'label':
        labels.push(value);
        break;
      case 'name':
        tests.push((c) => c.metadata.name!.includes(value.replace(/^\//, '')));
        break;
      case 'id':
        tests.push((c) => (c.status?.containerID ?? '').startsWith(value));
        break;
      case 'status':
        tests.push((_c, row) => row.State === value);
        break;
      case 'ancestor':
        tests.push((c) => c.spec.image === value || c.spec.image.startsWith(`${value}:`));
        break;
      case 'network':
        tests.push((c) => (c.spec.networks ?? []).some((n) => n.name === value));
        break;
      case 'exited':
        tests.push((c) => c.status?.phase === 'Exited' && String(c.status.exitCode) === value);
        break;
      default:
        throw new FlagError(`--filter ${key}: not supported (label, name, id, status, ancestor, network, exited)`);
    }
  }
  return { ...(labels.length ? { labelSelector: labels.join(',') } : {}), keep: (c, row) => tests.every((t) => t(c, row)) };
}

/** `ps`: the table of containers (running ones unless `-a`). */
export async function ps(conn: Connection, flags: PsFlags, out: (s: string) => void): Promise<number> {
  const f = psFilter(flags.filter ?? []);
  const hasStatusFilter = (flags.filter ?? []).some((x) => x.startsWith('status=') || x.startsWith('exited='));
  const list = await conn.client.list(ContainerKind, { namespace: conn.namespace, ...(f.labelSelector ? { labelSelector: f.labelSelector } : {}) });
  const now = Date.now();
  const rows = list.items
    .sort((a, b) => Date.parse(b.metadata.creationTimestamp ?? '') - Date.parse(a.metadata.creationTimestamp ?? ''))
    .map((c) => ({ c, row: containerRow(c, now) }))
    .filter(({ c, row }) => (flags.all || hasStatusFilter || row.State === 'running' || row.State === 'paused' || row.State === 'restarting') && f.keep(c, row))
    .map(({ c, row }) => (flags.noTrunc ? { ...row, ID: c.status?.containerID ?? row.ID, Command: `"${[...(c.spec.command ?? []), ...(c.spec.args ?? [])].join(' ')}"` } : row));
  if (flags.quiet) out(rows.map((r) => `${r.ID}\n`).join(''));
  else out(renderFormat(flags.format ?? PS_DEFAULT, rows, PS_HEADERS));
  return 0;
}

/** Patches the spec and waits until the agent observed the new generation and `done` holds. */
async function patchSpecAndWait(conn: Connection, name: string, spec: Record<string, unknown>, done: (c: Container) => boolean, timeoutMs = 120_000): Promise<Container> {
  const written = await conn.client.patch(ContainerKind, conn.namespace, name, { spec });
  const gen = written.metadata.generation ?? 0;
  const out = await waitForObject(conn, ContainerKind, name, (c) => {
    if (!c) return false;
    if ((c.status?.observedGeneration ?? 0) < gen) return false;
    const failed = startFailure(c);
    if (failed) throw new VerbError(failed.message, failed.code);
    return done(c);
  }, { timeoutMs });
  return out!;
}

const isUp = (c: Container) => c.status?.phase === 'Running' || c.status?.phase === 'Paused';

/** `start`: state Running, and a fresh start of a container that exited by itself (a spec edit, as the reconciler expects). */
export async function start(conn: Connection, name: string): Promise<void> {
  const c = await findContainer(conn, name);
  const t0 = Date.now() - 1000;
  if ((c.spec.state ?? 'Running') === 'Running' && c.status?.phase === 'Exited') {
    await patchSpecAndWait(conn, c.metadata.name!, { state: 'Stopped' }, () => true);
  }
  await patchSpecAndWait(conn, c.metadata.name!, { state: 'Running' }, (x) =>
    x.status?.phase === 'Running' || x.status?.phase === 'Paused' || (x.status?.phase === 'Exited' && Date.parse(x.status.finishedAt ?? '') >= t0));
}

/** `stop [-t N]`: state Stopped (with the grace period when given), waits until the process is gone. */
export async function stop(conn: Connection, name: string, timeoutSeconds?: number): Promise<void> {
  const c = await findContainer(conn, name);
  await patchSpecAndWait(conn, c.metadata.name!, { state: 'Stopped', ...(timeoutSeconds !== undefined ? { stopGracePeriodSeconds: timeoutSeconds } : {}) }, (x) => !isUp(x));
}

/** `pause` / `unpause`. */
export async function setPaused(conn: Connection, name: string, paused: boolean): Promise<void> {
  const c = await findContainer(conn, name);
  if (paused && c.status?.phase !== 'Running' && c.status?.phase !== 'Paused') throw new VerbError(`container ${c.metadata.name!} is not running`);
  if (!paused && c.status?.phase !== 'Paused') throw new VerbError(`container ${c.metadata.name!} is not paused`);
  await patchSpecAndWait(conn, c.metadata.name!, { state: paused ? 'Paused' : 'Running' }, (x) => x.status?.phase === (paused ? 'Paused' : 'Running'));
}

/**
 * `kill [-s SIGNAL]`: KILL (the default, or 9) stops at once, declaratively (state Stopped,
 * grace period 0). Any other signal goes to the main process through the Container's `kill`
 * subresource (`POST …/kill?signal=`), which checks it; the container runs on if the process
 * survives it, and an exit it causes shows in status as any other.
 */
export async function kill(conn: Connection, name: string, signal = 'KILL'): Promise<void> {
  const sig = signal.trim().toUpperCase().replace(/^SIG/, '');
  const c = await findContainer(conn, name);
  const n = c.metadata.name!;
  if (!isUp(c)) throw new VerbError(`cannot kill container: ${n}: container is not running`);
  if (sig === 'KILL' || sig === '9') {
    await patchSpecAndWait(conn, n, { state: 'Stopped', stopGracePeriodSeconds: 0 }, (x) => !isUp(x));
    return;
  }
  const path = `/apis/berth.dev/v1/namespaces/${encodeURIComponent(conn.namespace)}/containers/${encodeURIComponent(n)}/kill?signal=${encodeURIComponent(signal.trim())}`;
  try {
    (await conn.request('POST', path)).resume();
  } catch (err) {
    // not running (any more), or paused: Docker's "cannot kill container: NAME: …"
    if (err instanceof ApiStatusError && err.code === 409) throw new VerbError(`cannot kill container: ${n}: ${err.status?.message ?? err.message}`);
    throw err;
  }
}

/**
 * `rm [-f]`: deletes the object (the agent removes the runtime container first) and waits
 * until it is gone. `-f` deletes with a grace period of 0: a running process is killed
 * (SIGKILL) at once, as `docker rm -f` does, not stopped with its stop signal.
 */
export async function remove(conn: Connection, name: string, force: boolean): Promise<void> {
  const c = await findContainer(conn, name);
  if (!force && isUp(c)) {
    throw new VerbError(`cannot remove container "${c.metadata.name!}": container is ${c.status?.phase === 'Paused' ? 'paused' : 'running'}: stop the container before removing or force remove`);
  }
  await deleteAndWait(conn, c.metadata.name!, force ? 0 : undefined);
}

async function deleteAndWait(conn: Connection, name: string, gracePeriodSeconds?: number): Promise<void> {
  try {
    await conn.client.delete(ContainerKind, conn.namespace, name, gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitForObject(conn, ContainerKind, name, (c) => c === undefined, { timeoutMs: 60_000 });
}

/** `wait`: blocks until the container exits; prints and returns its exit code. */
export async function waitExit(conn: Connection, name: string): Promise<number> {
  const c = await findContainer(conn, name);
  const done = await waitForObject(conn, ContainerKind, c.metadata.name!, (x) => {
    if (!x) throw new VerbError(`container ${c.metadata.name!} was removed`);
    const failed = startFailure(x);
    if (failed) throw new VerbError(failed.message, failed.code);
    return x.status?.phase === 'Exited' && x.status.reason !== 'BackOff';
  });
  return done!.status?.exitCode ?? 0;
}

/** `port CONTAINER [PORT[/PROTO]]`: the published ports as bound. */
export async function port(conn: Connection, name: string, which: string | undefined, out: (s: string) => void): Promise<number> {
  const c = await findContainer(conn, name);
  const ports = c.status?.ports ?? [];
  const [num, proto] = which ? which.split('/') : [];
  const hits = ports.filter((p) => !num || (String(p.containerPort) === num && (!proto || (p.protocol ?? 'TCP').toLowerCase() === proto.toLowerCase())));
  if (which && hits.length === 0) throw new VerbError(`No public port '${which}' published for ${c.metadata.name!}`);
  out(hits.map((p) => (which ? '' : `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()} -> `) + `${p.hostIP ?? '127.0.0.1'}:${p.hostPort}\n`).join(''));
  return 0;
}

/** `rename OLD NEW`: a replace — a new object with the same spec, then the old one deleted. */
export async function rename(conn: Connection, from: string, to: string): Promise<void> {
  const c = await findContainer(conn, from);
  const { labels, annotations } = c.metadata;
  await conn.client.create({
    apiVersion: 'berth.dev/v1', kind: 'Container',
    metadata: { name: to, namespace: conn.namespace, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: c.spec,
  } as Container);
  await deleteAndWait(conn, c.metadata.name!);
}

export interface LogsFlags {
  readonly follow?: boolean;
  readonly tail?: string;
  readonly timestamps?: boolean;
  readonly since?: string;
}

/** `--since` as Docker takes it: a duration (`10m`, `1h30m`, `40s`) or a timestamp. */
export function toSince(v: string, nowMs: number): { sinceSeconds: number } | { sinceTime: string } {
  const d = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (d && v !== '') return { sinceSeconds: Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0) };
  if (/^\d+(\.\d+)?$/.test(v)) return { sinceSeconds: Math.max(1, Math.ceil(nowMs / 1000 - Number(v))) };
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new FlagError(`--since ${JSON.stringify(v)}: expected a duration (10m) or a timestamp (2024-01-02T15:04:05Z)`);
  return { sinceTime: new Date(t).toISOString() };
}

/** `logs [-f] [--tail N] [-t] [--since X]`. */
export async function logs(conn: Connection, name: string, flags: LogsFlags): Promise<number> {
  const c = await findContainer(conn, name);
  const tail = flags.tail === undefined || flags.tail === 'all' ? undefined : Number(flags.tail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new FlagError(`--tail ${JSON.stringify(flags.tail)}: expected a number or "all"`);
  await copyLogsSplit(conn, c.metadata.name!, {
    follow: flags.follow ?? false,
    timestamps: flags.timestamps ?? false,
    ...(tail !== undefined ? { tailLines: tail } : {}),
    ...(flags.since ? toSince(flags.since, Date.now()) : {}),
  });
  return 0;
}

export interface ExecFlags {
  readonly interactive?: boolean;
  readonly tty?: boolean;
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly user?: string;
  readonly detach?: boolean;
}

/**
 * What `-u`, `-e` and `-w` ask of an exec: the exec API's `user`, `env` and `workingDir`
 * (berth's extensions of the Kubernetes exec options), which the node applies to the
 * process itself, as Docker does; the command runs as given. `-e NAME` alone takes this
 * client's value or is skipped, as for `run`. A relative `-w` is refused.
 */
export function execOptions(flags: ExecFlags, environ: Readonly<Record<string, string | undefined>>): { user?: string; env?: string[]; workingDir?: string; detach?: boolean } {
  if (flags.workdir && !flags.workdir.startsWith('/')) throw new FlagError(`exec -w ${flags.workdir}: the working directory must be an absolute path`);
  const env = toEnv({ env: flags.env ?? [] }, environ).map((e) => `${e.name}=${e.value}`);
  return { ...(flags.user ? { user: flags.user } : {}), ...(env.length ? { env } : {}), ...(flags.workdir ? { workingDir: flags.workdir } : {}), ...(flags.detach ? { detach: true } : {}) };
}

/** `exec [-i] [-t] [-d] [-e] [-w] [-u] CONTAINER CMD…`: the command's exit code (0 once started with `-d`). */
export async function exec(conn: Connection, name: string, command: readonly string[], flags: ExecFlags): Promise<number> {
  const extensions = execOptions(flags, process.env);
  const c = await findContainer(conn, name);
  if (c.status?.phase !== 'Running' && c.status?.phase !== 'Paused') throw new VerbError(`container ${c.metadata.name!} is not running`);
  return execSession(conn, c.metadata.name!, command, { stdin: flags.interactive ?? false, tty: flags.tty ?? false, ...extensions });
}

/** `attach CONTAINER`: this terminal on the main process until it exits; its exit code. */
export async function attach(conn: Connection, name: string, noStdin: boolean): Promise<number> {
  const c = await findContainer(conn, name);
  if (!isUp(c)) throw new VerbError('You cannot attach to a stopped container, start it first');
  await attachSession(conn, c.metadata.name!, { stdin: !noStdin && (c.spec.stdin ?? false), tty: c.spec.tty ?? false });
  return waitExit(conn, c.metadata.name!);
}

export interface RunOptions {
  readonly flags: RunFlags & { readonly detach?: boolean; readonly envFile?: readonly string[] };
  readonly image: string;
  readonly args: readonly string[];
  readonly out: (s: string) => void;
}

/** Reads `--env-file`s, naming the file that cannot be read. */
function envFiles(paths: readonly string[] | undefined): { path: string; text: string }[] {
  return (paths ?? []).map((path) => {
    try {
      return { path, text: readFileSync(path, 'utf8') };
    } catch (err) {
      throw new FlagError(`--env-file ${path}: ${(err as Error).message}`);
    }
  });
}

/** Creates the Container of `run`/`create`; a taken name is Docker's conflict (125). */
async function createContainer(conn: Connection, o: RunOptions, state: 'Running' | 'Stopped', extra: { autoRemove?: boolean } = {}): Promise<Container> {
  const out = process.stdout;
  const consoleSize = out.isTTY && out.columns > 0 && out.rows > 0 ? { width: out.columns, height: out.rows } : undefined;
  const obj = toContainer({ ...o.flags, envFiles: envFiles(o.flags.envFile) }, { namespace: conn.namespace, image: o.image, args: o.args, state, environ: process.env, ...(consoleSize ? { consoleSize } : {}) });
  if (extra.autoRemove) obj.spec.autoRemove = true;
  // As Docker pulls with what `docker login` stored: the login Secret of the image's registry.
  const login = await loginSecretFor(conn, o.image);
  if (login) obj.spec.imagePullSecrets = [{ name: login }];
  try {
    return await conn.client.create(obj);
  } catch (err) {
    if (isAlreadyExists(err)) throw new VerbError(`Conflict. The container name "${obj.metadata.name!}" is already in use. You have to remove (or rename) that container to be able to reuse that name.`, 125);
    throw err;
  }
}

/** The container's process started (or already ended) for generation `gen`; throws on a start failure or a deletion. */
function startedFor(name: string, gen: number): (x: Container | undefined) => boolean {
  return (x) => {
    if (!x) throw new VerbError(`container ${name} was removed`, 125);
    const failed = startFailure(x);
    if (failed) throw new VerbError(failed.message, failed.code);
    const st = x.status;
    return (st?.observedGeneration ?? 0) >= gen && !!st?.containerID && (st.phase === 'Running' || st.phase === 'Paused' || st.phase === 'Exited');
  };
}

/** The runtime container exists for generation `gen` (phase Created, or later); throws on a failure or a deletion. */
function createdFor(name: string, gen: number): (x: Container | undefined) => boolean {
  return (x) => {
    if (!x) throw new VerbError(`container ${name} was removed`, 125);
    const failed = startFailure(x);
    if (failed) throw new VerbError(failed.message, failed.code);
    return (x.status?.observedGeneration ?? 0) >= gen && !!x.status?.containerID;
  };
}

/** The process ended for good (not an exit the restart policy is about to undo). */
const exitedForGood = (x: Container): boolean => x.status?.phase === 'Exited' && x.status.reason !== 'BackOff';

/** `create`: the Container with state Stopped, once the runtime has created it; prints its ID. */
export async function create(conn: Connection, o: RunOptions): Promise<number> {
  const c = await createContainer(conn, o, 'Stopped');
  const done = await waitForObject(conn, ContainerKind, c.metadata.name!, (x) => {
    if (!x) throw new VerbError(`container ${c.metadata.name!} was removed`, 125);
    const failed = startFailure(x);
    if (failed) throw new VerbError(failed.message, failed.code);
    return !!x.status?.containerID;
  }, { timeoutMs: 300_000 });
  o.out(`${done!.status?.containerID}\n`);
  return 0;
}

/**
 * `run`: creates the Container and, unless `-d`, follows it as `docker run` does —
 * its output (attach with `-i`/`-t`, else the followed log), then its exit code.
 * One watch follows the object from its creation to its deletion. `--rm` deletes the
 * object when the process ends, whatever happened; with `-d` the node agent does
 * (`spec.autoRemove`), as Docker's daemon does. Ctrl-C without a TTY stops the
 * container (its stop signal), twice exits at once.
 */
export async function run(conn: Connection, o: RunOptions): Promise<number> {
  const detach = o.flags.detach ?? false;
  const interactive = !detach && ((o.flags.interactive ?? false) || (o.flags.tty ?? false));
  // Attached to a terminal, Docker's order: create, attach, start — no early output lost, the size set before the process runs.
  const c = await createContainer(conn, o, interactive ? 'Stopped' : 'Running', { autoRemove: (o.flags.rm ?? false) && detach });
  const name = c.metadata.name!;
  const watch = await ObjectWatch.open(conn, ContainerKind, name, c);
  const removeAtEnd = (o.flags.rm ?? false) && !detach;
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    void conn.client.patch(ContainerKind, conn.namespace, name, { spec: { state: 'Stopped' } }).catch(() => {});
  };
  // Ctrl-C stops the container unless it travels to it as a byte (a raw terminal: -i and -t).
  const proxiesSignals = !(o.flags.interactive && o.flags.tty && process.stdin.isTTY);
  try {
    if (interactive) {
      await watch.until(createdFor(name, c.metadata.generation ?? 1));
      if (proxiesSignals) process.on('SIGINT', onInterrupt);
      let gen = 0;
      await attachSession(conn, name, {
        stdin: o.flags.interactive ?? false,
        tty: o.flags.tty ?? false,
        onOpen: async () => {
          gen = (await conn.client.patch(ContainerKind, conn.namespace, name, { spec: { state: 'Running' } })).metadata.generation ?? 0;
        },
      });
      await watch.until(startedFor(name, gen));
    } else {
      const up = (await watch.until(startedFor(name, c.metadata.generation ?? 1)))!;
      if (detach) {
        o.out(`${up.status?.containerID}\n`);
        return 0;
      }
      process.on('SIGINT', onInterrupt);
      await copyLogsSplit(conn, name, { follow: true });
    }
    const exited = await watch.until((x) => {
      if (!x) throw new VerbError(`container ${name} was removed`, 125);
      return exitedForGood(x);
    });
    return exited!.status?.exitCode ?? 0;
  } catch (err) {
    if (err instanceof VerbError && err.code === 1) throw new VerbError(err.message, 125);
    throw err;
  } finally {
    process.off('SIGINT', onInterrupt);
    if (removeAtEnd) await removeWatched(conn, watch).catch((err: unknown) => process.stderr.write(`berth: removing ${name}: ${(err as Error).message}\n`));
    watch.close();
  }
}

/** Deletes the watched Container and waits, on the same watch, until it is gone. */
async function removeWatched(conn: Connection, watch: ObjectWatch<Container>): Promise<void> {
  if (watch.gone) return;
  try {
    await conn.client.delete(ContainerKind, conn.namespace, watch.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return;
  }
  await watch.until((x) => x === undefined, { timeoutMs: 60_000 });
}

/** `inspect` of containers: the objects as stored. */
export async function inspectContainers(conn: Connection, names: readonly string[]): Promise<Container[]> {
  return Promise.all(names.map((n) => findContainer(conn, n)));
}

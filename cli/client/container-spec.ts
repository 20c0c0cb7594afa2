/**
 * `docker run` / `docker create` flags → a berth `Container` object. Pure: the
 * environment and files it needs (`-e NAME` without a value, `--env-file`) are
 * passed in. Flags berth's API cannot express are rejected with a `FlagError`
 * naming the flag, never dropped. Host paths in `-v` and `--mount type=bind` become
 * `spec.bindMounts` (the server accepts only paths under `berth server --allow-bind-mount`).
 */
import { resolve } from 'node:path';
import type { Container, ContainerPort, ContainerSpec, EnvVar, TmpfsMount, VolumeMount } from '../../api/types/index.ts';

/** A command-line flag whose value berth cannot honour; the message names the flag. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

/** The flags of `run` and `create` as commander parses them (repeatable flags are arrays). */
export interface RunFlags {
  readonly name?: string;
  readonly env?: readonly string[];
  /** Contents of each `--env-file`, in order. */
  readonly envFiles?: readonly { readonly path: string; readonly text: string }[];
  readonly publish?: readonly string[];
  readonly volume?: readonly string[];
  readonly mount?: readonly string[];
  readonly tmpfs?: readonly string[];
  readonly network?: string;
  readonly restart?: string;
  readonly rm?: boolean;
  readonly interactive?: boolean;
  readonly tty?: boolean;
  readonly memory?: string;
  readonly cpus?: string;
  readonly pidsLimit?: string;
  readonly workdir?: string;
  readonly user?: string;
  readonly entrypoint?: string;
  readonly hostname?: string;
  readonly label?: readonly string[];
  readonly pull?: string;
  readonly stopSignal?: string;
  readonly stopTimeout?: string;
}

export interface ToContainerOptions {
  readonly namespace: string;
  readonly image: string;
  /** Words after the image: the new CMD (or the arguments of `--entrypoint`). */
  readonly args: readonly string[];
  /** Desired `spec.state`: `Running` for run, `Stopped` for create. */
  readonly state: 'Running' | 'Stopped';
  /** The client's environment, for `-e NAME` and `NAME` lines of env files. */
  readonly environ: Readonly<Record<string, string | undefined>>;
  /** Picks the name when `--name` is absent; default random. */
  readonly randomSuffix?: () => string;
  /** The local terminal's size, when there is one: with `-t` the container's terminal starts at it (Docker's `ConsoleSize`). */
  readonly consoleSize?: { readonly width: number; readonly height: number };
}

/**
 * Docker's `--restart` words → `spec.restartPolicy` and, for `on-failure:N`,
 * `spec.restartMaxRetries` (`unless-stopped` is `Always`: berth never restarts a
 * Stopped container).
 */
export function toRestart(v: string | undefined): Pick<ContainerSpec, 'restartPolicy' | 'restartMaxRetries'> {
  if (v === undefined || v === 'no') return { restartPolicy: 'Never' };
  if (v === 'always' || v === 'unless-stopped') return { restartPolicy: 'Always' };
  if (v === 'on-failure') return { restartPolicy: 'OnFailure' };
  const m = /^on-failure:(\d+)$/.exec(v);
  if (m) {
    const n = Number(m[1]);
    if (n > 2 ** 31 - 1) throw new FlagError(`--restart ${v}: the retry count is too large`);
    return { restartPolicy: 'OnFailure', restartMaxRetries: n };
  }
  throw new FlagError(`--restart ${JSON.stringify(v)}: must be no, always, on-failure[:max-retries] or unless-stopped`);
}

/** Docker's `--memory` (`64m`, `1g`, `512k`, `1048576`, `100b`) → a Kubernetes quantity (`64Mi`, `1Gi`, `512Ki`, bytes). */
export function toMemoryQuantity(v: string): string | number {
  const m = /^(\d+)([bkmg])?$/i.exec(v.trim());
  if (!m) throw new FlagError(`--memory ${JSON.stringify(v)}: expected a number with an optional unit b, k, m or g (e.g. 64m)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  return unit === 'b' ? Number(m[1]) : `${m[1]}${unit.toUpperCase()}i`;
}

/** The most ports one `-p` range may publish (each becomes a `spec.ports` entry). */
export const MAX_PORT_RANGE = 1024;

/**
 * `-p` → `ContainerPort`s: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, and
 * Docker's ranges — `8000-8001:80-81` (pairwise, ranges of one length), `80-81` (each on
 * a host port chosen for it) — each optionally `/udp`. A host range for one container
 * port (Docker picks one free port in it) is refused: name the host port.
 */
export function toContainerPorts(v: string): ContainerPort[] {
  const m = /^(?:(?:(\[[^\]]+\]|[^:]*):)?(\d*(?:-\d+)?):)?(\d+(?:-\d+)?)(?:\/(tcp|udp))?$/i.exec(v.trim());
  if (!m) throw new FlagError(`-p ${JSON.stringify(v)}: expected [hostIP:][hostPort[-end]:]containerPort[-end][/tcp|udp]`);
  const [, hostIP, hostPorts, containerPorts, proto] = m;
  const container = portRange(containerPorts!, v);
  const host = hostPorts ? portRange(hostPorts, v) : undefined;
  if (host && host.length !== container.length) {
    throw new FlagError(
      container.length === 1
        ? `-p ${v}: a host port range for one container port is not supported: name one host port`
        : `-p ${v}: the host range has ${host.length} ports, the container range ${container.length}`,
    );
  }
  return container.map((containerPort, i) => {
    const port: ContainerPort = { containerPort };
    if (host) port.hostPort = host[i]!;
    if (hostIP) port.hostIP = hostIP.replace(/^\[|\]$/g, '');
    if (proto) port.protocol = proto.toUpperCase() as 'TCP' | 'UDP';
    return port;
  });
}

/** `80` or `8000-8010` → the port numbers, checked (1–65535, start ≤ end, at most `MAX_PORT_RANGE`). */
function portRange(text: string, flag: string): number[] {
  const [start, end = start] = text.split('-').map(Number) as [number, number?];
  for (const p of [start, end]) if (p < 1 || p > 65535) throw new FlagError(`-p ${flag}: port ${p} is out of range (1-65535)`);
  if (end < start) throw new FlagError(`-p ${flag}: the range ${text} ends before it starts`);
  if (end - start + 1 > MAX_PORT_RANGE) throw new FlagError(`-p ${flag}: the range ${text} has more than ${MAX_PORT_RANGE} ports`);
  return Array.from({ length: end - start + 1 }, (_, i) => start + i);
}

const isHostPath = (s: string) => s.startsWith('/') || s.startsWith('.') || s.startsWith('~');

type BindMount = NonNullable<ContainerSpec['bindMounts']>[number];

/**
 * `-v SOURCE:/path[:ro|rw][,nocopy]` → a `VolumeMount` when SOURCE is a volume name, a
 * `BindMount` (`spec.bindMounts`) when it is a host path (absolute, or `./…`
 * resolved against `cwd` as the Docker CLI does). Anonymous volumes are rejected.
 */
export function toMountFlag(v: string, cwd = process.cwd()): { volume: VolumeMount } | { bind: BindMount } {
  const parts = v.split(':');
  if (parts.length === 1) throw new FlagError(`-v ${v}: anonymous volumes are not supported; name one: -v NAME:${v}`);
  const [source, target, mode, ...rest] = parts;
  if (rest.length > 0 || !source || !target) throw new FlagError(`-v ${JSON.stringify(v)}: expected VOLUME:/path[:ro] or /host/path:/path[:ro]`);
  if (!target.startsWith('/')) throw new FlagError(`-v ${v}: the mount path ${JSON.stringify(target)} must be absolute`);
  const modes = (mode ?? '').split(',').filter(Boolean);
  for (const m of modes) if (m !== 'ro' && m !== 'rw' && m !== 'nocopy') throw new FlagError(`-v ${v}: mount option ${JSON.stringify(m)} is not supported (ro, rw or nocopy)`);
  const readOnly = modes.includes('ro') ? { readOnly: true } : {};
  if (source.startsWith('~')) throw new FlagError(`-v ${v}: write the host path out in full (~ is not expanded)`);
  if (isHostPath(source)) {
    if (modes.includes('nocopy')) throw new FlagError(`-v ${v}: nocopy is for volumes, not host paths`);
    return { bind: { hostPath: resolve(cwd, source), mountPath: target, ...readOnly } };
  }
  return { volume: { name: source, mountPath: target, ...readOnly, ...(modes.includes('nocopy') ? { noCopy: true } : {}) } };
}

/** `-v name:/path[:ro|rw]` → a `VolumeMount`; throws for host paths (see `toMountFlag`). */
export function toVolumeMount(v: string): VolumeMount {
  const m = toMountFlag(v);
  if ('bind' in m) throw new FlagError(`-v ${v}: a host path, not a volume`);
  return m.volume;
}

/** `--mount type=volume|tmpfs,source=…,target=…[,readonly][,volume-nocopy]` → a volume mount or a tmpfs. */
export function toMount(v: string, cwd = process.cwd()): { volume: VolumeMount } | { tmpfs: TmpfsMount } | { bind: BindMount } {
  const kv = new Map<string, string>();
  for (const field of v.split(',')) {
    const [k, ...val] = field.split('=');
    kv.set(k!.trim(), val.join('='));
  }
  const type = kv.get('type') ?? 'volume';
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  if (!target) throw new FlagError(`--mount ${v}: target= is required`);
  const readOnly = kv.has('readonly') || kv.has('ro');
  if (type === 'bind') {
    const source = kv.get('source') ?? kv.get('src');
    if (!source || !isHostPath(source)) throw new FlagError(`--mount ${v}: type=bind needs source=/host/path`);
    return { bind: { hostPath: resolve(cwd, source), mountPath: target, ...(readOnly ? { readOnly: true } : {}) } };
  }
  if (type === 'tmpfs') {
    const size = kv.get('tmpfs-size');
    return { tmpfs: { mountPath: target, ...(size ? { sizeBytes: Number(size) } : {}) } };
  }
  if (type !== 'volume') throw new FlagError(`--mount ${v}: type=${type} is not supported (volume, bind or tmpfs)`);
  const source = kv.get('source') ?? kv.get('src');
  if (!source) throw new FlagError(`--mount ${v}: source= is required (anonymous volumes are not supported)`);
  const noCopy = kv.has('volume-nocopy') && kv.get('volume-nocopy') !== 'false';
  return { volume: { name: source, mountPath: target, ...(readOnly ? { readOnly: true } : {}), ...(noCopy ? { noCopy: true } : {}) } };
}

/** `-e` values and `--env-file` contents → `EnvVar`s, later ones winning as in Docker; `NAME` alone takes the client's value or is skipped. */
export function toEnv(opts: Pick<RunFlags, 'env' | 'envFiles'>, environ: Readonly<Record<string, string | undefined>>): EnvVar[] {
  const out = new Map<string, string>();
  const add = (entry: string, where: string) => {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (!name || /\s/.test(name)) throw new FlagError(`${where}: invalid environment variable ${JSON.stringify(entry)}`);
    if (eq >= 0) out.set(name, entry.slice(eq + 1));
    else if (environ[name] !== undefined) out.set(name, environ[name]!);
  };
  for (const f of opts.envFiles ?? []) {
    f.text.split(/\r?\n/).forEach((line, i) => {
      const t = line.replace(/^\s+/, '');
      if (t === '' || t.startsWith('#')) return;
      add(t, `--env-file ${f.path}:${i + 1}`);
    });
  }
  for (const e of opts.env ?? []) add(e, `-e ${e}`);
  return [...out].map(([name, value]) => ({ name, value }));
}

/** `-l k=v` → labels. */
export function toLabels(labels: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels ?? []) {
    const eq = l.indexOf('=');
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

const PULL: Record<string, ContainerSpec['imagePullPolicy']> = { always: 'Always', missing: 'IfNotPresent', never: 'Never' };

/** A name for a container without `--name`: the image's last path word and a random suffix (`busybox-k3x9q`), valid as metadata.name. */
export function generatedName(image: string, suffix: string): string {
  const base = image.replace(/@.*$/, '').split('/').pop()!.replace(/:.*$/, '').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return `${base || 'ctr'}-${suffix}`;
}

/** Five hex digits. Math.random, as Docker's name generator uses math/rand: a name, not a secret (and node:crypto costs `run` ~5 ms to load). */
const randomSuffix = () => Math.floor(Math.random() * 0x100000).toString(16).padStart(5, '0');

/**
 * The Container that `docker run`/`create` with these flags describes. Throws
 * `FlagError` for values berth cannot express (anonymous volumes, `--rm` with a restart
 * policy, …).
 */
export function toContainer(flags: RunFlags, opts: ToContainerOptions): Container {
  const restart = toRestart(flags.restart);
  if (flags.rm && restart.restartPolicy !== 'Never') throw new FlagError('Conflicting options: --restart and --rm');
  const spec: ContainerSpec = { image: opts.image, state: opts.state, ...restart };
  if (flags.entrypoint !== undefined) {
    spec.command = flags.entrypoint === '' ? [] : [flags.entrypoint];
    spec.args = [...opts.args];
  } else if (opts.args.length > 0) {
    spec.args = [...opts.args];
  }
  const env = toEnv(flags, opts.environ);
  if (env.length) spec.env = env;
  if (flags.workdir) spec.workingDir = flags.workdir;
  if (flags.user) spec.user = flags.user;
  if (flags.hostname) spec.hostname = flags.hostname;
  if (flags.tty) spec.tty = true;
  if (flags.tty && opts.consoleSize) spec.consoleSize = { width: opts.consoleSize.width, height: opts.consoleSize.height };
  if (flags.interactive) spec.stdin = true;
  if (flags.pull !== undefined) {
    const p = PULL[flags.pull];
    if (!p) throw new FlagError(`--pull ${JSON.stringify(flags.pull)}: must be always, missing or never`);
    spec.imagePullPolicy = p;
  }
  if (flags.stopSignal) spec.stopSignal = flags.stopSignal.startsWith('SIG') ? flags.stopSignal : `SIG${flags.stopSignal}`;
  if (flags.stopTimeout !== undefined) spec.stopGracePeriodSeconds = nonNegativeInt(flags.stopTimeout, '--stop-timeout');
  const resources: NonNullable<ContainerSpec['resources']> = {};
  if (flags.memory) resources.memory = toMemoryQuantity(flags.memory);
  if (flags.cpus) {
    if (!/^\d+(\.\d+)?$/.test(flags.cpus) || Number(flags.cpus) <= 0) throw new FlagError(`--cpus ${JSON.stringify(flags.cpus)}: expected a positive number such as 0.5`);
    resources.cpus = flags.cpus;
  }
  if (flags.pidsLimit !== undefined) {
    const n = Number(flags.pidsLimit);
    if (!Number.isInteger(n) || n === 0 || n < -1) throw new FlagError(`--pids-limit ${JSON.stringify(flags.pidsLimit)}: expected a positive integer (or -1: unlimited)`);
    if (n > 0) resources.pids = n;
  }
  if (Object.keys(resources).length) spec.resources = resources;
  if (flags.publish?.length) spec.ports = flags.publish.flatMap(toContainerPorts);
  const mounts: VolumeMount[] = [];
  const binds: BindMount[] = [];
  const tmpfs: TmpfsMount[] = (flags.tmpfs ?? []).map((t) => ({ mountPath: t.split(':')[0]! }));
  for (const x of [...(flags.volume ?? []).map((v) => toMountFlag(v)), ...(flags.mount ?? []).map((m) => toMount(m))]) {
    if ('volume' in x) mounts.push(x.volume);
    else if ('bind' in x) binds.push(x.bind);
    else tmpfs.push(x.tmpfs);
  }
  if (mounts.length) spec.volumeMounts = mounts;
  if (binds.length) spec.bindMounts = binds;
  if (tmpfs.length) spec.tmpfs = tmpfs;
  if (flags.network && flags.network !== 'bridge' && flags.network !== 'default') {
    if (flags.network.startsWith('container:')) throw new FlagError(`--network ${flags.network}: not supported; name a Network object, host or none`);
    spec.networks = [{ name: flags.network }];
  }
  const labels = toLabels(flags.label);
  const name = flags.name ?? generatedName(opts.image, (opts.randomSuffix ?? randomSuffix)());
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name, namespace: opts.namespace, ...(Object.keys(labels).length ? { labels } : {}) },
    spec,
  } as Container;
}

function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FlagError(`${flag} ${JSON.stringify(v)}: expected a whole number of seconds`);
  return n;
}

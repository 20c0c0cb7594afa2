/**
 * The normalised Compose model (`berth compose config` prints it): every short
 * syntax expanded to its long form (ports, volumes, networks, depends_on,
 * environment, healthcheck test), `env_file`s read, paths made absolute. This is
 * also where keys berth cannot honour are refused: any key the file uses that the
 * model has no place for is a `ComposeError` naming it
 * (`services.web.privileged: not supported by berth`), never dropped.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FlagError, toContainerPorts, toMountFlag, toRestart } from '../client/container-spec.ts';
import { ComposeError, keyPath, parseDotenv, type Environment } from './interpolate.ts';
import type { LoadedCompose } from './load.ts';

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface PortModel {
  readonly target: number;
  readonly published?: number;
  readonly host_ip?: string;
  readonly protocol: 'tcp' | 'udp';
}

export type MountModel =
  | { readonly type: 'volume'; readonly source: string; readonly target: string; readonly read_only: boolean; readonly nocopy?: boolean }
  | { readonly type: 'bind'; readonly source: string; readonly target: string; readonly read_only: boolean }
  | { readonly type: 'tmpfs'; readonly target: string; readonly size?: number };

export interface HealthcheckModel {
  /** The command to run, without a shell unless the file said CMD-SHELL (then `sh -c …`). */
  readonly test: readonly string[];
  readonly interval_seconds?: number;
  readonly timeout_seconds?: number;
  readonly retries?: number;
  readonly start_period_seconds?: number;
}

export interface BuildModel {
  /** Absolute directory. */
  readonly context: string;
  readonly dockerfile: string;
  readonly args: Readonly<Record<string, string>>;
  readonly target?: string;
  readonly no_cache?: boolean;
}

export interface ResourcesModel {
  readonly memory?: string | number;
  readonly cpus?: string;
  readonly pids?: number;
}

export interface ServiceModel {
  readonly image?: string;
  readonly build?: BuildModel;
  readonly pull_policy?: 'always' | 'missing' | 'never';
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly ports: readonly PortModel[];
  readonly volumes: readonly MountModel[];
  /** Network key (as in the file, or `default`) → attachment; absent with `network_mode`. */
  readonly networks: Readonly<Record<string, { readonly aliases: readonly string[]; readonly ipv4_address?: string }>>;
  readonly network_mode?: 'host' | 'none';
  readonly depends_on: Readonly<Record<string, { readonly condition: DependsCondition }>>;
  /** Docker's words, checked: `no`, `always`, `on-failure[:N]`, `unless-stopped`. */
  readonly restart: string;
  readonly healthcheck?: HealthcheckModel;
  readonly replicas: number;
  readonly resources?: ResourcesModel;
  readonly labels: Readonly<Record<string, string>>;
  readonly container_name?: string;
  readonly working_dir?: string;
  readonly user?: string;
  readonly hostname?: string;
  readonly tty?: boolean;
  readonly stdin_open?: boolean;
  readonly stop_signal?: string;
  readonly stop_grace_period_seconds?: number;
}

export interface NetworkModel {
  /** The Network object's name. */
  readonly name: string;
  readonly external: boolean;
  readonly internal: boolean;
  readonly subnet?: string;
  readonly gateway?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface VolumeModel {
  /** The Volume object's name. */
  readonly name: string;
  readonly external: boolean;
  readonly driver_opts: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}

/** A whole project, normalised. */
export interface ComposeModel {
  readonly name: string;
  /** Absolute directory of the Compose file. */
  readonly dir: string;
  readonly services: Readonly<Record<string, ServiceModel>>;
  readonly networks: Readonly<Record<string, NetworkModel>>;
  readonly volumes: Readonly<Record<string, VolumeModel>>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

const unsupported = (where: string, why = 'not supported by berth') => new ComposeError(`${where}: ${why}`);

/** Refuses keys of `o` outside `allowed` (extension keys `x-…` are always allowed). */
function onlyKeys(o: Obj, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k) && !k.startsWith('x-')) throw unsupported(keyPath(where, k));
}

/** Compose's `list or mapping` (environment, labels, build args) as a mapping; list items `K=V`, `K` alone looked up in `env`. */
export function toMapping(v: unknown, where: string, env?: Environment): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq >= 0) out[s.slice(0, eq)] = s.slice(eq + 1);
      else if (env) {
        if (env[s] !== undefined) out[s] = env[s]!;
      } else if (s) out[s] = '';
      if (!s) throw new ComposeError(`${keyPath(where, i)}: empty entry`);
    });
  } else if (isObj(v)) {
    for (const [k, val] of Object.entries(v)) {
      if (val === null || val === undefined) {
        if (env?.[k] !== undefined) out[k] = env[k]!;
        else if (!env) out[k] = '';
      } else out[k] = typeof val === 'string' ? val : String(val);
    }
  }
  return out;
}

/** Splits a command string as a POSIX shell would split words (quotes and backslashes; no expansion). */
export function shellSplit(s: string, where: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new ComposeError(`${where}: unterminated single quote in ${JSON.stringify(s)}`);
      cur += s.slice(i + 1, end);
      has = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1]!)) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new ComposeError(`${where}: unterminated double quote in ${JSON.stringify(s)}`);
      has = true;
      i = j;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) words.push(cur);
  return words;
}

const toCommand = (v: unknown, where: string): string[] | undefined =>
  v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(String) : shellSplit(String(v), where);

/**
 * A Compose duration (`1m30s`, `10s`, `1h`, `500ms`, or a number of seconds) in whole
 * seconds; berth's fields count seconds, so a duration that is not whole is refused.
 */
export function toSeconds(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let ms = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (!m) throw new ComposeError(`${where}: ${JSON.stringify(s)} is not a duration (e.g. 30s, 1m30s)`);
    ms += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (!s) throw new ComposeError(`${where}: empty duration`);
  if (ms % 1000 !== 0) throw new ComposeError(`${where}: ${s}: berth counts whole seconds`);
  return ms / 1000;
}

/** Compose byte sizes (`64m`, `1gb`, `512k`, `1024`) → a Kubernetes quantity or bytes. */
export function toMemory(v: unknown, where: string): string | number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)\s*([bkmg])?b?$/i.exec(String(v).trim());
  if (!m) throw new ComposeError(`${where}: ${JSON.stringify(v)} is not a byte size (e.g. 64m, 1g)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  return unit === 'b' ? Number(m[1]) : `${m[1]}${unit.toUpperCase()}i`;
}

/** A Compose byte size in bytes. */
function toBytes(v: unknown, where: string): number {
  const q = toMemory(v, where);
  if (typeof q === 'number') return q;
  const m = /^(\d+)([KMG])i$/.exec(q)!;
  return Number(m[1]) * 1024 ** ('KMG'.indexOf(m[2]!) + 1);
}

const flagMessage = (err: unknown, where: string): ComposeError =>
  err instanceof FlagError ? new ComposeError(`${where}: ${err.message.replace(/^(-p|-v|--restart|--memory) /, '').replace('-v NAME:', 'NAME:')}`) : (err as ComposeError);

function toPorts(v: unknown, where: string): PortModel[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((p, i): PortModel[] => {
    const at = keyPath(where, i);
    if (isObj(p)) {
      onlyKeys(p, ['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'], at);
      const target = Number(p.target);
      if (!Number.isInteger(target)) throw new ComposeError(`${keyPath(at, 'target')}: must be a port number`);
      if (p.published !== undefined && !/^\d+$/.test(String(p.published))) throw unsupported(keyPath(at, 'published'), `${JSON.stringify(p.published)}: only a single port number is supported by berth`);
      const protocol = String(p.protocol ?? 'tcp').toLowerCase();
      if (protocol !== 'tcp' && protocol !== 'udp') throw unsupported(keyPath(at, 'protocol'), `${protocol}: not supported by berth (tcp or udp)`);
      return [{
        target,
        ...(p.published !== undefined && Number(p.published) > 0 ? { published: Number(p.published) } : {}),
        ...(p.host_ip ? { host_ip: String(p.host_ip) } : {}),
        protocol,
      } as PortModel];
    }
    try {
      return toContainerPorts(String(p)).map((cp) => ({
        target: cp.containerPort,
        ...(cp.hostPort ? { published: cp.hostPort } : {}),
        ...(cp.hostIP ? { host_ip: cp.hostIP } : {}),
        protocol: (cp.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp',
      }));
    } catch (err) {
      throw flagMessage(err, at);
    }
  });
}

function toMounts(v: unknown, tmpfs: unknown, where: string, dir: string, volumes: Readonly<Record<string, unknown>>): MountModel[] {
  const out: MountModel[] = [];
  const named = (source: string, at: string) => {
    if (!(source in volumes)) throw new ComposeError(`${at}: refers to undefined volume ${source}: declare it under the top-level volumes`);
  };
  (Array.isArray(v) ? v : []).forEach((m, i) => {
    const at = keyPath(where, i);
    if (isObj(m)) {
      onlyKeys(m, ['type', 'source', 'target', 'read_only', 'volume', 'bind', 'tmpfs', 'consistency'], at);
      const target = String(m.target ?? '');
      if (!target.startsWith('/')) throw new ComposeError(`${keyPath(at, 'target')}: must be an absolute path`);
      const ro = m.read_only === true;
      if (isObj(m.volume)) onlyKeys(m.volume, ['nocopy'], keyPath(at, 'volume'));
      if (isObj(m.bind)) {
        onlyKeys(m.bind, ['create_host_path'], keyPath(at, 'bind'));
      }
      if (m.type === 'volume') {
        if (!m.source) throw unsupported(keyPath(at, 'source'), 'anonymous volumes are not supported by berth; name one');
        named(String(m.source), keyPath(at, 'source'));
        const nocopy = isObj(m.volume) && m.volume.nocopy === true;
        out.push({ type: 'volume', source: String(m.source), target, read_only: ro, ...(nocopy ? { nocopy } : {}) });
      } else if (m.type === 'bind') {
        const src = String(m.source ?? '');
        if (!src) throw new ComposeError(`${keyPath(at, 'source')}: required for a bind mount`);
        if (src.startsWith('~')) throw unsupported(keyPath(at, 'source'), 'write the host path out in full (~ is not expanded)');
        out.push({ type: 'bind', source: resolve(dir, src), target, read_only: ro });
      } else if (m.type === 'tmpfs') {
        const size = isObj(m.tmpfs) ? m.tmpfs.size : undefined;
        if (isObj(m.tmpfs)) onlyKeys(m.tmpfs, ['size'], keyPath(at, 'tmpfs'));
        out.push({ type: 'tmpfs', target, ...(size !== undefined ? { size: toBytes(size, keyPath(at, 'tmpfs.size')) } : {}) });
      } else {
        throw unsupported(keyPath(at, 'type'), `${JSON.stringify(m.type)}: not supported by berth (volume, bind or tmpfs)`);
      }
      return;
    }
    const s = String(m);
    try {
      const x = toMountFlag(s, dir);
      if ('bind' in x) out.push({ type: 'bind', source: x.bind.hostPath, target: x.bind.mountPath, read_only: x.bind.readOnly ?? false });
      else {
        named(x.volume.name, at);
        out.push({ type: 'volume', source: x.volume.name, target: x.volume.mountPath, read_only: x.volume.readOnly ?? false, ...(x.volume.noCopy ? { nocopy: true } : {}) });
      }
    } catch (err) {
      throw flagMessage(err, at);
    }
  });
  const t = tmpfs === undefined ? [] : Array.isArray(tmpfs) ? tmpfs : [tmpfs];
  for (const p of t) out.push({ type: 'tmpfs', target: String(p).split(':')[0]! });
  return out;
}

function toHealthcheck(v: unknown, where: string): HealthcheckModel | undefined {
  if (!isObj(v)) return undefined;
  onlyKeys(v, ['test', 'interval', 'timeout', 'retries', 'start_period', 'disable'], where);
  if (v.disable === true) return undefined;
  let test: string[];
  if (typeof v.test === 'string') test = ['sh', '-c', v.test];
  else if (Array.isArray(v.test)) {
    const [kind, ...rest] = v.test.map(String);
    if (kind === 'NONE') return undefined;
    if (kind === 'CMD') test = rest;
    else if (kind === 'CMD-SHELL') test = ['sh', '-c', rest.join(' ')];
    else throw new ComposeError(`${keyPath(where, 'test')}: must start with CMD, CMD-SHELL or NONE`);
  } else throw unsupported(keyPath(where, 'test'), "required by berth (the image's own HEALTHCHECK is not used)");
  if (test.length === 0) throw new ComposeError(`${keyPath(where, 'test')}: empty command`);
  const secs = (k: string) => (v[k] === undefined ? undefined : toSeconds(v[k], keyPath(where, k)));
  const interval = secs('interval');
  const timeout = secs('timeout');
  const start = secs('start_period');
  for (const [k, n] of [['interval', interval], ['timeout', timeout]] as const) if (n !== undefined && n < 1) throw new ComposeError(`${keyPath(where, k)}: must be at least 1s in berth`);
  return {
    test,
    ...(interval !== undefined ? { interval_seconds: interval } : {}),
    ...(timeout !== undefined ? { timeout_seconds: timeout } : {}),
    ...(v.retries !== undefined ? { retries: Number(v.retries) } : {}),
    ...(start !== undefined ? { start_period_seconds: start } : {}),
  };
}

function toResources(s: Obj, where: string): ResourcesModel | undefined {
  const r: { memory?: string | number; cpus?: string; pids?: number } = {};
  const deploy = isObj(s.deploy) ? s.deploy : undefined;
  if (deploy) {
    onlyKeys(deploy, ['replicas', 'resources', 'mode'], keyPath(where, 'deploy'));
    if (deploy.mode !== undefined && deploy.mode !== 'replicated') throw unsupported(keyPath(where, 'deploy.mode'), `${JSON.stringify(deploy.mode)}: not supported by berth (replicated)`);
    const res = isObj(deploy.resources) ? deploy.resources : undefined;
    if (res) {
      onlyKeys(res, ['limits'], keyPath(where, 'deploy.resources'));
      const lim = isObj(res.limits) ? res.limits : {};
      onlyKeys(lim, ['cpus', 'memory', 'pids'], keyPath(where, 'deploy.resources.limits'));
      if (lim.memory !== undefined) r.memory = toMemory(lim.memory, keyPath(where, 'deploy.resources.limits.memory'));
      if (lim.cpus !== undefined) r.cpus = String(lim.cpus);
      if (lim.pids !== undefined) r.pids = Number(lim.pids);
    }
  }
  if (s.mem_limit !== undefined) r.memory = toMemory(s.mem_limit, keyPath(where, 'mem_limit'));
  if (s.cpus !== undefined) r.cpus = String(s.cpus);
  if (s.pids_limit !== undefined) r.pids = Number(s.pids_limit);
  if (r.cpus !== undefined && !(/^\d+(\.\d+)?$/.test(r.cpus) && Number(r.cpus) > 0)) throw new ComposeError(`${where}: cpus ${JSON.stringify(r.cpus)}: expected a positive number such as 0.5`);
  return Object.keys(r).length ? r : undefined;
}

const SERVICE_KEYS = [
  'image', 'build', 'pull_policy', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'expose', 'volumes', 'tmpfs',
  'networks', 'network_mode', 'depends_on', 'restart', 'healthcheck', 'deploy', 'scale', 'labels', 'container_name', 'working_dir',
  'user', 'hostname', 'tty', 'stdin_open', 'stop_signal', 'stop_grace_period', 'mem_limit', 'cpus', 'pids_limit',
] as const;

async function toService(name: string, s: Obj, file: LoadedCompose, doc: { networks: Obj; volumes: Obj }): Promise<ServiceModel> {
  const where = keyPath('services', name);
  onlyKeys(s, SERVICE_KEYS, where);
  if (s.image === undefined && s.build === undefined) throw new ComposeError(`${where}: has neither an image nor a build context specified`);

  let build: BuildModel | undefined;
  if (s.build !== undefined) {
    const b: Obj = isObj(s.build) ? s.build : { context: s.build };
    onlyKeys(b, ['context', 'dockerfile', 'args', 'target', 'no_cache'], keyPath(where, 'build'));
    const ctx = String(b.context ?? '.');
    if (/^[a-z]+:\/\//.test(ctx) || ctx.endsWith('.git')) throw unsupported(keyPath(where, 'build.context'), `${ctx}: only a local directory is supported by berth compose`);
    build = {
      context: resolve(file.dir, ctx),
      dockerfile: String(b.dockerfile ?? 'Dockerfile'),
      args: toMapping(b.args, keyPath(where, 'build.args'), file.env),
      ...(b.target !== undefined ? { target: String(b.target) } : {}),
      ...(b.no_cache === true ? { no_cache: true } : {}),
    };
  }

  let pull: ServiceModel['pull_policy'];
  if (s.pull_policy !== undefined) {
    const p = String(s.pull_policy);
    const map: Record<string, ServiceModel['pull_policy']> = { always: 'always', missing: 'missing', if_not_present: 'missing', never: 'never' };
    if (p === 'build' && build) pull = undefined;
    else if (map[p]) pull = map[p];
    else throw unsupported(keyPath(where, 'pull_policy'), `${p}: not supported by berth (always, missing, never)`);
  }

  const environment: Record<string, string> = {};
  const envFiles = s.env_file === undefined ? [] : Array.isArray(s.env_file) ? s.env_file : [s.env_file];
  for (const [i, f] of envFiles.entries()) {
    const at = keyPath(keyPath(where, 'env_file'), i);
    const entry: Obj = isObj(f) ? f : { path: f };
    onlyKeys(entry, ['path', 'required'], at);
    const path = resolve(file.dir, String(entry.path));
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (entry.required === false) continue;
      throw new ComposeError(`${at}: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    Object.assign(environment, parseDotenv(text, path, file.env));
  }
  Object.assign(environment, toMapping(s.environment, keyPath(where, 'environment'), file.env));

  let networks: Record<string, { aliases: string[]; ipv4_address?: string }> = {};
  let networkMode: ServiceModel['network_mode'];
  if (s.network_mode !== undefined) {
    const m = String(s.network_mode);
    if (m !== 'host' && m !== 'none') throw unsupported(keyPath(where, 'network_mode'), `${m}: not supported by berth (host or none)`);
    if (s.networks !== undefined) throw new ComposeError(`${where}: network_mode and networks cannot be combined`);
    networkMode = m;
  } else if (Array.isArray(s.networks)) {
    for (const n of s.networks) networks[String(n)] = { aliases: [] };
  } else if (isObj(s.networks)) {
    for (const [n, v] of Object.entries(s.networks)) {
      const at = keyPath(keyPath(where, 'networks'), n);
      const o = isObj(v) ? v : {};
      onlyKeys(o, ['aliases', 'ipv4_address'], at);
      networks[n] = { aliases: Array.isArray(o.aliases) ? o.aliases.map(String) : [], ...(o.ipv4_address ? { ipv4_address: String(o.ipv4_address) } : {}) };
    }
  } else {
    networks = { default: { aliases: [] } };
  }
  for (const n of Object.keys(networks)) {
    if (n !== 'default' && !(n in doc.networks)) throw new ComposeError(`${keyPath(where, 'networks')}: service ${name} refers to undefined network ${n}`);
  }

  const depends: Record<string, { condition: DependsCondition }> = {};
  if (Array.isArray(s.depends_on)) for (const d of s.depends_on) depends[String(d)] = { condition: 'service_started' };
  else if (isObj(s.depends_on)) {
    for (const [d, v] of Object.entries(s.depends_on)) {
      const o = isObj(v) ? v : {};
      const at = keyPath(keyPath(where, 'depends_on'), d);
      onlyKeys(o, ['condition', 'required'], at);
      if (o.required === false) throw unsupported(keyPath(at, 'required'), 'optional dependencies are not supported by berth');
      depends[d] = { condition: (o.condition ?? 'service_started') as DependsCondition };
    }
  }

  let restart: ServiceModel['restart'] = 'no';
  if (s.restart !== undefined) {
    try {
      toRestart(String(s.restart));
    } catch (err) {
      throw flagMessage(err, keyPath(where, 'restart'));
    }
    restart = String(s.restart) as ServiceModel['restart'];
  }

  const deploy = isObj(s.deploy) ? s.deploy : {};
  const resources = toResources(s, where);
  const replicas = Number(deploy.replicas ?? s.scale ?? 1);
  if (!Number.isInteger(replicas) || replicas < 0) throw new ComposeError(`${where}: replicas must be a whole number ≥ 0`);
  if (s.container_name !== undefined && replicas > 1) throw new ComposeError(`${keyPath(where, 'container_name')}: cannot be set with ${replicas} replicas`);
  const ports = toPorts(s.ports, keyPath(where, 'ports'));
  if (replicas > 1) {
    const fixed = ports.findIndex((p) => p.published !== undefined);
    if (fixed >= 0) throw new ComposeError(`${keyPath(keyPath(where, 'ports'), fixed)}: host port ${ports[fixed]!.published} cannot be published by ${replicas} replicas`);
  }
  const healthcheck = toHealthcheck(s.healthcheck, keyPath(where, 'healthcheck'));
  const command = toCommand(s.command, keyPath(where, 'command'));
  const entrypoint = toCommand(s.entrypoint, keyPath(where, 'entrypoint'));
  const grace = s.stop_grace_period === undefined ? undefined : toSeconds(s.stop_grace_period, keyPath(where, 'stop_grace_period'));

  return {
    ...(s.image !== undefined ? { image: String(s.image) } : {}),
    ...(build ? { build } : {}),
    ...(pull ? { pull_policy: pull } : {}),
    ...(command ? { command } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    environment,
    ports,
    volumes: toMounts(s.volumes, s.tmpfs, keyPath(where, 'volumes'), file.dir, doc.volumes),
    networks,
    ...(networkMode ? { network_mode: networkMode } : {}),
    depends_on: depends,
    restart,
    ...(healthcheck ? { healthcheck } : {}),
    replicas,
    ...(resources ? { resources } : {}),
    labels: toMapping(s.labels, keyPath(where, 'labels')),
    ...(s.container_name !== undefined ? { container_name: String(s.container_name) } : {}),
    ...(s.working_dir !== undefined ? { working_dir: String(s.working_dir) } : {}),
    ...(s.user !== undefined ? { user: String(s.user) } : {}),
    ...(s.hostname !== undefined ? { hostname: String(s.hostname) } : {}),
    ...(s.tty !== undefined ? { tty: s.tty === true } : {}),
    ...(s.stdin_open !== undefined ? { stdin_open: s.stdin_open === true } : {}),
    ...(s.stop_signal !== undefined ? { stop_signal: String(s.stop_signal) } : {}),
    ...(grace !== undefined ? { stop_grace_period_seconds: grace } : {}),
  };
}

/** An object name from a project and a key: `myapp` + `my_net` → `myapp-my-net`. */
export const scopedName = (project: string, key: string): string =>
  `${project}-${key.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}`;

/** Normalises a loaded project (see the module comment). Reads `env_file`s. Throws `ComposeError`. */
export async function toComposeModel(file: LoadedCompose): Promise<ComposeModel> {
  const doc = file.doc;
  onlyKeys(doc, ['version', 'name', 'services', 'networks', 'volumes', 'secrets', 'configs'], '');
  for (const k of ['secrets', 'configs'] as const) if (isObj(doc[k]) && Object.keys(doc[k]).length) throw unsupported(k);
  const netDecl: Obj = isObj(doc.networks) ? doc.networks : {};
  const volDecl: Obj = isObj(doc.volumes) ? doc.volumes : {};

  const services: Record<string, ServiceModel> = {};
  const rawServices: Obj = isObj(doc.services) ? doc.services : {};
  for (const [name, s] of Object.entries(rawServices)) services[name] = await toService(name, isObj(s) ? s : {}, file, { networks: netDecl, volumes: volDecl });
  for (const [name, s] of Object.entries(services)) {
    for (const d of Object.keys(s.depends_on)) if (!(d in services)) throw new ComposeError(`services.${name}.depends_on: service ${name} depends on undefined service ${d}`);
  }
  dependencyOrder(services);

  const networks: Record<string, NetworkModel> = {};
  const usesDefault = Object.values(services).some((s) => 'default' in s.networks);
  const netKeys = new Set([...Object.keys(netDecl), ...(usesDefault ? ['default'] : [])]);
  for (const key of netKeys) {
    const where = keyPath('networks', key);
    const n: Obj = isObj(netDecl[key]) ? (netDecl[key] as Obj) : {};
    onlyKeys(n, ['name', 'external', 'internal', 'driver', 'ipam', 'labels', 'attachable'], where);
    if (n.driver !== undefined && n.driver !== 'bridge') throw unsupported(keyPath(where, 'driver'), `${String(n.driver)}: not supported by berth (bridge)`);
    const external = n.external === true || isObj(n.external);
    let subnet: string | undefined;
    let gateway: string | undefined;
    if (isObj(n.ipam)) {
      onlyKeys(n.ipam, ['driver', 'config'], keyPath(where, 'ipam'));
      if (n.ipam.driver !== undefined && n.ipam.driver !== 'default') throw unsupported(keyPath(where, 'ipam.driver'));
      const cfg = Array.isArray(n.ipam.config) ? n.ipam.config : [];
      if (cfg.length > 1) throw unsupported(keyPath(where, 'ipam.config[1]'), 'berth networks have one subnet');
      const c: Obj = isObj(cfg[0]) ? cfg[0] : {};
      onlyKeys(c, ['subnet', 'gateway'], keyPath(where, 'ipam.config[0]'));
      if (c.subnet !== undefined) subnet = String(c.subnet);
      if (c.gateway !== undefined) gateway = String(c.gateway);
    }
    networks[key] = {
      name: n.name !== undefined ? String(n.name) : external ? key : scopedName(file.name, key),
      external,
      internal: n.internal === true,
      ...(subnet ? { subnet } : {}),
      ...(gateway ? { gateway } : {}),
      labels: toMapping(n.labels, keyPath(where, 'labels')),
    };
  }

  const volumes: Record<string, VolumeModel> = {};
  for (const [key, raw] of Object.entries(volDecl)) {
    const where = keyPath('volumes', key);
    const v: Obj = isObj(raw) ? raw : {};
    onlyKeys(v, ['name', 'external', 'driver', 'driver_opts', 'labels'], where);
    if (v.driver !== undefined && v.driver !== 'local') throw unsupported(keyPath(where, 'driver'), `${String(v.driver)}: not supported by berth (local)`);
    const external = v.external === true || isObj(v.external);
    volumes[key] = {
      name: v.name !== undefined ? String(v.name) : external ? key : scopedName(file.name, key),
      external,
      driver_opts: toMapping(v.driver_opts, keyPath(where, 'driver_opts')),
      labels: toMapping(v.labels, keyPath(where, 'labels')),
    };
  }
  return { name: file.name, dir: file.dir, services, networks, volumes };
}

/** Services ordered so that each comes after what it depends on. Throws `ComposeError` on a cycle. */
export function dependencyOrder(services: Readonly<Record<string, Pick<ServiceModel, 'depends_on'>>>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new ComposeError(`services: dependency cycle ${[...chain, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const d of Object.keys(services[name]?.depends_on ?? {}).sort()) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(services).sort()) visit(name, []);
  return order;
}

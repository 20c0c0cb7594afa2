import { RuntimeError } from '../cri/errors.ts';
import type { ContainerConfig, ImageConfig, Mount, TerminalSize } from '../cri/types.ts';

/** The subset of the OCI runtime spec (config.json, version 1.0.2) that berth writes. */
export interface OciSpec {
  readonly ociVersion: string;
  readonly process: OciProcess;
  readonly root: { readonly path: string; readonly readonly: boolean };
  readonly hostname: string;
  readonly mounts: readonly OciMount[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly linux: OciLinux;
}

export interface OciProcess {
  readonly terminal: boolean;
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids?: readonly number[] };
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly capabilities: {
    readonly bounding: readonly string[];
    readonly effective: readonly string[];
    readonly permitted: readonly string[];
  };
  readonly rlimits: readonly { readonly type: string; readonly hard: number; readonly soft: number }[];
  readonly noNewPrivileges: boolean;
  /** With `terminal`: the pty's size before the process runs (runc sets it with `TIOCSWINSZ`). */
  readonly consoleSize?: { readonly height: number; readonly width: number };
}

export interface OciMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options?: readonly string[];
}

export interface OciLinux {
  readonly namespaces: readonly { readonly type: string; readonly path?: string }[];
  readonly cgroupsPath: string;
  readonly resources: {
    readonly devices: readonly { readonly allow: boolean; readonly access: string }[];
    readonly memory?: { readonly limit: number; readonly swap: number };
    readonly cpu?: { readonly quota: number; readonly period: number };
    readonly pids?: { readonly limit: number };
  };
  readonly maskedPaths: readonly string[];
  readonly readonlyPaths: readonly string[];
}

/** Where the per-container `/etc` files live on the host (written by `writeEtcFiles`). */
export interface EtcFilePaths {
  readonly hosts: string;
  readonly hostname: string;
  readonly resolvConf: string;
}

export interface SpecOptions {
  /** The container ID; the cgroup is `<cgroupParent>/<id>`. */
  readonly id: string;
  /**
   * The bundle's root directory. With `rootOverlay` it stays an empty directory and
   * runc mounts the overlay onto it inside the container's mount namespace; otherwise
   * it is the already mounted root filesystem.
   */
  readonly rootfsPath: string;
  /**
   * Options of an overlay mount (`lowerdir=…,upperdir=…,workdir=…`, absolute paths)
   * that runc mounts as the container's `/`, first of all mounts: no mount on the host,
   * and the kernel drops it when the container's last process exits.
   */
  readonly rootOverlay?: string;
  /** Absolute cgroup path under which each container gets its own cgroup, e.g. `/berth`. */
  readonly cgroupParent: string;
  readonly etcFiles: EtcFilePaths;
  /** Contents of the image's /etc/passwd and /etc/group, to resolve user and group names. */
  readonly passwd?: string;
  readonly group?: string;
  /** The caller's hard RLIMIT_NOFILE: the spec never asks for more (root may lack CAP_SYS_RESOURCE). */
  readonly nofileHardLimit?: number;
}

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Docker's masked paths (bind-mounted over with /dev/null or an empty tmpfs). */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

/** Docker's read-only paths. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Below this, `runc exec` cannot start its Go init inside the pids cgroup (notes §3). */
export const MIN_PIDS_LIMIT = 8;
/** Docker's minimum memory limit. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
export const CPU_PERIOD_US = 100_000;
const DEFAULT_NOFILE = 1024;

const invalid = (msg: string): RuntimeError => new RuntimeError('InvalidArgument', msg);

/** `size` when both sides are whole numbers of cells in 1…65535 (what `TIOCSWINSZ` holds); `InvalidArgument` otherwise. */
export function validTerminalSize(size: TerminalSize): TerminalSize {
  const valid = (n: number): boolean => Number.isInteger(n) && n > 0 && n <= 0xffff;
  if (!valid(size.width) || !valid(size.height)) throw invalid(`terminal size ${size.width}x${size.height} is not valid`);
  return size;
}

/**
 * Builds the OCI config for a container from its config and its image's config.
 * Pure: reads no files (the image's passwd/group come in `opts`).
 *
 * Process args follow Kubernetes: `command` replaces ENTRYPOINT, `args` replaces CMD,
 * and a `command` without `args` drops the image's CMD.
 *
 * @throws RuntimeError `InvalidArgument` for an empty command, a relative working
 *   directory or mount path, an unknown user or group name, a pids limit below
 *   {@link MIN_PIDS_LIMIT}, a memory limit below {@link MIN_MEMORY_BYTES}, cpus <= 0,
 *   or a bind mount without an absolute host path.
 */
export function buildSpec(config: ContainerConfig, image: ImageConfig, opts: SpecOptions): OciSpec {
  const args = processArgs(config, image);
  const cwd = config.workingDir || image.workingDir || '/';
  if (!cwd.startsWith('/')) throw invalid(`workingDir must be absolute, got "${cwd}"`);
  const hostname = config.hostname || opts.id.slice(0, 12);
  const user = resolveUser(config.user || image.user || '', opts.passwd ?? '', opts.group ?? '');
  const env = mergeEnv(image.env ?? [], config.env ?? [], { HOSTNAME: hostname, ...(config.tty ? { TERM: 'xterm' } : {}) });
  const nofile = Math.min(DEFAULT_NOFILE, opts.nofileHardLimit ?? DEFAULT_NOFILE);
  const consoleSize = config.tty && config.consoleSize ? validTerminalSize(config.consoleSize) : undefined;

  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: config.tty ?? false,
      user,
      args,
      env,
      cwd,
      capabilities: { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: false,
      ...(consoleSize ? { consoleSize: { height: consoleSize.height, width: consoleSize.width } } : {}),
    },
    root: { path: opts.rootfsPath, readonly: false },
    hostname,
    mounts: [
      ...(opts.rootOverlay ? [{ destination: '/', type: 'overlay', source: 'overlay', options: opts.rootOverlay.split(',') }] : []),
      ...defaultMounts(),
      ...etcMounts(opts.etcFiles),
      ...config.mounts?.map(toOciMount) ?? [],
    ],
    ...(config.annotations && Object.keys(config.annotations).length ? { annotations: { ...config.annotations } } : {}),
    linux: {
      namespaces: namespaces(config.networkNamespace),
      cgroupsPath: cgroupsPathFor(opts.cgroupParent, opts.id),
      resources: resources(config),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}

/** The cgroup of a container: `<parent>/<id>`, always absolute. */
export function cgroupsPathFor(cgroupParent: string, id: string): string {
  const parent = `/${cgroupParent.replace(/^\/+|\/+$/g, '')}`;
  return parent === '/' ? `/${id}` : `${parent}/${id}`;
}

function processArgs(config: ContainerConfig, image: ImageConfig): string[] {
  const entrypoint = config.command ?? image.entrypoint ?? [];
  const cmd = config.args ?? (config.command ? [] : image.cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0 || args[0] === '') throw invalid('no command: neither the config nor the image gives one');
  return args;
}

function mergeEnv(imageEnv: readonly string[], env: ContainerConfig['env'] & {}, defaults: Record<string, string>): string[] {
  const vars = new Map<string, string>();
  for (const [k, v] of Object.entries(defaults)) vars.set(k, v);
  for (const kv of imageEnv) {
    const i = kv.indexOf('=');
    if (i > 0) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const { name, value } of env) {
    if (!name || name.includes('=')) throw invalid(`env name "${name}" is not valid`);
    vars.set(name, value);
  }
  if (!vars.has('PATH')) vars.set('PATH', DEFAULT_PATH);
  return [...vars].map(([k, v]) => `${k}=${v}`);
}

const NUMERIC = /^\d+$/;

/**
 * Resolves `user[:group]` (numbers or names) against the image's passwd and group
 * files, as Docker does: a user without a group gets its passwd gid (0 if the uid
 * is unknown), and supplementary groups are those listing the user by name.
 */
export function resolveUser(
  user: string,
  passwd: string,
  group: string,
): { uid: number; gid: number; additionalGids?: number[] } {
  if (user === '') return { uid: 0, gid: 0 };
  const [u = '', g] = user.split(':', 2);
  const users = parseColonFile(passwd);
  const groups = parseColonFile(group);
  let uid: number;
  let gid: number | undefined;
  let name: string | undefined;
  if (NUMERIC.test(u)) {
    uid = Number(u);
    const entry = users.find((e) => e[2] === u);
    name = entry?.[0];
    gid = entry ? Number(entry[3]) : 0;
  } else {
    const entry = users.find((e) => e[0] === u);
    if (!entry) throw invalid(`user "${u}" not found in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
    name = u;
  }
  if (g !== undefined && g !== '') {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const entry = groups.find((e) => e[0] === g);
      if (!entry) throw invalid(`group "${g}" not found in the image's /etc/group`);
      gid = Number(entry[2]);
    }
  }
  const additionalGids = name
    ? groups.filter((e) => (e[3] ?? '').split(',').includes(name)).map((e) => Number(e[2])).filter((x) => x !== gid)
    : [];
  return additionalGids.length ? { uid, gid, additionalGids } : { uid, gid };
}

function parseColonFile(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

function etcMounts(files: EtcFilePaths): OciMount[] {
  const bind = (destination: string, source: string): OciMount => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', 'rprivate'],
  });
  return [bind('/etc/hosts', files.hosts), bind('/etc/hostname', files.hostname), bind('/etc/resolv.conf', files.resolvConf)];
}

function toOciMount(m: Mount, i: number): OciMount {
  if (!m.containerPath?.startsWith('/')) throw invalid(`mounts[${i}].containerPath must be absolute, got "${m.containerPath}"`);
  if ((m.type ?? 'bind') === 'tmpfs') {
    const size = m.sizeBytes ? [`size=${Math.floor(m.sizeBytes)}`] : [];
    const mode = m.mode ?? 0o1777;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalid(`mounts[${i}].mode must be a file mode between 0 and 0o7777, got ${m.mode}`);
    return {
      destination: m.containerPath,
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', `mode=${mode.toString(8)}`, ...size, ...(m.readonly ? ['ro'] : [])],
    };
  }
  if (!m.hostPath?.startsWith('/')) throw invalid(`mounts[${i}].hostPath must be an absolute host path for a bind mount`);
  return {
    destination: m.containerPath,
    type: 'bind',
    source: m.hostPath,
    options: ['rbind', m.readonly ? 'ro' : 'rw', 'rprivate'],
  };
}

function namespaces(networkNamespace: string | undefined): OciLinux['namespaces'] {
  const base = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (networkNamespace === 'host') return base;
  if (networkNamespace === undefined || networkNamespace === '') return [...base, { type: 'network' }];
  if (!networkNamespace.startsWith('/')) {
    throw invalid(`networkNamespace must be "host" or an absolute path, got "${networkNamespace}"`);
  }
  return [...base, { type: 'network', path: networkNamespace }];
}

function resources(config: ContainerConfig): OciLinux['resources'] {
  const r = config.resources ?? {};
  const out: { -readonly [K in keyof OciLinux['resources']]: OciLinux['resources'][K] } = {
    devices: [{ allow: false, access: 'rwm' }],
  };
  if (r.memoryBytes !== undefined) {
    if (!Number.isInteger(r.memoryBytes) || r.memoryBytes < MIN_MEMORY_BYTES) {
      throw invalid(`resources.memoryBytes must be an integer >= ${MIN_MEMORY_BYTES}, got ${r.memoryBytes}`);
    }
    out.memory = { limit: r.memoryBytes, swap: r.memoryBytes };
  }
  if (r.cpus !== undefined) {
    if (!(r.cpus >= 0.01)) throw invalid(`resources.cpus must be >= 0.01, got ${r.cpus}`);
    out.cpu = { quota: Math.round(r.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  }
  if (r.pids !== undefined) {
    if (!Number.isInteger(r.pids) || r.pids < MIN_PIDS_LIMIT) {
      throw invalid(`resources.pids must be an integer >= ${MIN_PIDS_LIMIT} (runc exec needs the headroom), got ${r.pids}`);
    }
    out.pids = { limit: r.pids };
  }
  return out;
}

/** What an exec changes in the container's process. */
export interface ExecProcessOptions {
  readonly args: readonly string[];
  /** Added to the container's environment, replacing variables of the same name. */
  readonly env?: ContainerConfig['env'];
  readonly cwd?: string;
  readonly user?: OciProcess['user'];
  /** Allocate a TTY for the process (and set `TERM=xterm` unless the environment has a TERM). */
  readonly terminal: boolean;
  /** With `terminal`: the terminal's size from the start (`process.consoleSize`); ignored without one. */
  readonly consoleSize?: { readonly height: number; readonly width: number };
}

/**
 * The OCI process of an exec (`runc exec --process`) into a container whose own
 * process is `base` (from its config.json): the same capabilities, rlimits and
 * no-new-privileges, as `runc exec` without `--process` would use, with the exec's
 * args, environment, working directory, user and terminal (and its size, runc 1.1 applies
 * `consoleSize` to the pty before the process runs).
 */
export function toExecProcess(base: OciProcess, opts: ExecProcessOptions): OciProcess {
  if (opts.args.length === 0) throw invalid('exec needs a command');
  const vars = new Map<string, string>();
  for (const kv of base.env) {
    const i = kv.indexOf('=');
    if (i > 0) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const { name, value } of opts.env ?? []) {
    if (!name || name.includes('=')) throw invalid(`env name "${name}" is not valid`);
    vars.set(name, value);
  }
  if (opts.terminal && !vars.has('TERM')) vars.set('TERM', 'xterm');
  const { consoleSize: _baseSize, ...rest } = base;
  const size = opts.terminal ? opts.consoleSize : undefined;
  return {
    ...rest,
    terminal: opts.terminal,
    args: [...opts.args],
    env: [...vars].map(([k, v]) => `${k}=${v}`),
    cwd: opts.cwd || base.cwd,
    user: opts.user ?? base.user,
    ...(size ? { consoleSize: { height: size.height, width: size.width } } : {}),
  };
}

/**
 * Helpers for the end-to-end tests with real containers (root, runc, conmon): the
 * skip check, a spawned `berth server`, `kubectl` against any kubeconfig, a
 * safety-net sweep that removes whatever a berth data directory left on the host
 * (runc state, conmon processes, overlay mounts, cgroups), and host snapshots to
 * show that a test file left the host as it found it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBusyboxImage, type BusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../harness/control-plane.ts';
import { CGROUP_ROOT, cgroupControllers, existingCgroupDirs, removeCgroup } from '../../runtime/oci/cgroups.ts';
import { mountPointsUnder } from '../../runtime/oci/overlay.ts';
import { DEFAULT_CGROUP_PARENT } from '../../runtime/server/index.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const BERTH_BIN = join(REPO, 'bin/berth.js');

/** containerd's RequiresRoot: why real-container tests cannot run here, or undefined when they can. */
export function realContainersMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const bin of ['runc', 'conmon', 'kubectl']) {
    const args = bin === 'kubectl' ? ['version', '--client'] : ['--version'];
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    if (r.status !== 0) return `\`${bin} ${args.join(' ')}\` failed: ${r.error?.message ?? r.stderr}`;
  }
  return undefined;
}

/** Narrates a step, containerd integration-test style, with the time since `t0`. */
export function narrator(prefix: string): (msg: string) => void {
  const t0 = performance.now();
  return (msg) => console.log(`[${prefix} +${((performance.now() - t0) / 1000).toFixed(2)}s] ${msg}`);
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program; never rejects (the exit code says how it went). stdin is a pipe only when `stdin` is given. */
export function run(cmd: string, args: readonly string[], opts: { stdin?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ToolResult> {
  return new Promise((ok) => {
    const child = spawn(cmd, args, { stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      ok({ code: 127, stdout, stderr: `${stderr}${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the program may exit without reading its input
      child.stdin.end(opts.stdin);
    }
  });
}

/** `kubectl` with an explicit kubeconfig and cache dir. */
export function kubectlWith(kubeconfig: string, cacheDir: string): (args: readonly string[], opts?: { stdin?: string; timeoutMs?: number }) => Promise<ToolResult> {
  return (args, opts = {}) => run('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], { ...opts, env: { KUBECONFIG: kubeconfig } });
}

/** `runc --root <runcRoot>` state of one container, or undefined when runc does not know it. */
export async function runcState(runcRoot: string, id: string): Promise<{ id: string; pid: number; status: string } | undefined> {
  const r = await run('runc', ['--root', runcRoot, 'state', id]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { id: string; pid: number; status: string }) : undefined;
}

/** IDs `runc --root <runcRoot> list` shows (with duplicates, if any). */
export async function runcList(runcRoot: string): Promise<string[]> {
  if (!existsSync(runcRoot)) return [];
  const r = await run('runc', ['--root', runcRoot, 'list', '--format', 'json']);
  if (r.code !== 0) throw new Error(`runc list failed: ${r.stderr}`);
  const list = JSON.parse(r.stdout || 'null') as { id: string }[] | null;
  return (list ?? []).map((s) => s.id);
}

/** The `starttime` field of /proc/<pid>/stat (clock ticks since boot): tells a process from a later one with the same pid. */
export async function processStartTicks(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The freezer state of a container's cgroup under berth's production parent. */
export async function freezerState(id: string, cgroupParent = DEFAULT_CGROUP_PARENT): Promise<string> {
  return (await readFile(join(CGROUP_ROOT, 'freezer', cgroupParent, id, 'freezer.state'), 'utf8')).trim();
}

/** Cgroup directories of a container id, in every hierarchy. */
export function cgroupDirsOf(id: string, cgroupParent = DEFAULT_CGROUP_PARENT): Promise<string[]> {
  return existingCgroupDirs(`${cgroupParent}/${id}`);
}

interface ProcInfo {
  readonly pid: number;
  readonly cmdline: string;
}

async function processes(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      if (cmdline) out.push({ pid: Number(name), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** conmon processes: pid and command line. */
export async function conmonProcesses(): Promise<ProcInfo[]> {
  return (await processes()).filter((p) => /(^|\/)conmon$/.test(p.cmdline.split(' ')[0] ?? ''));
}

/** What a test file could leave on the host. */
export interface HostSnapshot {
  /** Mount points (from /proc/self/mountinfo) under the watched roots. */
  readonly mounts: string[];
  /** conmon command lines that mention a watched root. */
  readonly conmons: string[];
  /** Cgroup directories `<ctrl>/<cgroupParent>/<id>` of the watched ids. */
  readonly cgroups: string[];
  /** Hierarchies in which `<cgroupParent>` exists. */
  readonly cgroupParents: string[];
  /** Which of `berth server`'s host-wide network objects exist: the berth0 bridge, nftables `inet berth-net`, `ip berth-ports`. */
  readonly defaultNetwork: string[];
}

/** `berth server`'s host-wide network objects that exist now (see `HostSnapshot.defaultNetwork`). */
function defaultNetworkObjects(): string[] {
  const tables = (spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.replace(/^table /, '').trim());
  return [
    ...(existsSync('/sys/class/net/berth0') ? ['bridge berth0'] : []),
    ...['inet berth-net', 'ip berth-ports'].filter((t) => tables.includes(t)),
  ];
}

/**
 * Removes the default network's bridge and nftables tables a spawned `berth server` made
 * (they stay while a server runs, as docker0 does) when they did not exist `before`.
 */
export function removeDefaultNetworkIfNew(before: HostSnapshot): void {
  for (const o of defaultNetworkObjects().filter((x) => !before.defaultNetwork.includes(x))) {
    const [kind, name] = o.split(' ') as [string, string];
    if (kind === 'bridge') spawnSync('ip', ['link', 'del', name]);
    else spawnSync('nft', ['delete', 'table', kind, name]);
  }
}

/** Takes a snapshot of what belongs to `roots` (path prefixes) and `ids` (runtime container ids). */
export async function hostSnapshot(roots: readonly string[], ids: Iterable<string>, cgroupParent = DEFAULT_CGROUP_PARENT): Promise<HostSnapshot> {
  const mounts = (await Promise.all(roots.map((r) => mountPointsUnder(r)))).flat().sort();
  const conmons = (await conmonProcesses()).filter((p) => roots.some((r) => p.cmdline.includes(r))).map((p) => `${p.pid} ${p.cmdline}`).sort();
  const cgroups: string[] = [];
  for (const id of new Set(ids)) cgroups.push(...(await cgroupDirsOf(id, cgroupParent)));
  const cgroupParents: string[] = [];
  for (const ctrl of await cgroupControllers()) if (existsSync(join(CGROUP_ROOT, ctrl, cgroupParent))) cgroupParents.push(ctrl);
  return { mounts, conmons, cgroups: cgroups.sort(), cgroupParents: cgroupParents.sort(), defaultNetwork: defaultNetworkObjects() };
}

/**
 * Removes the cgroup parent from the hierarchies where it did not exist before,
 * when it is empty (rmdir of a cgroup with children or processes fails, so another
 * user's containers are never touched).
 */
export async function removeCgroupParentIfNew(before: HostSnapshot, cgroupParent = DEFAULT_CGROUP_PARENT): Promise<void> {
  for (const ctrl of await cgroupControllers()) {
    if (before.cgroupParents.includes(ctrl)) continue;
    await rmdir(join(CGROUP_ROOT, ctrl, cgroupParent)).catch(() => {});
  }
}

/**
 * The safety net after a test: removes everything the runtime under
 * `<dataDir>/runtime` may have left — every runc container of its private root
 * (`delete -f`), the conmon processes whose command line mentions `dataDir`,
 * overlay mounts under `dataDir`, the cgroups of the containers found and of
 * `knownIds` — then the directory itself. Returns the ids it found still present.
 */
export async function sweepDataDir(dataDir: string, knownIds: Iterable<string> = [], cgroupParent = DEFAULT_CGROUP_PARENT): Promise<string[]> {
  const runtimeRoot = join(dataDir, 'runtime');
  const runcRoot = join(runtimeRoot, 'runc');
  const found = new Set<string>();
  for (const id of await runcList(runcRoot).catch(() => [])) found.add(id);
  for (const id of await readdir(join(runtimeRoot, 'containers')).catch(() => [] as string[])) found.add(id);
  for (const id of found) await run('runc', ['--root', runcRoot, 'delete', '--force', id]);
  for (const p of await conmonProcesses()) {
    if (p.cmdline.includes(dataDir)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const mp of (await mountPointsUnder(dataDir)).reverse()) {
    if ((await run('umount', [mp])).code !== 0) await run('umount', ['-l', mp]);
  }
  const ids = new Set([...found, ...knownIds]);
  // Processes still in a cgroup of ours (runc state lost): thaw and kill them.
  for (const id of ids) await killCgroupProcesses(`${cgroupParent}/${id}`);
  const deadline = Date.now() + 5_000;
  for (const id of ids) {
    // the cgroup empties once the killed processes are reaped
    while ((await removeCgroup(`${cgroupParent}/${id}`)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
  await rm(dataDir, { recursive: true, force: true });
  return [...found];
}

/** SIGKILLs every process of the cgroup `cgroupsPath` (thawing it first, so the signal is delivered). */
async function killCgroupProcesses(cgroupsPath: string): Promise<void> {
  await writeFile(join(CGROUP_ROOT, 'freezer', cgroupsPath, 'freezer.state'), 'THAWED').catch(() => {});
  for (const ctrl of await cgroupControllers()) {
    const procs = await readFile(join(CGROUP_ROOT, ctrl, cgroupsPath, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of procs.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok, fail) => srv.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

/** Options of one HTTPS request of a `SpawnedBerth`. */
export interface BerthRequestOptions {
  /** Default `application/json`. */
  readonly contentType?: string;
  /** Send the admin token (default true). */
  readonly token?: boolean;
}

/** A `berth server` run as users run it: `node bin/berth.js server …`. */
export interface SpawnedBerth {
  readonly child: ChildProcess;
  readonly url: string;
  readonly kubeconfig: string;
  /** Milliseconds from spawn to the first `/readyz` 200. */
  readonly readyMs: number;
  /** JSON over HTTPS with the admin token; `opts` may be just the content type. */
  request(method: string, path: string, body?: unknown, opts?: string | BerthRequestOptions): Promise<{ status: number; body: any }>;
  stderr(): string;
  /** Sends `signal` (if still running) and waits for the exit. */
  stop(signal: NodeJS.Signals): Promise<number | string>;
  /** Closes the client's kept-alive connections. */
  closeClient(): void;
}

export interface SpawnBerthOptions {
  readonly dataDir: string;
  readonly port: number;
  /** Default: the hostname (the server's default). */
  readonly nodeName?: string;
  /** `--runtime`; default `runc`. */
  readonly runtime?: 'runc' | 'fake' | 'none';
  /** false: `--no-controllers`. */
  readonly controllers?: boolean;
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /** Keep-alive connections of the client, for concurrent requests; default none (a connection per request). */
  readonly maxSockets?: number;
}

/** Spawns `berth server` and resolves once `/readyz` answers 200. */
export async function spawnBerth(opts: SpawnBerthOptions): Promise<SpawnedBerth> {
  const started = performance.now();
  const args = [
    BERTH_BIN, 'server', '--data-dir', opts.dataDir, '--listen', `127.0.0.1:${opts.port}`,
    ...(opts.nodeName ? ['--node-name', opts.nodeName] : []), '--runtime', opts.runtime ?? 'runc', '--log-level', opts.logLevel ?? 'warn',
    ...(opts.controllers === false ? ['--no-controllers'] : []),
  ];
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-64_000)));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async (signal: NodeJS.Signals): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
    return child.exitCode ?? child.signalCode!;
  };
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = performance.now() + timeoutMs;
  let url: string | undefined;
  for (;;) {
    url = /serving on (https:\/\/\S+)/.exec(stderr)?.[1];
    if (url) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`berth server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${stderr}`);
    if (performance.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`berth server not serving within ${timeoutMs} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const ca = await readFile(join(opts.dataDir, 'pki/ca.crt'), 'utf8');
  const token = (await readFile(join(opts.dataDir, 'pki/admin.token'), 'utf8')).trim();
  const agent = opts.maxSockets ? new https.Agent({ ca, keepAlive: true, maxSockets: opts.maxSockets }) : new https.Agent({ ca, keepAlive: false });
  const request = (method: string, path: string, body?: unknown, o: string | BerthRequestOptions = {}) =>
    new Promise<{ status: number; body: any }>((ok, fail) => {
      const { contentType = 'application/json', token: withToken = true } = typeof o === 'string' ? { contentType: o } : o;
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string> = withToken ? { authorization: `Bearer ${token}` } : {};
      if (payload) {
        headers['content-type'] = contentType;
        headers['content-length'] = String(payload.length);
      }
      const req = https.request(new URL(path, url), { method, headers, agent, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('response aborted')));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // plain text
          }
          ok({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', fail);
      req.end(payload);
    });
  for (;;) {
    const r = await request('GET', '/readyz', undefined, { token: false }).catch((e: Error) => e);
    if (!(r instanceof Error) && r.status === 200) break;
    if (performance.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`/readyz not 200 within ${timeoutMs} ms:\n${stderr}`);
    }
    await new Promise((r2) => setTimeout(r2, 10));
  }
  return {
    child, url, kubeconfig: join(opts.dataDir, 'kubeconfig.yaml'), readyMs: performance.now() - started,
    request, stderr: () => stderr, stop, closeClient: () => agent.destroy(),
  };
}

/** A control plane as the e2e tests hold one (the harness's `ControlPlane`). */
interface E2eControlPlane {
  request(method: string, path: string): Promise<{ body: any }>;
  readonly dataDir: string;
  readonly server: { close(): Promise<void> };
  stop(): Promise<void>;
}

const CONTAINERS_PATH = '/apis/berth.dev/v1/namespaces/default/containers';

/** Deletes every Container of `default` through the API and waits until their finalizers let them go; records their runtime IDs in `ids`. */
export async function deleteAllContainers(cp: E2eControlPlane, ids: Set<string>, timeoutMs = 20_000): Promise<void> {
  const list = await cp.request('GET', CONTAINERS_PATH);
  for (const c of list.body.items ?? []) {
    if (c.status?.containerID) ids.add(c.status.containerID);
    await cp.request('DELETE', `${CONTAINERS_PATH}/${c.metadata.name}`);
  }
  const deadline = Date.now() + timeoutMs;
  while (((await cp.request('GET', CONTAINERS_PATH)).body.items ?? []).length > 0) {
    if (Date.now() > deadline) throw new Error(`Containers still there after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops an e2e control plane: the server first (containers keep running), a sweep of its
 * data dir while the runtime state is still there, then the rest; and a sweep of `root`.
 */
export async function stopAndSweep(cp: E2eControlPlane | undefined, root: string | undefined, ids: Set<string>): Promise<void> {
  if (cp) {
    await cp.server.close().catch((err: unknown) => console.error('stopping the control plane failed', err));
    if (cp.dataDir) await sweepDataDir(cp.dataDir, ids);
    await cp.stop().catch((err: unknown) => console.error('stopping the control plane failed', err));
  }
  if (root) await sweepDataDir(root, ids);
}

/** The host names a network test's node uses (bridges, namespaces, veths, nftables tables), unique per run. */
export interface TestNetworkNames {
  readonly bridgePrefix: string;
  readonly netnsPrefix: string;
  readonly vethPrefix: string;
  readonly nftTable: string;
  readonly portsTable: string;
}

/**
 * Names for a network test (`tag` like `bt7p`, a random suffix) and its subnets
 * `10.<octet>.N+i.0/24` with a random N, so that runs never collide with each other or with berth0.
 */
export function testNetwork(tag: string, octet: number): { names: TestNetworkNames; subnet: (i: number) => string } {
  const r = Math.random().toString(16).slice(2, 6);
  const n = 10 + Math.floor(Math.random() * 200);
  return {
    names: { bridgePrefix: `${tag}${r}`, netnsPrefix: `${tag}-${r}-`, vethPrefix: `${tag}v${r}`, nftTable: `${tag}_${r}`, portsTable: `${tag}_ports_${r}` },
    subnet: (i) => `10.${octet}.${n + i}.0/24`,
  };
}

/** What a network test's node left on the host under `names`: namespaces, links, and nftables tables (`family name`). */
export function networkLeftovers(names: TestNetworkNames): { netns: string[]; links: string[]; tables: string[] } {
  const listed = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout ?? '';
  const ours = new Set([`inet ${names.nftTable}`, `ip ${names.portsTable}`]);
  return {
    netns: existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(names.netnsPrefix)) : [],
    links: readdirSync('/sys/class/net').filter((n) => n.startsWith(names.bridgePrefix) || n.startsWith(names.vethPrefix)),
    tables: listed.split('\n').map((l) => l.replace(/^table /, '').trim()).filter((t) => ours.has(t)),
  };
}

/** Removes everything `networkLeftovers` finds. */
export function sweepTestNetwork(names: TestNetworkNames): void {
  const l = networkLeftovers(names);
  for (const ns of l.netns) spawnSync('ip', ['netns', 'del', ns]);
  for (const link of l.links) spawnSync('ip', ['link', 'del', link]);
  spawnSync('nft', ['delete', 'table', 'inet', names.nftTable]);
  spawnSync('nft', ['delete', 'table', 'ip', names.portsTable]);
}

/** GET http://127.0.0.1:port/path without keep-alive: the status and body, or the error (refused, timeout). */
export function httpGet(port: number, path: string): Promise<{ status: number; body: string } | Error> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e));
  });
}

/** What `startWithBusybox` started. */
export interface BusyboxControlPlane {
  /** The temporary root holding the control plane's data, the fixture and what `prepare` made. */
  readonly root: string;
  readonly cp: ControlPlane;
  readonly fixture: BusyboxImage;
}

/**
 * The usual start of an end-to-end test: a new temporary root `berth-e2e-<tag>-…`, the
 * busybox fixture built in it, `prepare(root)` (e.g. files or a registry the control
 * plane needs; the options it returns are added to `opts`), then `startControlPlane`
 * with its data under the same root, and `busybox:latest` imported and Ready. The
 * options default to the runc agent with the controllers on node `<tag>`.
 */
export async function startWithBusybox(tag: string, opts: ControlPlaneOptions = {}, prepare?: (root: string) => Promise<ControlPlaneOptions | void>): Promise<BusyboxControlPlane> {
  const root = await mkdtemp(join(tmpdir(), `berth-e2e-${tag}-`));
  const fixture = await buildBusyboxImage(join(root, 'fixture'));
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = root; // mkdtemp(tmpdir()) of the control plane (and of `prepare`) lands under root
  let cp: ControlPlane;
  try {
    const more = (await prepare?.(root)) ?? {};
    cp = await startControlPlane({ runtime: 'runc', controllers: true, nodeName: tag, ...opts, ...more });
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
  const images = '/apis/berth.dev/v1/namespaces/default/images';
  const created = await cp.request('POST', images, {
    body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.layoutDir } }, tags: ['busybox:latest'] } },
  });
  if (created.status !== 201) throw new Error(`importing busybox: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const phase = (await cp.request('GET', `${images}/busybox`)).body.status?.phase;
    if (phase === 'Ready') break;
    if (Date.now() > deadline) throw new Error(`busybox not Ready after 30 s (phase ${phase})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { root, cp, fixture };
}

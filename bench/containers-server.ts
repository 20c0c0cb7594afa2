/**
 * The berth server as the container benchmarks run it: as users run it, a child
 * process `node <berth> server --data-dir DIR --listen 127.0.0.1:0 --runtime KIND`
 * running as root with the real runc agent (or the fake runtime), and a safety net
 * that removes whatever it ran — runc containers, conmon processes, overlay mounts and
 * cgroups — even when the benchmark fails, times out or is interrupted.
 *
 * `<berth>` is `bin/berth.js`'s fast path, the esbuild bundle of `cli/main.ts`, built
 * from the sources as they are now into `dist-bench-berth/` (other engineers edit the
 * sources while benchmarks run, so `dist/berth.mjs` is usually stale and `bin/berth.js`
 * would fall back to tsx, which costs about 40 MB and start-up CPU). With
 * `BERTH_FROM_SOURCE=1` the child is `node bin/berth.js …` through tsx instead.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSync } from '../scripts/bundle.ts';
import { parse as parseYaml } from 'yaml';
import { adminKubeconfigPath } from '../cli/data-dir.ts';
import type { ApiEndpoint } from './api-client.ts';
import { onExit, spawnTracked, stopChild } from './cleanup.ts';
import { readProcessCpuSeconds, readProcessMemory } from './proc.ts';
import { sleep } from './stats.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** Cgroup parent of the runc runtime (`DEFAULT_CGROUP_PARENT` of `runtime/server`). */
const BERTH_CGROUP_PARENT = 'berth';
const CGROUP_ROOT = '/sys/fs/cgroup';

let bundled = false;

/** The bundled `berth` program the benchmarks run (profiles map back to sources through it). */
export const BERTH_BUNDLE = path.join(REPO_ROOT, 'dist-bench-berth', 'berth.mjs');

/** Bundles `berth-entry.ts` (`cli/main.ts` run as `bin/berth.js` runs it) with `scripts/bundle.ts`. */
function bundleBerth(): string {
  if (!bundled) {
    bundleSync({ berth: path.join(REPO_ROOT, 'bench', 'berth-entry.ts') }, path.dirname(BERTH_BUNDLE));
    bundled = true;
  }
  return BERTH_BUNDLE;
}

export interface BerthServerOptions {
  /** `--data-dir`; the caller owns it (removes it after `stop`). */
  readonly dataDir: string;
  readonly runtime: 'runc' | 'fake';
  /** `--log-level`; default `info`, what users run. The log goes to `<dataDir>/server.log`. */
  readonly logLevel?: string;
  /** Write a V8 CPU profile of the server here when it stops. */
  readonly cpuProfDir?: string;
  readonly startTimeoutMs?: number;
}

/** A running `berth server` child. */
export interface BerthServer extends ApiEndpoint {
  readonly pid: number;
  readonly dataDir: string;
  /** The server's stderr: its pino JSON log lines and the `serving on` banner. */
  readonly logPath: string;
  /** `VmRSS` and `VmHWM` of the server process, bytes. */
  memory(): { rssBytes: number; peakRssBytes: number };
  /** User + system CPU seconds of the server process so far (its own threads). */
  cpuSeconds(): number;
  /** SIGTERM (graceful close; containers keep running), SIGKILL after 15 s. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `berth server` on `dataDir` and resolves once it serves (the agent has
 * registered its node and its controllers run). Registers the runtime safety net for
 * `dataDir` (`sweepRuntime`) to run at process exit; call `sweepRuntime` yourself after
 * `stop` on the normal path.
 */
export async function startBerthServer(opts: BerthServerOptions): Promise<BerthServer> {
  const fromSource = process.env.BERTH_FROM_SOURCE === '1';
  const entry = fromSource ? path.join(REPO_ROOT, 'bin', 'berth.js') : bundleBerth();
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const logPath = path.join(opts.dataDir, 'server.log');
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const logFd = fs.openSync(logPath, 'a');
  const args = [...nodeArgs, entry, 'server', '--data-dir', opts.dataDir, '--listen', '127.0.0.1:0', '--runtime', opts.runtime, '--log-level', opts.logLevel ?? 'info'];
  let tracked;
  try {
    tracked = spawnTracked(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  const { child, exited } = tracked;
  const unregisterSweep = onExit(() => sweepRuntime(opts.dataDir));
  const pid = child.pid!;
  let exitCode: number | string | undefined;
  void exited.then((c) => (exitCode = c));

  const deadline = performance.now() + (opts.startTimeoutMs ?? 60_000);
  let url: string | undefined;
  while (!url) {
    const log = fs.readFileSync(logPath, 'utf8');
    url = /berth server: serving on (https:\/\/\S+)/.exec(log)?.[1];
    if (url) break;
    if (exitCode !== undefined || performance.now() > deadline) {
      await stopChild(child, exited, 'SIGKILL', 0);
      throw new Error(`berth server ${exitCode !== undefined ? `exited (${exitCode})` : 'did not serve in time'}:\n${log.slice(-3000)}`);
    }
    await sleep(50);
  }
  const kubeconfig = parseYaml(fs.readFileSync(adminKubeconfigPath(opts.dataDir), 'utf8')) as {
    clusters: { cluster: { 'certificate-authority-data': string } }[];
    users: { user: { token: string } }[];
  };
  let stopped: Promise<void> | undefined;
  return {
    url,
    token: kubeconfig.users[0]!.user.token,
    caPem: Buffer.from(kubeconfig.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString('utf8'),
    pid,
    dataDir: opts.dataDir,
    logPath,
    memory: () => readProcessMemory(pid),
    cpuSeconds: () => readProcessCpuSeconds(pid),
    stop: () =>
      (stopped ??= (async () => {
        await stopChild(child, exited, 'SIGTERM', 15_000);
        unregisterSweep();
        // Kept for the exit: the caller sweeps after `stop`, the exit action catches the rest.
        onExit(() => sweepRuntime(opts.dataDir));
      })()),
  };
}

/** What `sweepRuntime` found left behind (all zero when berth cleaned up after itself). */
export interface SweepReport {
  readonly runcContainers: number;
  readonly conmonProcesses: number;
  readonly mounts: number;
  readonly cgroupDirs: number;
}

/**
 * The safety net for a berth data directory, synchronous so it also runs from the
 * `exit` event: `runc delete -f` of every container in `<dataDir>/runtime/runc`,
 * SIGKILL of every conmon whose pid file is under `<dataDir>/runtime/containers`,
 * lazy unmount of every mount under `dataDir`, and removal of the cgroups
 * `/berth/<id>` of those containers. Does not remove `dataDir`.
 */
export function sweepRuntime(dataDir: string): SweepReport {
  const runcRoot = path.join(dataDir, 'runtime', 'runc');
  const containersDir = path.join(dataDir, 'runtime', 'containers');
  const ids = new Set<string>();
  let runcContainers = 0;
  if (fs.existsSync(runcRoot)) {
    const list = spawnSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8', timeout: 10_000 });
    for (const id of list.stdout?.split('\n').map((s) => s.trim()).filter(Boolean) ?? []) {
      ids.add(id);
      runcContainers++;
      spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore', timeout: 10_000 });
    }
  }
  let conmonProcesses = 0;
  for (const id of safeReaddir(containersDir)) {
    ids.add(id);
    const pid = Number(safeRead(path.join(containersDir, id, 'conmon.pid')).trim());
    if (pid > 1 && safeRead(`/proc/${pid}/cmdline`).includes(id)) {
      try {
        process.kill(pid, 'SIGKILL');
        conmonProcesses++;
      } catch {
        // gone meanwhile
      }
    }
  }
  const mounts = mountPointsUnder(dataDir).sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore', timeout: 10_000 });
  let cgroupDirs = 0;
  for (const ctrl of safeReaddir(CGROUP_ROOT)) {
    for (const id of ids) {
      const dir = path.join(CGROUP_ROOT, ctrl, BERTH_CGROUP_PARENT, id);
      if (fs.existsSync(dir)) {
        cgroupDirs++;
        removeCgroupTree(dir);
      }
    }
    // the parent itself once empty (runc makes it again for the next server's containers)
    try {
      fs.rmdirSync(path.join(CGROUP_ROOT, ctrl, BERTH_CGROUP_PARENT));
    } catch {
      // absent, or in use by another berth
    }
  }
  sweepHostNetwork();
  return { runcContainers, conmonProcesses, mounts: mounts.length, cgroupDirs };
}

/** berth's host-wide network objects: the default bridge and its nftables tables. */
const HOST_NETWORK = { bridge: 'berth0', tables: [['inet', 'berth-net'], ['ip', 'berth-ports']] as const };

/** Which of them existed before the first benchmark server started (those are left alone). */
const hostNetworkBefore = ((): { bridge: boolean; tables: Set<string> } => {
  const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout ?? '';
  return { bridge: fs.existsSync(`/sys/class/net/${HOST_NETWORK.bridge}`), tables: new Set(tables.split('\n').map((l) => l.replace(/^table /, '').trim())) };
})();

/** Removes the default bridge and tables the benchmark servers made (they stay while `berth server` runs, as docker0 does). */
function sweepHostNetwork(): void {
  if (!hostNetworkBefore.bridge && fs.existsSync(`/sys/class/net/${HOST_NETWORK.bridge}`)) spawnSync('ip', ['link', 'del', HOST_NETWORK.bridge], { stdio: 'ignore' });
  for (const [family, name] of HOST_NETWORK.tables) {
    if (!hostNetworkBefore.tables.has(`${family} ${name}`)) spawnSync('nft', ['delete', 'table', family, name], { stdio: 'ignore' });
  }
}

/** Mount points at or below `prefix` in this mount namespace. */
export function mountPointsUnder(prefix: string): string[] {
  const out: string[] = [];
  for (const line of safeRead('/proc/self/mountinfo').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === prefix || p.startsWith(`${prefix}/`)) out.push(p);
  }
  return out;
}

/** rmdir of a cgroup directory and its sub-cgroups, deepest first; leaves what is busy. */
export function removeCgroupTree(dir: string): void {
  for (const e of safeReaddir(dir, true)) removeCgroupTree(path.join(dir, e));
  try {
    fs.rmdirSync(dir);
  } catch {
    // busy or gone
  }
}

/** Summed `VmRSS` of the conmon processes of a berth data directory, and how many there are. */
export function conmonMemory(dataDir: string): { count: number; rssBytes: number } {
  const containersDir = path.join(dataDir, 'runtime', 'containers');
  let count = 0;
  let rssBytes = 0;
  for (const id of safeReaddir(containersDir)) {
    const pid = Number(safeRead(path.join(containersDir, id, 'conmon.pid')).trim());
    if (!(pid > 1) || !safeRead(`/proc/${pid}/cmdline`).includes(id)) continue;
    try {
      rssBytes += readProcessMemory(pid).rssBytes;
      count++;
    } catch {
      // exited meanwhile
    }
  }
  return { count, rssBytes };
}

/** `runc --version`, `conmon --version` and (if installed) `podman --version`, first lines. */
export function runtimeVersions(): Record<string, string> {
  const first = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
    } catch {
      return 'not installed';
    }
  };
  return { runc: first('runc', ['--version']), conmon: first('conmon', ['--version']), podman: first('podman', ['--version']) };
}

/** Why the real-runtime benchmarks cannot run here, or undefined when they can. */
export function whyNoRealRuntime(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const bin of ['/usr/sbin/runc', '/usr/bin/conmon']) if (!fs.existsSync(bin)) return `${bin} is not installed`;
  return undefined;
}

function safeReaddir(dir: string, dirsOnly = false): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !dirsOnly || e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

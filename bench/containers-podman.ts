/**
 * `podman run --rm` of the busybox fixture, the comparison for apply → Exited. Podman
 * runs with a private storage root, run root and tmp dir under a scratch directory and
 * the flags this machine needs (`../shared/notes/runtime.md` §6): `--runtime runc`
 * (crun refuses the hybrid cgroup layout), `--ulimit nofile=1024:1024 --ulimit
 * nproc=4096:4096` (root lacks CAP_SYS_RESOURCE), `--network none` (podman's default
 * network collides with other subnets and flips ip_forward).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DISTURBED_OTHER_PERCENT } from './benchmark.ts';
import { onExit } from './cleanup.ts';
import { loadAverage, OtherLoadSampler, settleSampler } from './containers-load.ts';
import { mountPointsUnder, removeCgroupTree } from './containers-server.ts';
import { sleep, summarize } from './stats.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Podman's cgroupfs parent. */
const LIBPOD_PARENT = 'libpod_parent';
export const PODMAN_RUN_FLAGS = ['--rm', '--network', 'none', '--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'] as const;

/** Why podman cannot run here, or undefined. */
export function whyNoPodman(): string | undefined {
  const r = spawnSync('podman', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'podman is not installed (apt-get install -y --no-install-recommends podman catatonit containernetworking-plugins)';
}

/** podman with private storage under `dir`. */
export class PrivatePodman {
  private readonly globalArgs: string[];
  private readonly unregister: () => void;
  /** libpod_parent existed before we ran podman: then it is not ours to remove. */
  private readonly hadLibpodParent = fs.existsSync(path.join(CGROUP_ROOT, 'memory', LIBPOD_PARENT));

  constructor(private readonly dir: string) {
    this.globalArgs = ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp')];
    this.unregister = onExit(() => this.sweep());
  }

  /** `tar -C rootfsDir -c . | podman import - localhost/busybox`. */
  importRootfs(rootfsDir: string): void {
    const tar = execFileSync('tar', ['-C', rootfsDir, '--numeric-owner', '-c', '.'], { maxBuffer: 64 << 20 });
    execFileSync('podman', [...this.globalArgs, 'import', '-', 'localhost/busybox'], { input: tar, stdio: ['pipe', 'ignore', 'pipe'], timeout: 60_000 });
  }

  /** `podman run --rm … localhost/busybox <command>`; resolves with the milliseconds until podman exited. */
  run(command: readonly string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn('podman', [...this.globalArgs, 'run', ...PODMAN_RUN_FLAGS, 'localhost/busybox', ...command], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        const ms = performance.now() - t0;
        if (code === 0) resolve(ms);
        else reject(new Error(`podman run failed (${code}): ${err.trim().slice(-500)}`));
      });
    });
  }

  /**
   * Removes every podman container and the storage (`rm -rf`; not `podman system reset`,
   * which also touches host-wide network configuration), unmounts what is left, and
   * removes podman's cgroups if we made them.
   */
  sweep(): void {
    if (fs.existsSync(path.join(this.dir, 'storage'))) {
      spawnSync('podman', [...this.globalArgs, 'rm', '-af'], { stdio: 'ignore', timeout: 30_000 });
    }
    for (const m of mountPointsUnder(this.dir).sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m], { stdio: 'ignore', timeout: 10_000 });
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (!this.hadLibpodParent) {
      for (const ctrl of fs.readdirSync(CGROUP_ROOT)) removeCgroupTree(path.join(CGROUP_ROOT, ctrl, LIBPOD_PARENT));
    }
  }

  close(): void {
    this.sweep();
    this.unregister();
  }
}

/** One timed run: its duration and when it began (absolute ms, for the load sampler). */
export interface TimedRun {
  readonly ms: number;
  readonly fromAbsMs: number;
}

export interface AlternateOptions {
  /** Log prefix, e.g. `ctr-exit`. */
  readonly label: string;
  readonly log: (line: string) => void;
  readonly warmup: number;
  readonly runs: number;
  /** Pause after every run. */
  readonly settleMs: number;
  /** Directories whose processes count as the benchmark's own (not as other load). */
  readonly ownDirs: readonly string[];
  /** Podman's run of `true` (`PrivatePodman.run`), in ms. */
  readonly podman: () => Promise<number>;
  /** berth's run, named `name`, in ms. */
  readonly berth: (name: string) => Promise<number>;
}

/**
 * Warm-up runs, then berth and podman runs alternating (podman first on even rounds),
 * with the load of other processes sampled so disturbed runs are counted. The shared
 * method of the benchmarks against `podman run --rm` (`ctr-exit`, `cli-run`).
 */
export async function alternateWithPodman(opts: AlternateOptions) {
  const timed = async (f: () => Promise<number>): Promise<TimedRun> => {
    const fromAbsMs = performance.timeOrigin + performance.now();
    return { ms: await f(), fromAbsMs };
  };
  opts.log(`${opts.label}: ${opts.warmup} warm-up runs each`);
  for (let i = 0; i < opts.warmup; i++) {
    await opts.podman();
    await opts.berth(`${opts.label}-warm-${i}`);
  }
  opts.log(`${opts.label}: ${opts.runs} runs each, alternating`);
  const loadBefore = loadAverage();
  const sampler = new OtherLoadSampler([...opts.ownDirs]);
  const t0 = performance.now();
  const podmanRuns: TimedRun[] = [];
  const berthRuns: TimedRun[] = [];
  for (let i = 0; i < opts.runs; i++) {
    for (const which of i % 2 === 0 ? ['podman', 'berth'] : ['berth', 'podman']) {
      if (which === 'podman') podmanRuns.push(await timed(opts.podman));
      else berthRuns.push(await timed(() => opts.berth(`${opts.label}-${i}`)));
      await sleep(opts.settleMs);
    }
  }
  await settleSampler();
  sampler.stop();
  const disturbedOf = (rs: TimedRun[]) => rs.filter((r) => sampler.otherPercentBetween(r.fromAbsMs, r.fromAbsMs + r.ms) > DISTURBED_OTHER_PERCENT).length;
  return {
    berth: summarize(berthRuns.map((r) => r.ms)),
    podman: summarize(podmanRuns.map((r) => r.ms)),
    disturbedRuns: { berth: disturbedOf(berthRuns), podman: disturbedOf(podmanRuns) },
    otherCpuPercent: sampler.otherPercentBetween(performance.timeOrigin + t0, performance.timeOrigin + performance.now()),
    loadBefore,
    loadAfter: loadAverage(),
  };
}

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
import { onExit } from './cleanup.ts';
import { mountPointsUnder, removeCgroupTree } from './containers-server.ts';

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

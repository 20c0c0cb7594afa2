/**
 * The floor for starting a container on this machine: raw `runc run -d` of the busybox
 * fixture's root filesystem, with a config from `runc spec` adjusted (the command, no
 * terminal, a cgroup per container under `/berth-bench-runc`). No daemon, no overlay,
 * no monitor. Timed from spawning `runc run -d` until it exits, which is when the
 * container's process has been started (runc start has signalled its exec fifo).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onExit } from './cleanup.ts';
import { removeCgroupTree } from './containers-server.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP_PARENT = 'berth-bench-runc';

/** Raw runc with a private `--root`, one bundle per container under `dir`. */
export class RawRunc {
  private readonly root: string;
  private readonly baseSpec: Record<string, unknown>;
  private readonly unregister: () => void;
  private n = 0;

  /** `dir`: a scratch directory (the caller removes it after `close`); `rootfsDir`: the unpacked image. */
  constructor(
    private readonly dir: string,
    rootfsDir: string,
    command: readonly string[],
  ) {
    this.root = path.join(dir, 'state');
    const specDir = path.join(dir, 'spec');
    fs.mkdirSync(specDir, { recursive: true });
    execFileSync('runc', ['spec'], { cwd: specDir });
    const spec = JSON.parse(fs.readFileSync(path.join(specDir, 'config.json'), 'utf8')) as {
      process: Record<string, unknown>;
      root: Record<string, unknown>;
      linux: Record<string, unknown>;
    };
    spec.process.args = [...command];
    spec.process.terminal = false;
    spec.root = { path: rootfsDir, readonly: true };
    this.baseSpec = spec;
    this.unregister = onExit(() => this.sweep());
  }

  /** Writes the bundle of a new container (not timed) and returns its ID. */
  prepare(): string {
    const id = `bench-runc-${process.pid}-${this.n++}`;
    const bundle = path.join(this.dir, 'bundles', id);
    fs.mkdirSync(bundle, { recursive: true });
    const spec = structuredClone(this.baseSpec) as { linux: Record<string, unknown> };
    spec.linux.cgroupsPath = `/${CGROUP_PARENT}/${id}`;
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    return id;
  }

  /** `runc run -d` of a prepared container; resolves with the milliseconds it took. */
  run(id: string): Promise<number> {
    const bundle = path.join(this.dir, 'bundles', id);
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn('runc', ['--root', this.root, 'run', '-d', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        const ms = performance.now() - t0;
        if (code === 0) resolve(ms);
        else reject(new Error(`runc run -d ${id} failed (${code}): ${err.trim()}`));
      });
    });
  }

  /** `runc delete -f` and the container's cgroups and bundle; returns the milliseconds `runc delete` took. */
  remove(id: string): number {
    const t0 = performance.now();
    spawnSync('runc', ['--root', this.root, 'delete', '-f', id], { stdio: 'ignore', timeout: 10_000 });
    const ms = performance.now() - t0;
    for (const ctrl of fs.readdirSync(CGROUP_ROOT)) removeCgroupTree(path.join(CGROUP_ROOT, ctrl, CGROUP_PARENT, id));
    fs.rmSync(path.join(this.dir, 'bundles', id), { recursive: true, force: true });
    return ms;
  }

  /** Deletes every container under the private root and the cgroup parent. Idempotent. */
  sweep(): void {
    if (fs.existsSync(this.root)) {
      const list = spawnSync('runc', ['--root', this.root, 'list', '-q'], { encoding: 'utf8', timeout: 10_000 });
      for (const id of list.stdout?.split('\n').map((s) => s.trim()).filter(Boolean) ?? []) this.remove(id);
    }
    for (const ctrl of fs.readdirSync(CGROUP_ROOT)) {
      const parent = path.join(CGROUP_ROOT, ctrl, CGROUP_PARENT);
      if (fs.existsSync(parent)) removeCgroupTree(parent);
    }
  }

  close(): void {
    this.sweep();
    this.unregister();
  }
}

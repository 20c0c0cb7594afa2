import { readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Mount point of the cgroup v1 hierarchies. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/** Raw numbers of one container's cgroup (v1). */
export interface CgroupStats {
  readonly cpuUsageNs: number;
  readonly memoryUsageBytes: number;
  readonly memoryWorkingSetBytes: number;
  /** Undefined when unlimited. */
  readonly memoryLimitBytes?: number;
  readonly pids: number;
}

const UNLIMITED = 2 ** 62;

async function readNumber(path: string): Promise<number> {
  return Number((await readFile(path, 'utf8')).trim());
}

/** Reads CPU, memory and pids of the cgroup at `cgroupsPath` (e.g. `/berth/<id>`). */
export async function readCgroupStats(cgroupsPath: string): Promise<CgroupStats> {
  const at = (ctrl: string, file: string): string => join(CGROUP_ROOT, ctrl, cgroupsPath, file);
  const [cpuUsageNs, usage, limit, memStat, pids] = await Promise.all([
    readNumber(at('cpuacct', 'cpuacct.usage')),
    readNumber(at('memory', 'memory.usage_in_bytes')),
    readNumber(at('memory', 'memory.limit_in_bytes')),
    readFile(at('memory', 'memory.stat'), 'utf8'),
    readNumber(at('pids', 'pids.current')),
  ]);
  const inactiveFile = Number(/^total_inactive_file (\d+)$/m.exec(memStat)?.[1] ?? 0);
  return {
    cpuUsageNs,
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: Math.max(0, usage - inactiveFile),
    ...(limit < UNLIMITED ? { memoryLimitBytes: limit } : {}),
    pids,
  };
}

/** The memory cgroup's `oom_kill` count; 0 when the cgroup is gone. */
export async function readOomKillCount(cgroupsPath: string): Promise<number> {
  try {
    const text = await readFile(join(CGROUP_ROOT, 'memory', cgroupsPath, 'memory.oom_control'), 'utf8');
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The hierarchies mounted under {@link CGROUP_ROOT} (cpu, memory, unified, ...). */
export async function cgroupControllers(): Promise<string[]> {
  return readdir(CGROUP_ROOT).catch(() => []);
}

/**
 * Removes the cgroup directory `cgroupsPath` (and empty children) in every
 * hierarchy. Idempotent; directories that still hold processes are left and
 * returned.
 */
export async function removeCgroup(cgroupsPath: string): Promise<string[]> {
  const left: string[] = [];
  for (const ctrl of await cgroupControllers()) {
    const dir = join(CGROUP_ROOT, ctrl, cgroupsPath);
    if (!(await removeTree(dir))) left.push(dir);
  }
  return left;
}

/** Directories `cgroupsPath` that exist in some hierarchy. */
export async function existingCgroupDirs(cgroupsPath: string): Promise<string[]> {
  const out: string[] = [];
  for (const ctrl of await cgroupControllers()) {
    const dir = join(CGROUP_ROOT, ctrl, cgroupsPath);
    try {
      await readdir(dir);
      out.push(dir);
    } catch {
      // absent in this hierarchy
    }
  }
  return out;
}

async function removeTree(dir: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return true;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  try {
    await rmdir(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

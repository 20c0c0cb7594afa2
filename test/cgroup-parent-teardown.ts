/**
 * vitest global setup: the tests that run real containers put them under the default
 * cgroup parent (`berth` in every cgroup v1 controller, or in the unified hierarchy).
 * If the parent was not there before the run, its empty directories are removed after
 * the last test file; a parent that existed before (a running `berth server`) is left.
 */
import { existsSync } from 'node:fs';
import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
const PARENT = 'berth';

async function parentDirs(): Promise<string[]> {
  if (!existsSync(CGROUP_ROOT)) return [];
  const out: string[] = [];
  if (existsSync(join(CGROUP_ROOT, PARENT))) out.push(join(CGROUP_ROOT, PARENT));
  for (const e of await readdir(CGROUP_ROOT, { withFileTypes: true }).catch(() => [])) {
    const dir = join(CGROUP_ROOT, e.name, PARENT);
    if (e.isDirectory() && existsSync(dir)) out.push(dir);
  }
  return out;
}

export default async function setup(): Promise<() => Promise<void>> {
  const before = new Set(await parentDirs());
  return async () => {
    for (const dir of await parentDirs()) if (!before.has(dir)) await rmdir(dir).catch(() => {});
  };
}

/**
 * A real runc runtime for one test, on a private data root and a random cgroup parent,
 * and everything it made removed when the test finishes (runc state, conmon processes,
 * overlay and other mounts, cgroups, the data root) — even when the test failed.
 * Only for tests running as root (see `realRuntimeMissing`).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished, vi } from 'vitest';
import { removeCgroup } from '../oci/cgroups.ts';
import { mountPointsUnder, unmountOverlay } from '../oci/overlay.ts';
import { RuncRuntimeService } from '../server/runtime-service.ts';
import type { BusyboxRootfs } from './busybox-rootfs.ts';

/** The runtime and its data root (`berth-rt-test-<tag>-…` under the temp dir). */
export function privateRuncRuntime(tag: string, rootfs: BusyboxRootfs): { rt: RuncRuntimeService; root: string } {
  const root = mkdtempSync(join(tmpdir(), `berth-rt-test-${tag}-`));
  const cgroupParent = `/berth-rt-test-${tag}-${randomBytes(4).toString('hex')}`;
  const rt = new RuncRuntimeService({ root, rootfs, cgroupParent });
  onTestFinished(async () => {
    await rt.close();
    const runcRoot = join(root, 'runc');
    for (const id of existsSync(runcRoot) ? readdirSync(runcRoot) : []) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
    const containers = join(root, 'containers');
    for (const id of existsSync(containers) ? readdirSync(containers) : []) {
      try {
        const pid = Number(readFileSync(join(containers, id, 'conmon.pid'), 'utf8').trim());
        if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)) process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      await unmountOverlay(join(containers, id)).catch(() => {});
    }
    for (const mp of (await mountPointsUnder(root)).reverse()) spawnSync('umount', ['-l', mp]);
    await vi.waitFor(async () => expect(await removeCgroup(cgroupParent)).toEqual([]), { timeout: 5_000 });
    rmSync(root, { recursive: true, force: true });
  });
  return { rt, root };
}

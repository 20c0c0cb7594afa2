import { spawnSync } from 'node:child_process';
import { realRuntimeMissing } from '../testing/requires-root.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { RuntimeError } from '../cri/errors.ts';
import type { ContainerConfig, ContainerEvent, ContainerId, ContainerState, LogLine } from '../cri/types.ts';
import type { CommitInput } from '../images/commit.ts';
import { ImageStore } from '../images/image-store.ts';
import { removeCgroup } from '../oci/cgroups.ts';
import { mountPointsUnder, unmountOverlay } from '../oci/overlay.ts';
import { RuncRuntimeService } from './runtime-service.ts';

const missing = realRuntimeMissing();

if (missing) {
  describe('commitContainer (real runc + conmon)', () => {
    it.skip(`SKIPPED: needs root with runc and conmon installed (${missing})`, () => {});
  });
} else {
  let fixtureDir: string;
  let fx: BusyboxImage;
  beforeAll(async () => {
    fixtureDir = mkdtempSync(join(tmpdir(), 'h6-commit-fixture-'));
    fx = await buildBusyboxImage(fixtureDir);
  });
  afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

  interface Sandbox {
    readonly images: ImageStore;
    readonly rt: RuncRuntimeService;
    /** Events of every container, as they come. */
    readonly events: ContainerEvent[];
  }

  /** A private image store, runtime root and cgroup parent; everything is removed after the test, even after a failure. */
  async function sandbox(): Promise<Sandbox> {
    const root = mkdtempSync(join(tmpdir(), 'h6-commit-test-'));
    const cgroupParent = `/h6-commit-test-${randomBytes(4).toString('hex')}`;
    const images = new ImageStore({ root: join(root, 'images') });
    const rt = new RuncRuntimeService({ root: join(root, 'rt'), rootfs: images, cgroupParent });
    const ac = new AbortController();
    onTestFinished(async () => {
      ac.abort();
      await rt.close();
      const runcRoot = join(root, 'rt', 'runc');
      for (const id of existsSync(runcRoot) ? readdirSync(runcRoot) : []) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
      const containers = join(root, 'rt', 'containers');
      for (const id of existsSync(containers) ? readdirSync(containers) : []) {
        killOurConmon(join(containers, id, 'conmon.pid'), id);
        await unmountOverlay(join(containers, id)).catch(() => {});
      }
      for (const mp of (await mountPointsUnder(root)).reverse()) spawnSync('umount', ['-l', mp]);
      await vi.waitFor(async () => expect(await removeCgroup(cgroupParent)).toEqual([]), { timeout: 5_000 });
      rmSync(root, { recursive: true, force: true });
    });
    await images.importImage(fx.ociArchive, { tags: ['busybox:latest'] });
    const events: ContainerEvent[] = [];
    void (async () => {
      for await (const e of rt.events({ signal: ac.signal })) events.push(e);
    })().catch(() => {});
    return { images, rt, events };
  }

  function killOurConmon(pidFile: string, id: string): void {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  let n = 0;
  const config = (image: string, script: string): ContainerConfig => ({
    name: `h6-${process.pid}-${++n}`,
    image,
    command: ['sh', '-c', script],
  });

  async function runToExit(rt: RuncRuntimeService, c: ContainerConfig): Promise<{ id: ContainerId; logs: string[] }> {
    const id = await rt.createContainer(c);
    await rt.startContainer(id);
    await vi.waitFor(async () => expect((await rt.containerStatus(id)).state).toBe('exited'), { timeout: 15_000, interval: 20 });
    const lines: LogLine[] = [];
    for await (const l of rt.logs(id)) lines.push(l);
    return { id, logs: lines.map((l) => l.text) };
  }

  describe('commitContainer (real runc + conmon)', () => {
    it('commits added, deleted and replaced files so a container of the new image sees them, leaving runtime mounts out', async () => {
      const { images, rt, events } = await sandbox();

      // step 1: an exited container adds /data/a, /data/b and /etc/app.conf; commit it as v1 (no pause: it is not running)
      const first = await runToExit(rt, config('busybox', 'mkdir /data && echo a > /data/a && echo b > /data/b && echo conf > /etc/app.conf'));
      expect((await rt.containerStatus(first.id)).exitCode).toBe(0);
      const v1 = await rt.commitContainer(first.id, { images, tags: ['h6/app:v1'], comment: 'data' });
      expect(events.filter((e) => e.id === first.id).map((e) => e.type)).not.toContain('paused');

      // step 2: a container of v1 replaces /data, deletes /etc/app.conf and /etc/group, adds /added; commit as v2
      const second = await runToExit(rt, config('h6/app:v1', 'rm -rf /data && mkdir /data && echo c > /data/c && rm /etc/app.conf /etc/group && echo hi > /added'));
      expect((await rt.containerStatus(second.id)).exitCode).toBe(0);
      const secondLayer = await rt.containerLayer(second.id);
      expect(secondLayer.mountPoints).toEqual(expect.arrayContaining(['proc', 'dev', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname']));
      // runc made the /etc mount points in the upper directory; the commit must not carry them
      expect(existsSync(join(secondLayer.upperDir, 'etc/hosts'))).toBe(true);
      const v2 = await rt.commitContainer(second.id, { images, tags: ['h6/app:v2'], changes: { cmd: ['cat', '/added'], env: [{ name: 'STAGE', value: 'two' }] } });
      expect(v2.id).not.toBe(v1.id);

      // step 3: a container of v2 sees the result of both layers
      const third = await runToExit(rt, config('h6/app:v2', 'ls /data; for f in /etc/group /etc/app.conf /etc/passwd; do test -e $f && echo "$f present" || echo "$f absent"; done; cat /added; echo "STAGE=$STAGE"'));
      expect(third.logs).toEqual(['c', '/etc/group absent', '/etc/app.conf absent', '/etc/passwd present', 'hi', 'STAGE=two']);
      const v2Image = await images.imageStatus('h6/app:v2');
      expect(v2Image?.config.cmd).toEqual(['cat', '/added']);

      // the committed layers hold no mount points the runtime made (/etc/hosts, /proc, …)
      const { layerDirs } = await images.resolveForRun('h6/app:v2');
      expect(layerDirs).toHaveLength(3);
      const top = layerDirs[2]!;
      expect(spawnSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(top, 'data')], { encoding: 'utf8' }).stdout).toBe('y');
      expect(readdirSync(join(top, 'data'))).toEqual(['c']);
      for (const f of ['etc/group', 'etc/app.conf']) expect(lstatSync(join(top, f)).isCharacterDevice(), f).toBe(true);
      for (const dir of layerDirs.slice(1)) {
        const etc = existsSync(join(dir, 'etc')) ? readdirSync(join(dir, 'etc')) : [];
        expect(etc.filter((f) => ['hosts', 'hostname', 'resolv.conf'].includes(f))).toEqual([]);
        for (const d of ['proc', 'sys', 'dev']) expect(existsSync(join(dir, d)), `${d} in ${dir}`).toBe(false);
      }
      for (const id of [first.id, second.id, third.id]) await rt.removeContainer(id);
    });

    it('pauses a running container during the commit and resumes it after, also when the commit fails', async () => {
      const { images, rt, events } = await sandbox();
      const id = await rt.createContainer(config('busybox', 'echo live > /live.txt; exec sleep 3600'));
      await rt.startContainer(id);
      await vi.waitFor(async () => expect((await rt.containerStatus(id)).state).toBe('running'));
      const layer = await rt.containerLayer(id);
      await vi.waitFor(() => expect(existsSync(join(layer.upperDir, 'live.txt'))).toBe(true), { timeout: 5_000 });

      const seen: ContainerState[] = [];
      const watching = {
        async commit(input: CommitInput) {
          seen.push((await rt.containerStatus(id)).state);
          return images.commit(input);
        },
      };
      const result = await rt.commitContainer(id, { images: watching, tags: ['h6/live:1'] });
      expect(seen).toEqual(['paused']);
      expect((await rt.containerStatus(id)).state).toBe('running');
      await vi.waitFor(() => expect(events.filter((e) => e.id === id).map((e) => e.type)).toEqual(['created', 'started', 'paused', 'resumed']));
      expect((await images.imageStatus('h6/live:1'))?.id).toBe(result.id);

      const failing = {
        async commit(_input: CommitInput): Promise<never> {
          seen.push((await rt.containerStatus(id)).state);
          throw new RuntimeError('Internal', 'disk full');
        },
      };
      await expect(rt.commitContainer(id, { images: failing })).rejects.toThrow('disk full');
      expect(seen).toEqual(['paused', 'paused']);
      expect((await rt.containerStatus(id)).state).toBe('running');

      await rt.commitContainer(id, { images: watching, pause: false, tags: ['h6/live:2'] });
      expect(seen).toEqual(['paused', 'paused', 'running']);

      const check = await runToExit(rt, config('h6/live:1', 'cat /live.txt'));
      expect(check.logs).toEqual(['live']);
      await rt.stopContainer(id, 0);
      for (const c of [id, check.id]) await rt.removeContainer(c);
    });

    it('rejects an unknown container with NotFound', async () => {
      const { images, rt } = await sandbox();
      await expect(rt.commitContainer('nope' as ContainerId, { images })).rejects.toMatchObject({ code: 'NotFound' });
    });
  });
}

import { execFileSync, spawnSync } from 'node:child_process';
import { realRuntimeMissing } from '../testing/requires-root.ts';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { ContainerConfig, ContainerEvent, ContainerId, LogLine } from '../cri/types.ts';
import { CGROUP_ROOT, existingCgroupDirs, removeCgroup } from '../oci/cgroups.ts';
import { mountPointsUnder, unmountOverlay } from '../oci/overlay.ts';
import { BusyboxRootfs, BUSYBOX_REF } from '../testing/busybox-rootfs.ts';
import { runtimeConformance } from '../testing/conformance.ts';
import { RuncRuntimeService } from './runtime-service.ts';

const missing = realRuntimeMissing();

if (missing) {
  describe('RuncRuntimeService (real runc + conmon)', () => {
    it.skip(`SKIPPED: needs root with runc and conmon installed (${missing})`, () => {});
  });
} else {
  let fixture: BusyboxRootfs | undefined;
  const rootfs = (): BusyboxRootfs => (fixture ??= new BusyboxRootfs());
  afterAll(() => fixture?.dispose());

  /** A private data root and cgroup parent; `cleanup` removes everything under them, even after failures. */
  interface Sandbox {
    readonly root: string;
    readonly cgroupParent: string;
    readonly runtimes: RuncRuntimeService[];
    open(): RuncRuntimeService;
    cleanup(): Promise<void>;
  }

  function sandbox(): Sandbox {
    const root = mkdtempSync(join(tmpdir(), 'berth-rt-test-'));
    const cgroupParent = `/berth-rt-test-${randomBytes(4).toString('hex')}`;
    const runtimes: RuncRuntimeService[] = [];
    return {
      root,
      cgroupParent,
      runtimes,
      open() {
        const rt = new RuncRuntimeService({ root, rootfs: rootfs(), cgroupParent });
        runtimes.push(rt);
        return rt;
      },
      async cleanup() {
        for (const rt of runtimes) await rt.close();
        const runcRoot = join(root, 'runc');
        for (const id of existsSync(runcRoot) ? readdirSync(runcRoot) : []) {
          spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
        }
        const containers = join(root, 'containers');
        for (const id of existsSync(containers) ? readdirSync(containers) : []) {
          killOurConmon(join(containers, id, 'conmon.pid'), id);
          await unmountOverlay(join(containers, id)).catch(() => {});
        }
        for (const mp of (await mountPointsUnder(root)).reverse()) spawnSync('umount', ['-l', mp]);
        await vi.waitFor(async () => expect(await removeCgroup(cgroupParent)).toEqual([]), { timeout: 5_000 });
        rmSync(root, { recursive: true, force: true });
      },
    };
  }

  function killOurConmon(pidFile: string, id: string): void {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  runtimeConformance(
    'RuncRuntimeService (conmon + runc)',
    async () => {
      const box = sandbox();
      return { runtime: box.open(), image: BUSYBOX_REF, cleanup: () => box.cleanup() };
    },
    { eventLatencyMs: 250 },
  );

  describe('RuncRuntimeService (real only)', () => {
    function setup(): { box: Sandbox; rt: RuncRuntimeService } {
      const box = sandbox();
      onTestFinished(() => box.cleanup());
      return { box, rt: box.open() };
    }

    let n = 0;
    const config = (overrides: Partial<ContainerConfig> = {}): ContainerConfig => ({
      name: `real_${process.pid}_${++n}`,
      image: BUSYBOX_REF,
      command: ['sleep', '3600'],
      ...overrides,
    });

    async function runToExit(rt: RuncRuntimeService, c: ContainerConfig): Promise<{ id: ContainerId; logs: string[] }> {
      const id = await rt.createContainer(c);
      await rt.startContainer(id);
      await vi.waitFor(async () => expect((await rt.containerStatus(id)).state).toBe('exited'), { timeout: 15_000, interval: 20 });
      const lines: LogLine[] = [];
      for await (const l of rt.logs(id)) lines.push(l);
      return { id, logs: lines.map((l) => l.text) };
    }

    it('runs the process as PID 1 of its own pid namespace, in its own mount, uts and network namespaces', async () => {
      const { rt } = setup();
      const { logs } = await runToExit(
        rt,
        config({ command: ['sh', '-c', 'echo pid=$$; for ns in mnt net uts; do readlink /proc/self/ns/$ns; done'] }),
      );
      expect(logs[0]).toBe('pid=1');
      expect(logs.slice(1)).toHaveLength(3);
      expect(logs[1]).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      expect(logs[2]).not.toBe(readlinkSync('/proc/self/ns/net'));
      expect(logs[3]).not.toBe(readlinkSync('/proc/self/ns/uts'));
    });

    it('applies hostname, /etc/hosts, resolv.conf, user, env and working directory', async () => {
      const { rt } = setup();
      const { logs } = await runToExit(
        rt,
        config({
          hostname: 'web-1',
          user: 'app',
          env: [{ name: 'GREETING', value: 'hello world' }],
          workingDir: '/home/app',
          extraHosts: [{ hostname: 'db', ip: '10.1.2.3' }],
          command: ['sh', '-c', 'hostname; cat /etc/hostname; id -u; id -g; id -G; echo "$GREETING"; echo $PATH; pwd; grep -c nameserver /etc/resolv.conf; cat /etc/hosts'],
        }),
      );
      const [hostname, etcHostname, uid, gid, groups, greeting, path, cwd, nameservers, ...hosts] = logs;
      expect([hostname, etcHostname, uid, gid, greeting, path, cwd]).toEqual([
        'web-1', 'web-1', '1000', '1000', 'hello world', '/usr/sbin:/usr/bin:/sbin:/bin', '/home/app',
      ]);
      expect(groups!.split(' ')).toContain('10');
      expect(Number(nameservers)).toBeGreaterThan(0);
      expect(hosts).toContain('127.0.0.1\tlocalhost');
      expect(hosts).toContain('127.0.1.1\tweb-1');
      expect(hosts).toContain('10.1.2.3\tdb');
    });

    it('runs as a numeric uid:gid and mounts binds (ro and rw) and a sized tmpfs', async () => {
      const { box, rt } = setup();
      const vol = join(box.root, 'vol');
      execFileSync('mkdir', ['-p', vol]);
      writeFileSync(join(vol, 'in.txt'), 'from host\n');
      const { logs } = await runToExit(
        rt,
        config({
          mounts: [
            { containerPath: '/ro', hostPath: vol, readonly: true },
            { containerPath: '/rw', hostPath: vol },
            { containerPath: '/scratch', type: 'tmpfs', sizeBytes: 1024 * 1024 },
          ],
          command: ['sh', '-c', 'id -u; id -g; cat /ro/in.txt; touch /ro/x 2>/dev/null || echo ro-refused; echo out > /scratch/o && cat /scratch/o; df -k /scratch | tail -1'],
          user: '0',
        }),
      );
      expect(logs.slice(0, 5)).toEqual(['0', '0', 'from host', 'ro-refused', 'out']);
      expect(logs[5]).toMatch(/^tmpfs\s+1024\s/);
      const numeric = await runToExit(rt, config({ user: '1234:5678', command: ['sh', '-c', 'id -u; id -g'] }));
      expect(numeric.logs).toEqual(['1234', '5678']);
    });

    it('reports an OOM kill under a memory limit as OOMKilled / 137, with an oom event, and leaves no file in the working directory', async () => {
      const strayOomBefore = existsSync(join(process.cwd(), 'oom'));
      const { rt } = setup();
      const ac = new AbortController();
      onTestFinished(() => ac.abort());
      const events: ContainerEvent[] = [];
      const sub = rt.events({ signal: ac.signal });
      void (async () => {
        for await (const e of sub) events.push(e);
      })();
      const { id } = await runToExit(
        rt,
        config({ resources: { memoryBytes: 32 * 1024 * 1024 }, command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'] }),
      );
      expect(await rt.containerStatus(id)).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
      await vi.waitFor(() => expect(events.filter((e) => e.id === id).map((e) => e.type)).toEqual(['created', 'started', 'oom', 'exited']));
      // conmon marks the OOM kill with a file `oom` in its working directory: the bundle, not ours
      if (!strayOomBefore) expect(existsSync(join(process.cwd(), 'oom'))).toBe(false);
    });

    it('enforces the pids limit and writes cpu quota, memory and pids limits to the cgroup', async () => {
      const { box, rt } = setup();
      const id = await rt.createContainer(config({ resources: { cpus: 0.5, memoryBytes: 64 << 20, pids: 10 } }));
      const cg = (ctrl: string, file: string): string => readFileSync(join(CGROUP_ROOT, ctrl, box.cgroupParent, id, file), 'utf8').trim();
      expect([cg('cpu', 'cpu.cfs_quota_us'), cg('cpu', 'cpu.cfs_period_us')]).toEqual(['50000', '100000']);
      expect([cg('memory', 'memory.limit_in_bytes'), cg('memory', 'memory.memsw.limit_in_bytes')]).toEqual([String(64 << 20), String(64 << 20)]);
      expect(cg('pids', 'pids.max')).toBe('10');
      await rt.removeContainer(id);

      const { id: forker, logs } = await runToExit(
        rt,
        config({ resources: { pids: 10 }, command: ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo spawned-all'] }),
      );
      expect((await rt.containerStatus(forker)).exitCode).not.toBe(0);
      expect(logs.join('\n')).toMatch(/can't fork/);
      expect(logs).not.toContain('spawned-all');
    });

    it('keeps containers across a restart of the runtime and reports an exit that happened while none ran', async () => {
      const { box, rt } = setup();
      const long = await rt.createContainer(config({ labels: { keep: 'yes' } }));
      await rt.startContainer(long);
      const short = await rt.createContainer(config({ labels: { keep: 'yes' }, command: ['sh', '-c', 'sleep 0.5; exit 9'] }));
      await rt.startContainer(short);
      await rt.close();
      // the short one exits while no runtime instance is running
      await vi.waitFor(() => expect(existsSync(join(box.root, 'exits', short))).toBe(true), { timeout: 10_000 });

      const again = box.open();
      const listed = await again.listContainers({ labels: { keep: 'yes' } });
      expect(Object.fromEntries(listed.map((c) => [c.id, c.state]))).toEqual({ [long]: 'running', [short]: 'exited' });
      expect(await again.containerStatus(short)).toMatchObject({ exitCode: 9, reason: 'Error' });
      expect((await again.execSync(long, ['echo', 'still here'], 10)).stdout.toString()).toBe('still here\n');
      await again.stopContainer(long, 0);
      expect((await again.containerStatus(long)).exitCode).toBe(137);
      await again.removeContainer(long);
      await again.removeContainer(short);
      expect(await again.listContainers()).toEqual([]);
    });

    it('notices a kill and a delete done behind its back (drift) within a second', async () => {
      const { box, rt } = setup();
      const ac = new AbortController();
      onTestFinished(() => ac.abort());
      const events: (ContainerEvent & { at: number })[] = [];
      const sub = rt.events({ signal: ac.signal });
      void (async () => {
        for await (const e of sub) events.push({ ...e, at: Date.now() });
      })();
      const runc = (...args: string[]): void => void execFileSync('runc', ['--root', join(box.root, 'runc'), ...args]);

      const killed = await rt.createContainer(config());
      await rt.startContainer(killed);
      const t0 = Date.now();
      runc('kill', killed, 'KILL');
      await vi.waitFor(() => expect(events.find((e) => e.type === 'exited' && e.id === killed)).toBeDefined(), { timeout: 1_000, interval: 10 });
      expect(events.find((e) => e.type === 'exited' && e.id === killed)!.at - t0).toBeLessThanOrEqual(1_000);
      expect(await rt.containerStatus(killed)).toMatchObject({ state: 'exited', exitCode: 137 });

      const deleted = await rt.createContainer(config());
      await rt.startContainer(deleted);
      const t1 = Date.now();
      runc('delete', '--force', deleted);
      await vi.waitFor(() => expect(events.find((e) => e.type === 'exited' && e.id === deleted)).toBeDefined(), { timeout: 1_000, interval: 10 });
      expect(events.find((e) => e.type === 'exited' && e.id === deleted)!.at - t1).toBeLessThanOrEqual(1_000);
      await rt.removeContainer(deleted);
      await rt.removeContainer(killed);
    });

    it('releases everything on remove: runc state, mounts, cgroups, directories, exit file, image pin', async () => {
      const { box, rt } = setup();
      const id = await rt.createContainer(config({ resources: { memoryBytes: 64 << 20, pids: 50, cpus: 1 } }));
      await rt.startContainer(id);
      // The overlay root is mounted inside the container, by runc: none on the host.
      expect(await mountPointsUnder(box.root)).toEqual([]);
      const pid = (await rt.containerStatus(id)).pid!;
      const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
      expect(rootMount).toMatch(/ - overlay overlay /);
      expect(rootMount).toContain(`upperdir=${join(box.root, 'containers', id, 'upper')}`);
      expect(await existingCgroupDirs(`${box.cgroupParent}/${id}`)).not.toEqual([]);
      expect(rootfs().pins.get(rootfs().image.id)?.has(id)).toBe(true);

      await rt.removeContainer(id);
      const runcList = execFileSync('runc', ['--root', join(box.root, 'runc'), 'list', '-q'], { encoding: 'utf8' });
      expect(runcList.trim()).toBe('');
      expect(existsSync(join(box.root, 'runc', id))).toBe(false);
      expect(await mountPointsUnder(box.root)).toEqual([]);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(id);
      expect(await existingCgroupDirs(`${box.cgroupParent}/${id}`)).toEqual([]);
      expect(existsSync(join(box.root, 'containers', id))).toBe(false);
      expect(existsSync(join(box.root, 'exits', id))).toBe(false);
      expect(rootfs().pins.get(rootfs().image.id)?.has(id)).toBe(false);
    });

    it('rolls back a create that runc refuses: InvalidArgument and nothing left behind', async () => {
      const { box, rt } = setup();
      await expect(rt.createContainer(config({ command: ['/no/such/binary'] }))).rejects.toMatchObject({ code: 'InvalidArgument' });
      expect(readdirSync(join(box.root, 'containers'))).toEqual([]);
      expect(await mountPointsUnder(box.root)).toEqual([]);
      expect(await rt.listContainers()).toEqual([]);
    });

    it('runs a TTY container: output reaches the log through conmon', async () => {
      const { rt } = setup();
      const { id, logs } = await runToExit(rt, config({ tty: true, command: ['sh', '-c', 'tty; exit 3'] }));
      expect(logs.join('\n')).toMatch(/\/dev\/pts\/\d+/);
      expect((await rt.containerStatus(id)).exitCode).toBe(3);
    });

    it('starts a TTY container at its console size: the first instruction sees it, with no resize', async () => {
      const { rt } = setup();
      const { logs } = await runToExit(rt, config({ tty: true, consoleSize: { width: 123, height: 45 }, command: ['stty', 'size'] }));
      expect(logs.join('\n')).toMatch(/^45 123\r?$/m);
    });

    it('measures create+start latency (p50 of 20) and create→exited for `true`', async () => {
      const { rt } = setup();
      const startMs: number[] = [];
      const exitMs: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const id = await rt.createContainer(config());
        await rt.startContainer(id);
        startMs.push(performance.now() - t0);
        await rt.removeContainer(id);
      }
      const ac = new AbortController();
      onTestFinished(() => ac.abort());
      const exits = rt.events({ signal: ac.signal })[Symbol.asyncIterator]();
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        const id = await rt.createContainer(config({ command: ['true'] }));
        await rt.startContainer(id);
        for (;;) {
          const e = (await exits.next()).value as ContainerEvent;
          if (e.type === 'exited' && e.id === id) break;
        }
        exitMs.push(performance.now() - t0);
        await rt.removeContainer(id);
      }
      const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      console.log(`create+start p50 ${p50(startMs).toFixed(1)} ms (n=20); create→exited(true) p50 ${p50(exitMs).toFixed(1)} ms (n=10)`);
      expect(p50(startMs)).toBeLessThan(1_000);
    });
  });
}

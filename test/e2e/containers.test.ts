/**
 * End to end with the real `kubectl` and real containers (runc under conmon), as
 * root: a first image imported without internet, the lifecycle of DESIGN.md's
 * table (Running → Paused → Running → Stopped → deleted, with the process really
 * in its own pid and mount namespaces, frozen while paused, and nothing left after
 * deletion), an OOM kill, a pids limit, `kubectl wait` on a container whose image
 * arrives later, restart policies with back-off, drift repair, and a `kill -9` of
 * `berth server` with containers running. Everything is removed afterwards, and the
 * last test checks the host is as it was.
 *
 * Skipped unless running as root with runc, conmon and kubectl.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CGROUP_ROOT } from '../../runtime/oci/cgroups.ts';
import { mountPointsUnder } from '../../runtime/oci/overlay.ts';
import { DEFAULT_CGROUP_PARENT } from '../../runtime/server/index.ts';
import { buildBusyboxImage, type BusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import {
  cgroupDirsOf,
  freePort,
  freezerState,
  hostSnapshot,
  kubectlWith,
  narrator,
  processStartTicks,
  realContainersMissing,
  removeCgroupParentIfNew,
  removeDefaultNetworkIfNew,
  runcList,
  runcState,
  run,
  spawnBerth,
  sweepDataDir,
  type HostSnapshot,
  type SpawnedBerth,
} from './helpers.ts';

const CTRS = '/apis/berth.dev/v1/namespaces/default/containers';
const MERGE = 'application/merge-patch+json';

const missing = realContainersMissing();

/** A Container manifest on the busybox image; 1 s grace so that deleting a shell (which ignores SIGTERM as PID 1) is quick. */
function container(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name, namespace: 'default' }, spec: { image: 'busybox', stopGracePeriodSeconds: 1, ...spec } };
}

function image(name: string, path: string, tags: string[]): Record<string, unknown> {
  return { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name, namespace: 'default' }, spec: { source: { import: { path } }, tags } };
}

const LOOP = ['sh', '-c', 'echo started; while true; do sleep 1; done'];

if (missing) {
  describe('containers end to end (real kubectl, runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  // Everything of this file lives under one temporary root: the harness's data dir
  // (made under TMPDIR), the spawned server's, and the image fixture.
  let root: string;
  const ids = new Set<string>(); // every runtime container id this file made
  let before: HostSnapshot;
  let fixture: BusyboxImage;
  const log = narrator('e2e');

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-e2e-ctr-'));
    before = await hostSnapshot([root], []);
    fixture = await buildBusyboxImage(join(root, 'fixture'));
  });

  afterAll(async () => {
    if (root) await sweepDataDir(root, ids);
  });

  describe('on an in-process berth server with the runc runtime', () => {
    let cp: ControlPlane;
    let runtimeRoot: string;
    let runcRoot: string;
    const idsAbort = new AbortController();

    // kubectl with stdin only when there is input (a program that exits without reading it must not cause an EPIPE here)
    const kubectl = (args: readonly string[], opts?: { stdin?: string; timeoutMs?: number }) =>
      kubectlWith(cp.server.kubeconfigPath, join(cp.dataDir, 'kubectl-cache'))(args, opts);
    const apply = async (obj: unknown) => {
      const r = await kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(obj) });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return r.stdout.trim();
    };
    const get = async (name: string): Promise<any> => {
      const r = await cp.request('GET', `${CTRS}/${name}`);
      expect(r.status).toBe(200);
      if (r.body.status?.containerID) ids.add(r.body.status.containerID);
      return r.body;
    };
    const waitPhase = async (name: string, phase: string, timeoutMs = 10_000): Promise<any> => {
      let last: any;
      await vi.waitFor(
        async () => {
          last = await get(name);
          expect(last.status?.phase, JSON.stringify(last.status)).toBe(phase);
        },
        { timeout: timeoutMs, interval: 50 },
      );
      return last;
    };
    /** Records every status of one Container seen through a watch, until closed. */
    const watchStatuses = async (name: string) => {
      const seen: any[] = [];
      const stream = await cp.stream(`${CTRS}?watch=true&fieldSelector=metadata.name%3D${name}`);
      let open = true;
      const done = (async () => {
        while (open) {
          const ev = await stream.next(60_000).catch(() => undefined);
          if (!ev) return;
          if (ev.object?.status) seen.push({ atMs: performance.now(), ...ev.object.status });
          if (ev.object?.status?.containerID) ids.add(ev.object.status.containerID);
        }
      })();
      return {
        seen,
        close: async () => {
          open = false;
          stream.close();
          await done;
        },
      };
    };

    beforeAll(async () => {
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = root;
      try {
        cp = await startControlPlane({ runtime: 'runc', controllers: true, nodeName: 'e2e' });
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      expect(cp.dataDir.startsWith(`${root}/`)).toBe(true);
      runtimeRoot = join(cp.dataDir, 'runtime');
      runcRoot = join(runtimeRoot, 'runc');
      // Note every runtime container id as it is created, for the leak checks.
      void (async () => {
        try {
          for await (const ev of cp.server.runtime!.events({ signal: idsAbort.signal })) ids.add(ev.id);
        } catch {
          // closed
        }
      })();
      log(`berth server (in process, runc runtime) at ${cp.url}, data dir ${cp.dataDir}`);
    });

    afterEach(async () => {
      if (!cp) return;
      // Delete every Container through the API and wait for the finalizers.
      const list = await cp.request('GET', CTRS);
      for (const c of list.body.items ?? []) {
        if (c.status?.containerID) ids.add(c.status.containerID);
        await cp.request('DELETE', `${CTRS}/${c.metadata.name}`);
      }
      await vi.waitFor(async () => expect((await cp.request('GET', CTRS)).body.items).toEqual([]), { timeout: 20_000, interval: 100 });
    });

    afterAll(async () => {
      idsAbort.abort();
      if (!cp) return;
      // Stop the server first (containers keep running), sweep with the runtime state still there, then remove the rest.
      await cp.server.close().catch((err: unknown) => console.error('stopping the control plane failed', err));
      await sweepDataDir(cp.dataDir, ids);
      await cp.stop().catch((err: unknown) => console.error('stopping the control plane failed', err));
    });

    it('imports a first image without internet: kubectl apply of an Image from an OCI layout, then kubectl wait for Ready', async () => {
      log(`step 1: built busybox fixture in ${fixture.layoutDir} (manifest ${fixture.manifestDigest.slice(0, 19)})`);
      expect(await apply(image('busybox', fixture.layoutDir, ['busybox:latest']))).toBe('image.berth.dev/busybox created');
      log('step 1: kubectl wait --for=condition=Ready image/busybox');
      const wait = await kubectl(['wait', '--for=condition=Ready', 'image/busybox', '--timeout=30s']);
      expect(wait.stdout.trim()).toBe('image.berth.dev/busybox condition met');
      const img = (await cp.request('GET', '/apis/berth.dev/v1/namespaces/default/images/busybox')).body;
      expect(img.status).toMatchObject({ phase: 'Ready', digest: fixture.manifestDigest, id: fixture.configDigest });
      expect(img.status.size).toBeGreaterThan(500_000);
      const table = await kubectl(['get', 'images']);
      log(`step 1: kubectl get images\n${table.stdout.trimEnd()}`);
      const row = table.stdout.split('\n').find((l) => l.startsWith('busybox '));
      expect(row).toMatch(new RegExp(`^busybox\\s+busybox:latest\\s+Ready\\s+${fixture.manifestDigest.slice(7, 19)}\\S*\\s+\\d`));
    });

    it('runs a Container as a real process in its own pid and mount namespaces, pauses (frozen), resumes (thawed), stops (Exited 137) and deletes it leaving nothing', async () => {
      log('step 2: kubectl apply ctr/x');
      const xCommand = ['sh', '-c', 'echo started as pid $$; while true; do sleep 1; done'];
      expect(await apply(container('x', { command: xCommand }))).toBe('container.berth.dev/x created');
      const wait = await kubectl(['wait', '--for=condition=Ready', 'ctr/x', '--timeout=30s']);
      expect(wait.stdout.trim()).toBe('container.berth.dev/x condition met');
      const table = await kubectl(['get', 'ctr']);
      log(`step 2: kubectl get ctr\n${table.stdout.trimEnd()}`);
      expect(table.stdout).toMatch(/^x\s+busybox\s+Running\s+0\s+e2e\s+/m);

      const x = await get('x');
      const id: string = x.status.containerID;
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      expect(x.status).toMatchObject({ phase: 'Running', nodeName: 'e2e', restartCount: 0, imageID: fixture.configDigest });
      const state = await runcState(runcRoot, id);
      expect(state).toMatchObject({ id, status: 'running' });
      const pid = state!.pid;
      expect(pid).toBeGreaterThan(1);
      expect((await cp.server.runtime!.containerStatus(id as never)).pid).toBe(pid);
      const ns = (p: number | 'self', kind: string) => readlinkSync(`/proc/${p}/ns/${kind}`);
      log(`step 2: container ${id.slice(0, 12)} is host pid ${pid}: pid ns ${ns(pid, 'pid')} (host ${ns('self', 'pid')}), mnt ns ${ns(pid, 'mnt')} (host ${ns('self', 'mnt')})`);
      expect(ns(pid, 'pid')).not.toBe(ns('self', 'pid'));
      expect(ns(pid, 'mnt')).not.toBe(ns('self', 'mnt'));
      // Its root is an overlay over the data dir's layers, mounted inside the container (none on the host).
      const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
      expect(rootMount).toMatch(/ - overlay overlay .*upperdir=/);
      expect(rootMount).toContain(`upperdir=${join(runtimeRoot, 'containers', id, 'upper')}`);
      expect(await mountPointsUnder(join(runtimeRoot, 'containers', id))).toEqual([]);

      // Exec through the API, as `@kubernetes/client-node` users do: the process sees itself as PID 1.
      const kc = new KubeConfig();
      kc.loadFromFile(cp.server.kubeconfigPath);
      const out = new PassThrough();
      let stdout = '';
      out.on('data', (d: Buffer) => (stdout += d.toString()));
      const execStatus = await new Promise<any>((resolve, reject) => {
        new Exec(kc).exec('default', 'x', 'x', ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; ps -o pid,args | head -3'], out, null, null, false, resolve).catch(reject);
      });
      expect(execStatus).toMatchObject({ status: 'Success' });
      log(`step 2: exec through the API:\n${stdout.trimEnd()}`);
      const [pid1Cmdline, header, first] = stdout.split('\n');
      expect(pid1Cmdline?.trim()).toBe(xCommand.join(' '));
      expect(header).toMatch(/^PID\s+COMMAND$/);
      expect(first).toMatch(/^\s*1\s+sh -c echo started/);
      const logs = await cp.request('GET', `${CTRS}/x/log`);
      expect(logs.status).toBe(200);
      expect(logs.text).toBe('started as pid 1\n'); // the process sees itself as PID 1

      log('step 3: kubectl patch ctr x spec.state=Paused');
      expect((await kubectl(['patch', 'ctr', 'x', '--type=merge', '-p', '{"spec":{"state":"Paused"}}'])).code).toBe(0);
      await waitPhase('x', 'Paused');
      expect(await freezerState(id)).toBe('FROZEN');
      expect((await runcState(runcRoot, id))?.status).toBe('paused');
      log(`step 3: Paused, freezer.state FROZEN; kubectl get ctr x: ${(await kubectl(['get', 'ctr', 'x', '--no-headers'])).stdout.trim()}`);

      log('step 3: kubectl patch ctr x spec.state=Running');
      expect((await kubectl(['patch', 'ctr', 'x', '--type=merge', '-p', '{"spec":{"state":"Running"}}'])).code).toBe(0);
      await waitPhase('x', 'Running');
      expect(await freezerState(id)).toBe('THAWED');
      expect((await runcState(runcRoot, id))?.pid).toBe(pid); // resumed, not restarted

      log('step 3: kubectl patch ctr x spec.state=Stopped (sh as PID 1 ignores SIGTERM: SIGKILL after the 1 s grace period)');
      const stopAt = performance.now();
      expect((await kubectl(['patch', 'ctr', 'x', '--type=merge', '-p', '{"spec":{"state":"Stopped"}}'])).code).toBe(0);
      const stopped = await waitPhase('x', 'Exited');
      log(`step 3: Exited after ${(performance.now() - stopAt).toFixed(0)} ms: exitCode ${stopped.status.exitCode}, reason ${stopped.status.reason}`);
      expect(stopped.status).toMatchObject({ containerID: id, exitCode: 137, restartCount: 0 });
      expect(performance.now() - stopAt).toBeGreaterThan(900); // waited the grace period before SIGKILL
      expect(stopped.status.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Stopped' });
      expect((await kubectl(['get', 'ctr', 'x', '--no-headers'])).stdout).toMatch(/^x\s+busybox\s+Exited\s+0\s+e2e\s+/);
      const describe = await kubectl(['describe', 'ctr', 'x']);
      for (const reason of ['Scheduled', 'Created', 'Started', 'Paused', 'Resumed', 'Killing', 'Stopped']) expect(describe.stdout, describe.stdout).toMatch(new RegExp(`Normal\\s+${reason}\\s`));

      log('step 4: kubectl delete ctr x (waits for the runtime finalizer)');
      const del = await kubectl(['delete', 'ctr', 'x', '--timeout=30s']);
      expect(del.stdout.trim()).toBe('container.berth.dev "x" deleted');
      expect((await cp.request('GET', `${CTRS}/x`)).status).toBe(404);
      expect(await runcList(runcRoot)).toEqual([]);
      expect(await runcState(runcRoot, id)).toBeUndefined();
      expect(await mountPointsUnder(cp.dataDir)).toEqual([]);
      expect(await cgroupDirsOf(id)).toEqual([]);
      expect(await readdir(join(runtimeRoot, 'containers'))).toEqual([]);
      expect(await readdir(join(runtimeRoot, 'exits'))).toEqual([]);
      log('step 4: nothing left: no runc state, no overlay mount, no cgroup, no container dir');
    });

    it('kills a container over its memory limit and reports OOMKilled with exit code 137 and an OOMKilled Event', async () => {
      log('step 5: ctr/oom with resources.memory 32Mi holding 200 MB in a shell variable');
      await apply(container('oom', {
        command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}'],
        resources: { memory: '32Mi' },
        restartPolicy: 'Never',
      }));
      const oom = await waitPhase('oom', 'Exited', 20_000);
      log(`step 5: ${JSON.stringify({ exitCode: oom.status.exitCode, reason: oom.status.reason, message: oom.status.message })}`);
      expect(oom.status).toMatchObject({ exitCode: 137, reason: 'OOMKilled', restartCount: 0 });
      await vi.waitFor(async () => {
        const describe = await kubectl(['describe', 'ctr', 'oom']);
        expect(describe.stdout).toMatch(/Warning\s+OOMKilled\s+\S+\s+berth-agent\s+container [0-9a-f]{12} was killed by the OOM killer/);
      }, { timeout: 5_000, interval: 200 });
      const logs = await cp.request('GET', `${CTRS}/oom/log`);
      expect(logs.status).toBe(200);
      expect(logs.text).not.toContain('survived');
    });

    it('caps the number of processes: forks beyond resources.pids fail', async () => {
      log('step 6: ctr/pids with resources.pids 16 forking 40 background sleeps');
      await apply(container('pids', {
        command: ['sh', '-c', 'for i in $(seq 1 40); do sleep 30 & done; echo forked all 40'],
        resources: { pids: 16 },
        restartPolicy: 'Never',
      }));
      const ended = await waitPhase('pids', 'Exited', 15_000);
      const logs = await cp.request('GET', `${CTRS}/pids/log`);
      log(`step 6: exit code ${ended.status.exitCode}, log: ${JSON.stringify(logs.text.split('\n').slice(0, 3))}`);
      expect(logs.text).toMatch(/can't fork/);
      expect(logs.text).not.toContain('forked all 40');
      expect(ended.status.exitCode).not.toBe(0);
    });

    it('lets kubectl wait --for=condition=Ready wait for a Container whose image is imported later', async () => {
      log('step 7: ctr/late on image later:1, which no Image provides yet');
      await apply(container('late', { image: 'later:1', command: LOOP }));
      const waiting = await kubectl(['wait', '--for=condition=ImageReady=False', 'ctr/late', '--timeout=15s']);
      expect(waiting.stdout.trim()).toBe('container.berth.dev/late condition met');
      const pending = await get('late');
      expect(pending.status.phase).toBe('Pending');
      const cond = pending.status.conditions.find((c: any) => c.type === 'ImageReady');
      log(`step 7: ImageReady=False ${cond.reason}: ${cond.message}`);
      expect(cond).toMatchObject({ status: 'False', reason: 'ErrImagePull' });
      expect(cond.message).toContain('"later:1" is not present on node e2e and cannot be pulled');

      const ready = kubectl(['wait', '--for=condition=Ready', 'ctr/late', '--timeout=30s']);
      await new Promise((r) => setTimeout(r, 300)); // kubectl wait is now watching
      log('step 7: kubectl apply image/later from the OCI archive');
      await apply(image('later', fixture.ociArchive, ['later:1']));
      const started = performance.now();
      expect((await ready).stdout.trim()).toBe('container.berth.dev/late condition met');
      log(`step 7: kubectl wait returned ${(performance.now() - started).toFixed(0)} ms after the Image was applied`);
      expect((await get('late')).status.phase).toBe('Running');
    });

    it('restarts a failing container with OnFailure and back-off, and leaves it Exited with Never', async () => {
      log('step 8: ctr/fail (exit 3, restartPolicy OnFailure)');
      const watch = await watchStatuses('fail');
      try {
        await apply(container('fail', { command: ['sh', '-c', 'exit 3'], restartPolicy: 'OnFailure' }));
        await vi.waitFor(() => {
          expect(watch.seen.some((s) => s.reason === 'BackOff')).toBe(true);
          expect(Math.max(...watch.seen.map((s) => s.restartCount ?? 0))).toBeGreaterThanOrEqual(3);
        }, { timeout: 15_000, interval: 50 });
      } finally {
        await watch.close();
      }
      const backoff = watch.seen.find((s) => s.reason === 'BackOff');
      log(`step 8: restartCount reached ${Math.max(...watch.seen.map((s) => s.restartCount ?? 0))}; ${backoff.message}`);
      expect(backoff).toMatchObject({ phase: 'Exited', exitCode: 3 });
      expect(backoff.message).toMatch(/^back-off \d+ ms restarting failed container \(exit code 3, restartPolicy OnFailure\)$/);
      // restartCount never goes backwards, and each restart is a new runtime container
      const counts = watch.seen.map((s) => s.restartCount ?? 0);
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      expect(new Set(watch.seen.map((s) => s.containerID).filter(Boolean)).size).toBeGreaterThanOrEqual(3);
      const describe = await kubectl(['describe', 'ctr', 'fail']);
      expect(describe.stdout).toMatch(/Warning\s+BackOff\s/);

      log('step 8: ctr/never (exit 3, restartPolicy Never)');
      await apply(container('never', { command: ['sh', '-c', 'exit 3'], restartPolicy: 'Never' }));
      const never = await waitPhase('never', 'Exited');
      expect(never.status).toMatchObject({ exitCode: 3, reason: 'Error', restartCount: 0 });
      await new Promise((r) => setTimeout(r, 500));
      expect((await get('never')).status).toMatchObject({ phase: 'Exited', exitCode: 3, restartCount: 0, containerID: never.status.containerID });
    });

    it('repairs drift: a container killed behind berth\'s back is noticed within a second and restarted (restartPolicy Always)', async () => {
      await apply(container('drift', { command: LOOP }));
      await kubectl(['wait', '--for=condition=Ready', 'ctr/drift', '--timeout=30s']);
      const before = await get('drift');
      const oldId: string = before.status.containerID;
      const oldPid = (await runcState(runcRoot, oldId))!.pid;
      const watch = await watchStatuses('drift');
      let killedAt = 0;
      try {
        log(`step 9: runc --root … kill ${oldId.slice(0, 12)} KILL (behind berth's back)`);
        killedAt = performance.now();
        const kill = await run('runc', ['--root', runcRoot, 'kill', oldId, 'KILL']);
        expect(kill.code, kill.stderr).toBe(0);
        await vi.waitFor(() => expect(watch.seen.some((s) => s.phase === 'Running' && s.restartCount === 1 && s.containerID !== oldId)).toBe(true), {
          timeout: 5_000,
          interval: 20,
        });
      } finally {
        await watch.close();
      }
      const noticed = watch.seen.find((s) => s.containerID !== oldId || s.phase !== 'Running' || s.restartCount !== 0)!;
      const running = watch.seen.find((s) => s.phase === 'Running' && s.restartCount === 1)!;
      log(`step 9: noticed after ${(noticed.atMs - killedAt).toFixed(0)} ms (phase ${noticed.phase}, restartCount ${noticed.restartCount}); Running again after ${(running.atMs - killedAt).toFixed(0)} ms as ${running.containerID.slice(0, 12)}`);
      expect(noticed.atMs - killedAt).toBeLessThan(1_000);
      expect(running.atMs - killedAt).toBeLessThan(2_000);
      expect(await runcState(runcRoot, oldId)).toBeUndefined(); // the dead one was removed
      const newState = await runcState(runcRoot, running.containerID);
      expect(newState?.status).toBe('running');
      expect(newState?.pid).not.toBe(oldPid);
      expect(await runcList(runcRoot)).toEqual([running.containerID]);
      expect(await cgroupDirsOf(oldId)).toEqual([]);
    });
  });

  describe('across a kill -9 of a spawned berth server', () => {
    let dataDir: string | undefined;
    let server: SpawnedBerth | undefined;

    afterAll(async () => {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        // Delete the Containers through the API and wait, then stop the server.
        const list = await server.request('GET', CTRS).catch(() => undefined);
        for (const c of list?.body?.items ?? []) {
          if (c.status?.containerID) ids.add(c.status.containerID);
          await server.request('DELETE', `${CTRS}/${c.metadata.name}`).catch(() => {});
        }
        await vi
          .waitFor(async () => expect((await server!.request('GET', CTRS)).body.items).toEqual([]), { timeout: 20_000, interval: 100 })
          .catch((err: unknown) => console.error('containers of the spawned server not deleted', err));
        await server.stop('SIGTERM');
      }
      if (!dataDir) return;
      for (const id of await runcList(join(dataDir, 'runtime', 'runc')).catch(() => [])) ids.add(id);
      await sweepDataDir(dataDir, ids);
    });

    it('keeps the containers running, adopts them after a restart without duplicates, and records an exit that happened while it was down', async () => {
      dataDir = join(root, 'spawned');
      const runcRoot = join(dataDir, 'runtime', 'runc');
      await mkdir(dataDir, { recursive: true });
      const port = await freePort();
      server = await spawnBerth({ dataDir, port, nodeName: 'e2e-kill' });
      const kubectl = kubectlWith(server.kubeconfig, join(root, 'kubectl-cache'));
      log(`step 10: spawned \`berth server\` (pid ${server.child.pid}) at ${server.url}`);
      const apply = async (obj: unknown) => {
        const r = await kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(obj) });
        expect(r.code, r.stderr).toBe(0);
      };
      await apply(image('busybox', fixture.ociArchive, ['busybox:latest']));
      await apply(container('a', { command: LOOP }));
      await apply(container('b', { command: ['sleep', '3600'] }));
      await apply(container('c', { command: ['sh', '-c', 'sleep 2; exit 5'], restartPolicy: 'Never' }));
      const wait = await kubectl(['wait', '--for=condition=Ready', 'ctr/a', 'ctr/b', 'ctr/c', '--timeout=30s']);
      expect(wait.code, wait.stderr).toBe(0);
      const statusOf = async (name: string) => {
        const r = await server!.request('GET', `${CTRS}/${name}`);
        expect(r.status).toBe(200);
        if (r.body.status?.containerID) ids.add(r.body.status.containerID);
        return r.body.status;
      };
      const beforeKill = new Map<string, { id: string; pid: number; start?: string }>();
      for (const name of ['a', 'b', 'c']) {
        const s = await statusOf(name);
        expect(s.phase).toBe('Running');
        const st = await runcState(runcRoot, s.containerID);
        expect(st?.status).toBe('running');
        beforeKill.set(name, { id: s.containerID, pid: st!.pid, start: await processStartTicks(st!.pid) });
      }
      log(`step 10: a, b, c Running (${[...beforeKill].map(([n, v]) => `${n}=${v.id.slice(0, 12)} pid ${v.pid}`).join(', ')}); kill -9 berth server`);
      expect(await server.stop('SIGKILL')).toBe('SIGKILL');

      // The containers outlive the server; c exits (code 5) while nobody watches.
      for (const name of ['a', 'b']) {
        const { id, pid, start } = beforeKill.get(name)!;
        expect(await runcState(runcRoot, id)).toMatchObject({ status: 'running', pid });
        expect(await processStartTicks(pid)).toBe(start);
      }
      await vi.waitFor(async () => expect((await runcState(runcRoot, beforeKill.get('c')!.id))?.status).toBe('stopped'), { timeout: 5_000, interval: 100 });
      log('step 10: c exited while the server was down; restarting berth server on the same data dir');

      server = await spawnBerth({ dataDir, port, nodeName: 'e2e-kill' });
      await vi.waitFor(async () => expect(await statusOf('c')).toMatchObject({ phase: 'Exited', exitCode: 5 }), { timeout: 10_000, interval: 100 });
      const c = await statusOf('c');
      log(`step 10: after restart c is ${c.phase} with exit code ${c.exitCode} (${c.reason})`);
      expect(c).toMatchObject({ containerID: beforeKill.get('c')!.id, restartCount: 0, reason: 'Error' });
      // Give the agent time to do anything wrong (a duplicate create, a restart) before checking.
      await new Promise((r) => setTimeout(r, 1_500));
      for (const name of ['a', 'b']) {
        const { id, pid, start } = beforeKill.get(name)!;
        expect(await statusOf(name)).toMatchObject({ phase: 'Running', containerID: id, restartCount: 0 });
        expect(await runcState(runcRoot, id)).toMatchObject({ status: 'running', pid });
        expect(await processStartTicks(pid)).toBe(start);
      }
      const listed = await runcList(runcRoot);
      log(`step 10: runc list after restart: ${listed.map((i) => i.slice(0, 12)).join(', ')}`);
      expect([...listed].sort()).toEqual([...beforeKill.values()].map((v) => v.id).sort());
      const table = await kubectl(['get', 'ctr']);
      log(`step 10: kubectl get ctr\n${table.stdout.trimEnd()}`);
      expect(table.stdout).toMatch(/^a\s+busybox\s+Running\s+0\s+e2e-kill\s/m);
      expect(table.stdout).toMatch(/^c\s+busybox\s+Exited\s+0\s+e2e-kill\s/m);
    });
  });

  describe('the host afterwards', () => {
    it('has no mounts, conmon processes or cgroups of this file left', async () => {
      // The suites above have cleaned up in their afterAll hooks; check, then remove the parent cgroup if this file made it.
      const after = await hostSnapshot([root], ids);
      log(`host check: ${ids.size} runtime containers were made; left: ${JSON.stringify({ mounts: after.mounts, conmons: after.conmons, cgroups: after.cgroups })}`);
      expect(after.mounts).toEqual(before.mounts);
      expect(after.conmons).toEqual(before.conmons);
      expect(after.cgroups).toEqual([]);
      await removeCgroupParentIfNew(before);
      removeDefaultNetworkIfNew(before); // the spawned `berth server` made berth0
      expect((await hostSnapshot([root], ids)).defaultNetwork).toEqual(before.defaultNetwork);
      await rm(root, { recursive: true, force: true });
      // A cgroup parent this file created is gone, unless someone else's containers use it now.
      for (const ctrl of (await hostSnapshot([root], ids)).cgroupParents.filter((c) => !before.cgroupParents.includes(c))) {
        expect(await readdir(join(CGROUP_ROOT, ctrl, DEFAULT_CGROUP_PARENT), { withFileTypes: true }).then((es) => es.some((e) => e.isDirectory()))).toBe(true);
      }
    });
  });
}

import { healthSpecOf } from './health.ts';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../../test/harness/control-plane.ts';
import { FakeRuntimeService, type FakeContainer } from '../../runtime/testing/index.ts';
import type { ContainerId } from '../../runtime/cri/index.ts';
import { Container, Event, EventRecorder, Image, findCondition, isNotFound, silentLogger, type ApiClient, type Controller, type Manager } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { metricValue } from '../framework/testing/fixtures.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { addImageController } from '../image/index.ts';
import { addContainerController, type ContainerControllerDeps } from './controller.ts';
import { RUNTIME_FINALIZER } from './labels.ts';
import { FakeImageService } from './testing/fake-image-service.ts';

const WAIT = { timeout: 5_000, interval: 20 };

/** The node agent's Container (and optionally Image) controllers for node n1 on a harness control plane, with fakes and short back-offs. */
interface TestAgent {
  readonly client: ApiClient;
  readonly manager: Manager;
  readonly runtime: FakeRuntimeService;
  readonly images: FakeImageService;
  readonly controller: Controller;
  /** Stops the manager and with it the controllers (also done at the end of the test). */
  stop(): Promise<void>;
}

interface TestAgentOptions extends Partial<Pick<ContainerControllerDeps, 'backoff' | 'resyncMs' | 'imageRetryMs' | 'nodeName'>> {
  readonly runtime?: FakeRuntimeService;
  readonly images?: FakeImageService;
  /** Also run the Image controller on the same image service. */
  readonly withImageController?: boolean;
}

/** Starts an agent for node `n1` (by default) whose image service has `busybox`. */
async function startAgent(cp: ControlPlane, opts: TestAgentOptions = {}): Promise<TestAgent> {
  const client = clientFor(cp);
  const manager = managerFor(cp, { client });
  const runtime = opts.runtime ?? new FakeRuntimeService();
  const images = opts.images ?? withBusybox(new FakeImageService());
  const nodeName = opts.nodeName ?? 'n1';
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: nodeName });
  const controller = addContainerController(manager, {
    client,
    runtime,
    images,
    nodeName,
    recorder,
    logger: silentLogger,
    backoff: opts.backoff ?? { initialMs: 50, maxMs: 400 },
    resyncMs: opts.resyncMs ?? 300,
    imageRetryMs: opts.imageRetryMs ?? 5_000,
  });
  if (opts.withImageController) addImageController(manager, { client, images, nodeName, recorder, logger: silentLogger, retry: { initialMs: 100, maxMs: 1_000 } });
  // manager.stop() drains the controllers too (runWithManager)
  const stop = () => manager.stop();
  await manager.start();
  return { client, manager, runtime, images, controller, stop };
}

function withBusybox(images: FakeImageService): FakeImageService {
  images.addImage(['busybox:latest']);
  return images;
}

async function controlPlane(): Promise<ControlPlane> {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  return cp;
}

function container(name: string, spec: Partial<Container['spec']> = {}): Container {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name, namespace: 'default' },
    // a program the fake shell does not know runs until signalled and exits 143 on SIGTERM
    spec: { image: 'busybox', command: ['server'], nodeName: 'n1', stopGracePeriodSeconds: 1, ...spec },
  };
}

const get = (client: ApiClient, name: string) => client.get(Container, 'default', name);

/** The only live runtime container of the fake. */
function live(runtime: FakeRuntimeService): FakeContainer[] {
  return [...runtime.containers.values()].filter((c) => c.state === 'created' || c.state === 'running' || c.state === 'paused');
}

async function waitForPhase(client: ApiClient, name: string, phase: string, extra: (c: Container) => void = () => {}): Promise<Container> {
  let out!: Container;
  await vi.waitFor(async () => {
    out = await get(client, name);
    expect(out.status?.phase).toBe(phase);
    extra(out);
  }, WAIT);
  return out;
}

async function eventReasons(client: ApiClient, name: string): Promise<string[]> {
  const events = (await client.list(Event, { namespace: 'default' })).items.filter((e) => e.involvedObject.name === name);
  return events.sort((a, b) => (a.firstTimestamp ?? '').localeCompare(b.firstTimestamp ?? '')).map((e) => e.reason ?? '');
}

describe('ContainerReconciler', () => {
  it('creates and starts the runtime container with the spec as config, and reports Running', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(
      container('web', {
        command: ['sh', '-c'],
        args: ['sleep 3600'],
        env: [{ name: 'GREETING', value: 'hi' }],
        resources: { memory: '64Mi', cpus: '500m', pids: 32 },
      }),
    );
    const c = await waitForPhase(client, 'web', 'Running');
    const [rc] = live(runtime);
    expect(rc!.config).toMatchObject({
      name: 'default_web_1',
      command: ['sh', '-c'],
      args: ['sleep 3600'],
      env: [{ name: 'GREETING', value: 'hi' }],
      hostname: 'web',
      resources: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 32 },
      labels: { 'berth.dev/namespace': 'default', 'berth.dev/name': 'web', 'berth.dev/uid': c.metadata.uid, 'berth.dev/generation': '1' },
    });
    expect(rc!.state).toBe('running');
    expect(c.metadata.finalizers).toContain(RUNTIME_FINALIZER);
    expect(c.status).toMatchObject({ containerID: rc!.id, nodeName: 'n1', restartCount: 0, observedGeneration: 1, imageID: rc!.imageId });
    expect(c.status?.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(findCondition(c.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Running', observedGeneration: 1 });
    expect(findCondition(c.status?.conditions, 'ImageReady')).toMatchObject({ status: 'True' });
    expect(findCondition(c.status?.conditions, 'Reconciling')).toMatchObject({ status: 'False' });
    expect(findCondition(c.status?.conditions, 'Stalled')).toMatchObject({ status: 'False' });
    await vi.waitFor(async () => expect(await eventReasons(client, 'web')).toEqual(expect.arrayContaining(['Pulled', 'Created', 'Started'])), WAIT);
    expect(runtime.calls.filter((m) => m === 'createContainer')).toHaveLength(1);
  });

  it('pauses, resumes and stops the container as spec.state says, without restarting it', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('box'));
    await waitForPhase(client, 'box', 'Running');
    const id = live(runtime)[0]!.id;

    await client.patch(Container, 'default', 'box', { spec: { state: 'Paused' } });
    await waitForPhase(client, 'box', 'Paused', (c) => {
      expect(findCondition(c.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Paused' });
      expect(c.status?.observedGeneration).toBe(2);
    });
    expect(runtime.containers.get(id)!.state).toBe('paused');

    await client.patch(Container, 'default', 'box', { spec: { state: 'Running' } });
    await waitForPhase(client, 'box', 'Running');
    expect(runtime.containers.get(id)!.state).toBe('running');

    await client.patch(Container, 'default', 'box', { spec: { state: 'Stopped' } });
    const stopped = await waitForPhase(client, 'box', 'Exited', (c) => expect(c.status?.exitCode).toBe(143));
    expect(stopped.status?.restartCount).toBe(0);
    expect(findCondition(stopped.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Stopped' });
    expect(findCondition(stopped.status?.conditions, 'Reconciling')).toMatchObject({ status: 'False' });
    expect(stopped.status?.finishedAt).toBeTruthy();
    expect(runtime.containers.get(id)!.state).toBe('stopped');
    await vi.waitFor(async () => expect(await eventReasons(client, 'box')).toEqual(expect.arrayContaining(['Paused', 'Resumed', 'Killing', 'Stopped'])), WAIT);

    // Running again starts a fresh runtime container (as docker start), not counted as a restart
    await client.patch(Container, 'default', 'box', { spec: { state: 'Running' } });
    const again = await waitForPhase(client, 'box', 'Running', (c) => expect(c.status?.containerID).not.toBe(id));
    expect(again.status?.restartCount).toBe(0);
    expect(live(runtime)).toHaveLength(1);
  });

  it('creates a Stopped container without starting it (phase Created)', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('idle', { state: 'Stopped' }));
    const c = await waitForPhase(client, 'idle', 'Created');
    expect(findCondition(c.status?.conditions, 'Reconciling')).toMatchObject({ status: 'False' });
    expect(live(runtime)[0]!.state).toBe('created');
    expect(runtime.calls).not.toContain('startContainer');
  });

  it('leaves a container with restartPolicy Never Exited with its exit code, noticed through runtime events', async () => {
    const cp = await controlPlane();
    // no periodic re-check within the test: only the runtime's exit event can wake the controller
    const { client, runtime } = await startAgent(cp, { resyncMs: 60_000 });
    await client.create(container('once', { restartPolicy: 'Never' }));
    await waitForPhase(client, 'once', 'Running');
    runtime.simulateExit(live(runtime)[0]!.id, 3);
    const c = await waitForPhase(client, 'once', 'Exited', (x) => expect(x.status?.exitCode).toBe(3));
    expect(c.status).toMatchObject({ reason: 'Error', restartCount: 0 });
    expect(c.status?.finishedAt).toBeTruthy();
    expect(findCondition(c.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Error' });
    await vi.waitFor(async () => expect(await eventReasons(client, 'once')).toContain('Failed'), WAIT);
    expect(runtime.calls.filter((m) => m === 'createContainer')).toHaveLength(1);
  });

  it('restarts with OnFailure only after a non-zero exit', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('ok', { restartPolicy: 'OnFailure', command: ['sh', '-c', 'exit 0'] }));
    const ok = await waitForPhase(client, 'ok', 'Exited', (c) => expect(c.status?.reason).toBe('Completed'));
    expect(ok.status).toMatchObject({ exitCode: 0, restartCount: 0 });

    await client.create(container('flaky', { restartPolicy: 'OnFailure' }));
    const first = await waitForPhase(client, 'flaky', 'Running');
    runtime.simulateExit(first.status!.containerID as ContainerId, 2);
    const second = await waitForPhase(client, 'flaky', 'Running', (c) => expect(c.status?.restartCount).toBe(1));
    expect(second.status?.containerID).not.toBe(first.status?.containerID);
    const rc = runtime.containers.get(second.status!.containerID as ContainerId)!;
    expect(rc.config.labels).toMatchObject({ 'berth.dev/restart-count': '1', 'berth.dev/backoff-step': '1' });
    // the restarted run: no exit yet
    expect(second.status?.exitCode).toBeUndefined();
  });

  it('stops restarting OnFailure after restartMaxRetries restarts (on-failure:N) and leaves it Exited with its exit code', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp, { backoff: { initialMs: 10, maxMs: 20 } });
    await client.create(container('limited', { restartPolicy: 'OnFailure', restartMaxRetries: 2, command: ['sh', '-c', 'exit 5'] }));
    const done = await waitForPhase(client, 'limited', 'Exited', (c) => expect(c.status).toMatchObject({ reason: 'Error', restartCount: 2, exitCode: 5 }));
    expect(findCondition(done.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Error' });
    await new Promise((r) => setTimeout(r, 300)); // well past the back-off: still no third restart
    expect((await get(client, 'limited')).status?.restartCount).toBe(2);
    expect(runtime.calls.filter((m) => m === 'createContainer')).toHaveLength(3);
  });

  it('restarts with Always, backing off between quick exits and counting restarts', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp, { backoff: { initialMs: 400, maxMs: 5_000 } });
    await client.create(container('crashy', { command: ['sh', '-c', 'exit 1'] }));
    // each run exits at once: the status shows BackOff while waiting, and restartCount grows
    const waiting = await waitForPhase(client, 'crashy', 'Exited', (c) => expect(c.status?.reason).toBe('BackOff'));
    expect(waiting.status?.message).toMatch(/back-off \d+ ms restarting failed container \(exit code 1/);
    expect(findCondition(waiting.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'BackOff' });
    expect(findCondition(waiting.status?.conditions, 'Reconciling')).toMatchObject({ status: 'True', reason: 'BackOff' });
    await vi.waitFor(async () => expect((await get(client, 'crashy')).status?.restartCount).toBeGreaterThanOrEqual(2), { timeout: 8_000, interval: 20 });
    const labels = [...runtime.containers.values()].map((c) => c.config.labels?.['berth.dev/backoff-step']);
    expect(Number(labels[labels.length - 1])).toBeGreaterThanOrEqual(2);
    expect(runtime.containers.size).toBe(1); // exited runs are removed when replaced
    await vi.waitFor(async () => expect(await eventReasons(client, 'crashy')).toEqual(expect.arrayContaining(['BackOff', 'Failed'])), WAIT);
  });

  it('reports an OOM kill as reason OOMKilled', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('hog', { restartPolicy: 'Never', resources: { memory: '16Mi' } }));
    await waitForPhase(client, 'hog', 'Running');
    runtime.simulateExit(live(runtime)[0]!.id, 137, { oom: true });
    const c = await waitForPhase(client, 'hog', 'Exited', (x) => expect(x.status?.reason).toBe('OOMKilled'));
    expect(c.status?.exitCode).toBe(137);
    await vi.waitFor(async () => expect(await eventReasons(client, 'hog')).toContain('OOMKilled'), WAIT);
  });

  it('replaces the runtime container on a spec change and bumps observedGeneration', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('app', { env: [{ name: 'V', value: '1' }] }));
    const before = await waitForPhase(client, 'app', 'Running');
    await client.patch(Container, 'default', 'app', { spec: { env: [{ name: 'V', value: '2' }] } });
    const after = await waitForPhase(client, 'app', 'Running', (c) => expect(c.status?.observedGeneration).toBe(2));
    expect(after.status?.containerID).not.toBe(before.status?.containerID);
    expect(runtime.containers.has(before.status!.containerID as ContainerId)).toBe(false);
    expect(live(runtime)).toHaveLength(1);
    expect(live(runtime)[0]!.config).toMatchObject({ name: 'default_app_2', env: [{ name: 'V', value: '2' }] });

    // a policy-only change (restartPolicy) does not replace it
    await client.patch(Container, 'default', 'app', { spec: { restartPolicy: 'Never' } });
    const same = await waitForPhase(client, 'app', 'Running', (c) => expect(c.status?.observedGeneration).toBe(3));
    expect(same.status?.containerID).toBe(after.status?.containerID);
  });

  it('autoRemove: writes the exit code, then deletes the Container and its runtime container; a restarting or running one stays', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp, { resyncMs: 60_000 });
    const seen: { type: string; phase?: string; exitCode?: number | null }[] = [];
    const w = await client.watch(Container, { namespace: 'default', fieldSelector: 'metadata.name=rm' }, (e) => seen.push({ type: e.type, phase: e.object.status?.phase, exitCode: e.object.status?.exitCode }));
    onTestFinished(() => w.abort());
    await client.create(container('rm', { restartPolicy: 'Never', autoRemove: true }));
    await client.create(container('rm-failing', { restartPolicy: 'OnFailure', autoRemove: true }));
    await waitForPhase(client, 'rm', 'Running');
    const failing = await waitForPhase(client, 'rm-failing', 'Running');
    runtime.simulateExit(live(runtime).find((c) => c.config.labels?.['berth.dev/name'] === 'rm')!.id, 5);
    await vi.waitFor(async () => expect(isNotFound(await get(client, 'rm').then(() => undefined, (e: unknown) => e))).toBe(true), WAIT);
    // a watcher saw the exit code before the deletion (the DELETED event may come a little after a GET says 404)
    await vi.waitFor(() => expect(seen.some((e) => e.type === 'DELETED')).toBe(true), WAIT);
    const exited = seen.findIndex((e) => e.phase === 'Exited' && e.exitCode === 5);
    expect(exited).toBeGreaterThanOrEqual(0);
    expect(seen.findIndex((e) => e.type === 'DELETED')).toBeGreaterThan(exited);
    // OnFailure after a failure: restarted, not removed
    runtime.simulateExit(failing.status!.containerID as ContainerId, 1);
    await waitForPhase(client, 'rm-failing', 'Running', (c) => expect(c.status?.restartCount).toBe(1));
    // stopped by the user: removed (docker stop of a --rm container)
    await client.patch(Container, 'default', 'rm-failing', { spec: { state: 'Stopped' } });
    await vi.waitFor(async () => expect(isNotFound(await get(client, 'rm-failing').then(() => undefined, (e: unknown) => e))).toBe(true), WAIT);
    expect(runtime.containers.size).toBe(0);
  });

  it('removes the runtime container, then the finalizer, when the Container is deleted', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('gone'));
    await waitForPhase(client, 'gone', 'Running');
    await client.delete(Container, 'default', 'gone');
    await vi.waitFor(async () => {
      const err = await get(client, 'gone').then(() => undefined, (e: unknown) => e);
      expect(isNotFound(err)).toBe(true);
    }, WAIT);
    expect(runtime.containers.size).toBe(0);
    expect(runtime.calls).toContain('stopContainer');
    expect(runtime.calls).toContain('removeContainer');
    expect(runtime.stopGraces).toEqual([1]); // a delete that names no grace period: the spec's stopGracePeriodSeconds
  });

  it('stops a deleted Container with the delete\'s grace period (0: killed at once, as docker rm -f)', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('killed', { stopGracePeriodSeconds: 30 }));
    await waitForPhase(client, 'killed', 'Running');
    await client.delete(Container, 'default', 'killed', { gracePeriodSeconds: 0 });
    await vi.waitFor(async () => expect(isNotFound(await get(client, 'killed').then(() => undefined, (e: unknown) => e))).toBe(true), WAIT);
    expect(runtime.stopGraces).toEqual([0]);
  });

  it('waits with ImageReady=False for an absent image and starts as soon as an Image is imported', async () => {
    const cp = await controlPlane();
    const images = new FakeImageService();
    images.addArchive('/srv/images/busybox-oci.tar');
    const { client, runtime } = await startAgent(cp, { images, withImageController: true, imageRetryMs: 60_000 });
    await client.create(container('later'));
    const pending = await waitForPhase(client, 'later', 'Pending', (c) => expect(c.status?.reason).toBe('ErrImagePull'));
    expect(pending.status?.message).toMatch(/^image "busybox" is not present on node n1 and cannot be pulled: .*; create an Image for it or make it pullable$/);
    expect(findCondition(pending.status?.conditions, 'ImageReady')).toMatchObject({ status: 'False', reason: 'ErrImagePull' });
    expect(findCondition(pending.status?.conditions, 'Reconciling')).toMatchObject({ status: 'True' });
    expect(runtime.containers.size).toBe(0);

    // the Image's tag is the fully qualified form of "busybox": the watch on Images wakes the Container at once
    await client.create<Image>({
      apiVersion: 'berth.dev/v1',
      kind: 'Image',
      metadata: { name: 'busybox', namespace: 'default' },
      spec: { source: { import: { path: '/srv/images/busybox-oci.tar' } }, tags: ['docker.io/library/busybox:latest'] },
    });
    const running = await waitForPhase(client, 'later', 'Running');
    expect(findCondition(running.status?.conditions, 'ImageReady')).toMatchObject({ status: 'True' });
    await vi.waitFor(async () => expect(await eventReasons(client, 'later')).toEqual(expect.arrayContaining(['Pulling', 'ErrImagePull', 'Pulled', 'Started'])), WAIT);
  });

  it('fails imagePullPolicy Always with ErrImagePull when the pull fails, and Never with ErrImageNeverPull', async () => {
    const cp = await controlPlane();
    const { client } = await startAgent(cp);
    await client.create(container('always', { imagePullPolicy: 'Always' }));
    await client.create(container('never', { image: 'nginx', imagePullPolicy: 'Never' }));
    const a = await waitForPhase(client, 'always', 'Pending', (c) => expect(c.status?.reason).toBe('ErrImagePull'));
    expect(a.status?.message).toMatch(/cannot be pulled \(imagePullPolicy Always\): .*the fake image service has no registry/);
    const n = await waitForPhase(client, 'never', 'Pending', (c) => expect(c.status?.reason).toBe('ErrImageNeverPull'));
    expect(findCondition(n.status?.conditions, 'ImageReady')).toMatchObject({ status: 'False', reason: 'ErrImageNeverPull' });
  });

  it('adopts its runtime containers after a restart of the agent and removes orphans', async () => {
    const cp = await controlPlane();
    const runtime = new FakeRuntimeService();
    const first = await startAgent(cp, { runtime });
    await first.client.create(container('keep'));
    const before = await waitForPhase(first.client, 'keep', 'Running');
    await first.stop();

    // while the agent is down: an orphan of a deleted object, and the object of 'keep' untouched
    const orphan = await runtime.createContainer({
      name: 'default_ghost_1',
      image: 'busybox',
      command: ['server'],
      labels: { 'berth.dev/namespace': 'default', 'berth.dev/name': 'ghost', 'berth.dev/uid': 'old-uid', 'berth.dev/node': 'n1', 'berth.dev/generation': '1' },
    });
    await runtime.startContainer(orphan);
    const creates = runtime.calls.filter((m) => m === 'createContainer').length;

    const second = await startAgent(cp, { runtime });
    await vi.waitFor(() => expect(runtime.containers.has(orphan)).toBe(false), WAIT);
    const after = await waitForPhase(second.client, 'keep', 'Running');
    expect(after.status?.containerID).toBe(before.status?.containerID);
    expect(live(runtime).map((c) => c.id)).toEqual([before.status?.containerID]);
    expect(runtime.calls.filter((m) => m === 'createContainer').length).toBe(creates);
  });

  it('restarts a container removed behind its back (drift) under restartPolicy Always', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('drift'));
    const before = await waitForPhase(client, 'drift', 'Running');
    runtime.simulateVanish(before.status!.containerID as ContainerId);
    const after = await waitForPhase(client, 'drift', 'Running', (c) => expect(c.status?.containerID).not.toBe(before.status?.containerID));
    expect(after.status?.restartCount).toBe(1);

    runtime.simulateKill(after.status!.containerID as ContainerId);
    await waitForPhase(client, 'drift', 'Running', (c) => expect(c.status?.restartCount).toBe(2));
  });

  it('does not write status again when nothing changed over several resyncs', async () => {
    const cp = await controlPlane();
    const { client, manager } = await startAgent(cp, { resyncMs: 100 });
    await client.create(container('steady'));
    await waitForPhase(client, 'steady', 'Running');
    const rv = (await get(client, 'steady')).metadata.resourceVersion;
    const reconciles = await metricValue(manager.metrics.registry, 'controller_runtime_reconcile_total', { controller: 'container' });
    await vi.waitFor(async () => {
      expect(await metricValue(manager.metrics.registry, 'controller_runtime_reconcile_total', { controller: 'container' })).toBeGreaterThanOrEqual(reconciles + 4);
    }, WAIT);
    expect((await get(client, 'steady')).metadata.resourceVersion).toBe(rv);
  });

  it('marks an invalid memory limit Stalled and creates nothing', async () => {
    const cp = await controlPlane();
    const { client, runtime, manager } = await startAgent(cp);
    await client.create(container('bad', { resources: { memory: 'lots' } }));
    await vi.waitFor(async () => {
      const c = await get(client, 'bad');
      expect(findCondition(c.status?.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
      expect(c.status).toMatchObject({ phase: 'Pending', reason: 'InvalidSpec' });
      expect(c.status?.message).toMatch(/spec\.resources\.memory/);
    }, WAIT);
    await vi.waitFor(async () => expect(await metricValue(manager.metrics.registry, 'controller_runtime_terminal_reconcile_errors_total', { controller: 'container' })).toBeGreaterThanOrEqual(1), WAIT);
    expect(runtime.containers.size).toBe(0);

    await client.patch(Container, 'default', 'bad', { spec: { resources: { memory: '32Mi' } } });
    const fixed = await waitForPhase(client, 'bad', 'Running');
    expect(findCondition(fixed.status?.conditions, 'Stalled')).toMatchObject({ status: 'False' });
  });

  it('says, in a condition and an Event, which spec fields it ignores for now', async () => {
    const cp = await controlPlane();
    const { client } = await startAgent(cp);
    await client.create(container('ported', { ports: [{ containerPort: 80 }] }));
    const c = await waitForPhase(client, 'ported', 'Running');
    expect(findCondition(c.status?.conditions, 'Unimplemented')).toMatchObject({ status: 'True', reason: 'NotImplemented', message: 'spec.ports is ignored: not implemented yet (issue 5)' });
    await vi.waitFor(async () => expect(await eventReasons(client, 'ported')).toContain('NotImplemented'), WAIT);
  });

  it('ignores Containers bound to another node', async () => {
    const cp = await controlPlane();
    const { client, runtime } = await startAgent(cp);
    await client.create(container('elsewhere', { nodeName: 'n2' }));
    await client.create(container('here'));
    await waitForPhase(client, 'here', 'Running');
    expect((await get(client, 'elsewhere')).status).toBeUndefined();
    expect(live(runtime)).toHaveLength(1);
  });
});

describe('healthchecks', () => {
  it('reports Healthy and Ready while the check passes, and Unhealthy and not Ready after retries failures', async () => {
    const cp = await controlPlane();
    const { client } = await startAgent(cp);
    await client.create(container('fine', { healthcheck: { exec: ['true'], intervalSeconds: 1, retries: 2 } }));
    await client.create(container('sick', { healthcheck: { exec: ['sh', '-c', 'echo broken; exit 1'], intervalSeconds: 1, retries: 2 } }));
    const fine = await waitForPhase(client, 'fine', 'Running');
    expect(fine.status?.health?.status).toBe('Starting');
    expect(findCondition(fine.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'HealthcheckStarting' });
    expect(findCondition(fine.status?.conditions, 'Unimplemented')).toBeUndefined();
    await vi.waitFor(async () => {
      const c = await get(client, 'fine');
      expect(c.status?.health).toMatchObject({ status: 'Healthy', failingStreak: 0 });
      expect(findCondition(c.status?.conditions, 'Ready')).toMatchObject({ status: 'True' });
    }, { timeout: 5_000, interval: 50 });
    await vi.waitFor(async () => {
      const c = await get(client, 'sick');
      expect(c.status?.health).toMatchObject({ status: 'Unhealthy', failingStreak: 2, lastOutput: 'broken\n' });
      expect(findCondition(c.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'Unhealthy' });
      expect(c.status?.phase).toBe('Running');
    }, { timeout: 6_000, interval: 50 });
  });

  it('takes the image HEALTHCHECK when the spec has none, CMD-SHELL through /bin/sh -c', () => {
    const c = container('x');
    expect(healthSpecOf(c, { healthcheck: { test: ['CMD-SHELL', 'wget -q -O- localhost || exit 1'], intervalNs: 5e9, retries: 4 } })).toEqual({
      exec: ['/bin/sh', '-c', 'wget -q -O- localhost || exit 1'], intervalMs: 5_000, timeoutMs: 30_000, retries: 4, startPeriodMs: 0,
    });
    expect(healthSpecOf(c, { healthcheck: { test: ['CMD', 'check', '--fast'] } })?.exec).toEqual(['check', '--fast']);
    expect(healthSpecOf(c, {})).toBeUndefined();
    expect(healthSpecOf(container('y', { healthcheck: { exec: ['true'] } }), { healthcheck: { test: ['CMD', 'other'] } })?.exec).toEqual(['true']);
  });
});

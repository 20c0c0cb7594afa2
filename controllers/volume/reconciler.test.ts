import { lstat, mkdtemp, readdir, realpath, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../../test/harness/control-plane.ts';
import { FakeRuntimeService } from '../../runtime/testing/index.ts';
import { addContainerController } from '../container/controller.ts';
import { FakeImageService } from '../container/testing/fake-image-service.ts';
import { Container, Event, EventRecorder, findCondition, isNotFound, Node, silentLogger, Volume, type ApiClient } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { addVolumeController, CONDITION_VOLUMES_READY, LABEL_AUTO_CREATED, VOLUME_FINALIZER, volumeDataDir } from './index.ts';

const WAIT = { timeout: 5_000, interval: 20 };

interface Agent {
  readonly client: ApiClient;
  readonly runtime: FakeRuntimeService;
  readonly volumesRoot: string;
}

/** A control plane with Node `n1` (and `others`), and the agent of n1: Container and Volume controllers, fake runtime, a temporary volumes root. */
async function startAgent(others: readonly string[] = []): Promise<Agent> {
  const cp: ControlPlane = await startControlPlane();
  onTestFinished(() => cp.stop());
  const volumesRoot = await realpath(await mkdtemp(join(tmpdir(), 'berth-volumes-')));
  onTestFinished(() => rm(volumesRoot, { recursive: true, force: true }));
  const client = clientFor(cp);
  for (const name of ['n1', ...others]) await client.create<Node>({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name }, spec: {} });
  const manager = managerFor(cp, { client });
  const runtime = new FakeRuntimeService();
  const images = new FakeImageService();
  images.addImage(['busybox:latest']);
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: 'n1' });
  addContainerController(manager, { client, runtime, images, nodeName: 'n1', recorder, logger: silentLogger, volumesRoot, resyncMs: 300 });
  addVolumeController(manager, { client, nodeName: 'n1', volumesRoot, recorder, logger: silentLogger });
  await manager.start();
  return { client, runtime, volumesRoot };
}

const volume = (name: string, spec: Volume['spec'] = {}): Volume => ({ apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name, namespace: 'default' }, spec: { driver: 'local', ...spec } });

function container(name: string, spec: Partial<Container['spec']> = {}): Container {
  return { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name, namespace: 'default' }, spec: { image: 'busybox', command: ['server'], nodeName: 'n1', stopGracePeriodSeconds: 1, ...spec } };
}

async function waitFor<T>(read: () => Promise<T>, check: (x: T) => void): Promise<T> {
  let out!: T;
  await vi.waitFor(async () => {
    out = await read();
    check(out);
  }, WAIT);
  return out;
}

const getVolume = (client: ApiClient, name: string) => client.get(Volume, 'default', name);
const getContainer = (client: ApiClient, name: string) => client.get(Container, 'default', name);
const gone = async (read: () => Promise<unknown>) => read().then(() => false, (err: unknown) => isNotFound(err));

/** Mounts of the fake runtime's live containers, by Container name. */
function mountsOf(runtime: FakeRuntimeService, name: string) {
  return [...runtime.containers.values()].find((c) => c.config.labels?.['berth.dev/name'] === name && c.state !== 'stopped')?.config.mounts;
}

describe('VolumeReconciler', () => {
  it('makes the data directory of a declared Volume on the only node and reports it Available', async () => {
    const { client, volumesRoot } = await startAgent();
    await client.create(volume('data'));
    const v = await waitFor(() => getVolume(client, 'data'), (x) => expect(x.status?.phase).toBe('Available'));
    const dir = volumeDataDir(volumesRoot, 'default', 'data');
    expect(v.status).toMatchObject({ nodeName: 'n1', mountpoint: dir, observedGeneration: 1 });
    expect(v.metadata.finalizers).toContain(VOLUME_FINALIZER);
    expect(findCondition(v.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    expect(findCondition(v.status?.conditions, 'Stalled')?.status).toBe('False');
    expect((await stat(dir)).mode & 0o7777).toBe(0o755);
  });

  it('leaves an unused, unpinned Volume Pending while there are several nodes, and places it with its first user', async () => {
    const { client, runtime } = await startAgent(['n2']);
    await client.create(volume('data'));
    const pending = await waitFor(() => getVolume(client, 'data'), (x) => expect(findCondition(x.status?.conditions, 'Ready')?.reason).toBe('WaitingForFirstConsumer'));
    expect(pending.status?.phase).toBe('Pending');
    expect(pending.status?.nodeName).toBeUndefined();

    await client.create(container('web', { volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'data', mountPath: '/sub', subPath: 'x' }, { name: 'data', mountPath: '/nc', noCopy: true }] }));
    await waitFor(() => getVolume(client, 'data'), (x) => expect(x.status).toMatchObject({ phase: 'InUse', nodeName: 'n1', usedBy: ['web'] }));
    await waitFor(() => getContainer(client, 'web'), (c) => expect(c.status?.phase).toBe('Running'));
    // filled from the image when empty (copyUp), as Docker does; not through a subPath, not with noCopy
    expect(mountsOf(runtime, 'web')).toEqual([
      { containerPath: '/data', hostPath: expect.stringMatching(/default\/data\/_data$/), type: 'bind', copyUp: true },
      { containerPath: '/sub', hostPath: expect.stringMatching(/default\/data\/_data\/x$/), type: 'bind' },
      { containerPath: '/nc', hostPath: expect.stringMatching(/default\/data\/_data$/), type: 'bind' },
    ]);
  });

  it('creates an undeclared Volume on first use, and the container waits (VolumesReady=False) until it is Available', async () => {
    const { client, runtime, volumesRoot } = await startAgent();
    await client.create(container('web', { volumeMounts: [{ name: 'cache', mountPath: '/cache', readOnly: true }] }));
    const v = await waitFor(() => getVolume(client, 'cache'), (x) => expect(x.status?.phase).toBe('InUse'));
    expect(v.metadata.labels?.[LABEL_AUTO_CREATED]).toBe('true');
    const c = await waitFor(() => getContainer(client, 'web'), (x) => expect(x.status?.phase).toBe('Running'));
    expect(findCondition(c.status?.conditions, CONDITION_VOLUMES_READY)).toMatchObject({ status: 'True', reason: 'Mounted' });
    expect(mountsOf(runtime, 'web')).toEqual([{ containerPath: '/cache', hostPath: volumeDataDir(volumesRoot, 'default', 'cache'), type: 'bind', readonly: true, copyUp: true }]);
    await vi.waitFor(async () => {
      const events = (await client.list(Event, { namespace: 'default' })).items;
      expect(events.some((e) => e.involvedObject.name === 'web' && e.reason === 'VolumeCreated')).toBe(true);
    }, WAIT);
  });

  it('lets several containers mount the same volume, and keeps a deleted Volume (InUse) until its last user is gone', async () => {
    const { client, volumesRoot } = await startAgent();
    await client.create(volume('shared'));
    await client.create(container('a', { volumeMounts: [{ name: 'shared', mountPath: '/s' }] }));
    await client.create(container('b', { volumeMounts: [{ name: 'shared', mountPath: '/s', subPath: 'b' }] }));
    await waitFor(() => getVolume(client, 'shared'), (x) => expect(x.status?.usedBy).toEqual(['a', 'b']));
    const dir = volumeDataDir(volumesRoot, 'default', 'shared');

    await client.delete(Volume, 'default', 'shared');
    const waiting = await waitFor(() => getVolume(client, 'shared'), (x) => expect(findCondition(x.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'InUse' }));
    expect(waiting.metadata.deletionTimestamp).toBeTruthy();
    expect(findCondition(waiting.status?.conditions, 'Ready')?.message).toContain('still used by a, b');
    expect((await readdir(dir)).sort()).toEqual(['b']);

    await client.delete(Container, 'default', 'a');
    await waitFor(() => getVolume(client, 'shared'), (x) => expect(x.status?.usedBy).toEqual(['b']));
    await client.delete(Container, 'default', 'b');
    await vi.waitFor(async () => expect(await gone(() => getVolume(client, 'shared'))).toBe(true), WAIT);
    await expect(lstat(join(volumesRoot, 'default', 'shared'))).rejects.toThrow();
  });

  it('keeps the data when every container that used it is deleted', async () => {
    const { client, volumesRoot } = await startAgent();
    await client.create(container('w', { volumeMounts: [{ name: 'keep', mountPath: '/k', subPath: 'made/by/w' }] }));
    await waitFor(() => getContainer(client, 'w'), (c) => expect(c.status?.phase).toBe('Running'));
    await client.delete(Container, 'default', 'w');
    await vi.waitFor(async () => expect(await gone(() => getContainer(client, 'w'))).toBe(true), WAIT);
    const v = await waitFor(() => getVolume(client, 'keep'), (x) => expect(x.status?.phase).toBe('Available'));
    expect(v.status?.usedBy).toBeUndefined();
    expect((await stat(join(volumeDataDir(volumesRoot, 'default', 'keep'), 'made/by/w'))).isDirectory()).toBe(true);
  });

  it('makes a container whose volume lives on another node wait with reason VolumeNodeConflict', async () => {
    const { client, runtime } = await startAgent(['n2']);
    await client.create(volume('remote', { nodeName: 'n2' }));
    await client.create(container('web', { volumeMounts: [{ name: 'remote', mountPath: '/r' }] }));
    const c = await waitFor(() => getContainer(client, 'web'), (x) => expect(findCondition(x.status?.conditions, CONDITION_VOLUMES_READY)?.reason).toBe('VolumeNodeConflict'));
    expect(c.status?.phase).toBe('Pending');
    expect(c.status?.message).toContain('lives on node n2');
    expect(runtime.containers.size).toBe(0);
    // not this node's volume: left alone
    expect((await getVolume(client, 'remote')).metadata.finalizers ?? []).not.toContain(VOLUME_FINALIZER);
  });

  it('stalls a container whose subPath leaves the volume through a symlink', async () => {
    const { client, runtime, volumesRoot } = await startAgent();
    await client.create(volume('data'));
    await waitFor(() => getVolume(client, 'data'), (x) => expect(x.status?.phase).toBe('Available'));
    await symlink('/etc', join(volumeDataDir(volumesRoot, 'default', 'data'), 'evil'));
    await client.create(container('web', { volumeMounts: [{ name: 'data', mountPath: '/d', subPath: 'evil' }] }));
    const c = await waitFor(() => getContainer(client, 'web'), (x) => expect(findCondition(x.status?.conditions, 'Stalled')?.status).toBe('True'));
    expect(findCondition(c.status?.conditions, 'Stalled')?.message).toMatch(/spec\.volumeMounts\[0\]\.subPath: .*through a symlink/);
    expect(runtime.containers.size).toBe(0);
  });
});

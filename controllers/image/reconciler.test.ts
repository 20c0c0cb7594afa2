import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ImageStore } from '../../runtime/images/index.ts';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { Event, EventRecorder, findCondition, Image, isNotFound, silentLogger, type ApiClient } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { addImageController, IMAGE_FINALIZER } from './index.ts';

const WAIT = { timeout: 10_000, interval: 25 };

let fixtureDir: string;
let fx: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync(join(tmpdir(), 'berth-image-ctrl-fixture-'));
  fx = await buildBusyboxImage(fixtureDir);
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

async function start() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const root = mkdtempSync(join(tmpdir(), 'berth-image-ctrl-store-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const store = new ImageStore({ root });
  const client = clientFor(cp);
  const manager = managerFor(cp, { client });
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: 'n1' });
  const controller = addImageController(manager, { client, images: store, nodeName: 'n1', recorder, logger: silentLogger, retry: { initialMs: 100, maxMs: 400 } });
  onTestFinished(() => controller.stop());
  await manager.start();
  return { client, store };
}

function image(name: string, source: Image['spec']['source'], tags?: string[]): Image {
  return { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name, namespace: 'default' }, spec: { source, ...(tags ? { tags } : {}) } };
}

const get = (client: ApiClient, name: string) => client.get(Image, 'default', name);

async function reasons(client: ApiClient, name: string): Promise<string[]> {
  return (await client.list(Event, { namespace: 'default' })).items.filter((e) => e.involvedObject.name === name).map((e) => e.reason ?? '');
}

describe('ImageReconciler', () => {
  it('imports an OCI archive, tags it <name>:latest by default, and reports Ready with digest, id and size', async () => {
    const { client, store } = await start();
    await client.create(image('busybox', { import: { path: fx.ociArchive } }));
    await vi.waitFor(async () => expect((await get(client, 'busybox')).status?.phase).toBe('Ready'), WAIT);
    const img = await get(client, 'busybox');
    expect(img.status).toMatchObject({ id: fx.configDigest, digest: fx.manifestDigest, observedGeneration: 1 });
    expect(img.status?.size).toBeGreaterThan(0);
    expect(img.metadata.finalizers).toContain(IMAGE_FINALIZER);
    expect(findCondition(img.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Imported' });
    expect(findCondition(img.status?.conditions, 'Stalled')).toMatchObject({ status: 'False' });
    expect((await store.imageStatus('busybox'))?.id).toBe(fx.configDigest);
    await vi.waitFor(async () => expect(await reasons(client, 'busybox')).toContain('Imported'), WAIT);
  });

  it('tags the image with spec.tags', async () => {
    const { client, store } = await start();
    await client.create(image('bb', { import: { path: fx.dockerArchive } }, ['tools:1', 'registry.local/tools:1']));
    await vi.waitFor(async () => expect((await get(client, 'bb')).status?.phase).toBe('Ready'), WAIT);
    expect((await store.imageStatus('tools:1'))?.id).toBe(fx.configDigest);
    expect((await store.imageStatus('registry.local/tools:1'))?.id).toBe(fx.configDigest);
    expect(await store.imageStatus('bb:latest')).toBeUndefined();
  });

  it('marks a missing file Failed and Stalled, and imports it once it appears', async () => {
    const { client } = await start();
    const later = join(fixtureDir, 'later');
    onTestFinished(() => rmSync(later, { recursive: true, force: true }));
    const path = join(later, 'busybox-oci.tar');
    await client.create(image('late', { import: { path } }));
    await vi.waitFor(async () => {
      const img = await get(client, 'late');
      expect(img.status?.phase).toBe('Failed');
      expect(img.status?.message).toContain(path);
      expect(findCondition(img.status?.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'ImportFailed' });
      expect(findCondition(img.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'ImportFailed' });
    }, WAIT);
    await buildBusyboxImage(later);
    await vi.waitFor(async () => expect((await get(client, 'late')).status?.phase).toBe('Ready'), WAIT);
    const img = await get(client, 'late');
    expect(img.status?.message).toBeUndefined();
    expect(findCondition(img.status?.conditions, 'Stalled')).toMatchObject({ status: 'False' });
  });

  it('reports pull sources as not implemented yet instead of ignoring them', async () => {
    const { client } = await start();
    await client.create(image('remote', { pull: { reference: 'docker.io/library/alpine:3' } }));
    await vi.waitFor(async () => {
      const img = await get(client, 'remote');
      expect(img.status?.phase).toBe('Pending');
      expect(findCondition(img.status?.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'SourceNotImplemented' });
      expect(img.status?.message).toMatch(/spec\.source\.pull is not implemented yet.*issue 4/);
    }, WAIT);
  });

  it('removes the tags on deletion, waiting while a container still uses the image', async () => {
    const { client, store } = await start();
    await client.create(image('busybox', { import: { path: fx.ociArchive } }));
    await vi.waitFor(async () => expect((await get(client, 'busybox')).status?.phase).toBe('Ready'), WAIT);
    await store.pin(fx.configDigest, 'c0ffee');
    await client.delete(Image, 'default', 'busybox');
    await vi.waitFor(async () => {
      const img = await get(client, 'busybox');
      expect(findCondition(img.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'InUse' });
      expect(findCondition(img.status?.conditions, 'Ready')?.message).toContain('c0ffee');
      expect(img.metadata.finalizers).toContain(IMAGE_FINALIZER);
    }, WAIT);
    expect(await store.imageStatus('busybox')).toBeDefined();

    await store.unpin(fx.configDigest, 'c0ffee');
    await vi.waitFor(async () => {
      const err = await get(client, 'busybox').then(() => undefined, (e: unknown) => e);
      expect(isNotFound(err)).toBe(true);
    }, WAIT);
    expect(await store.imageStatus('busybox')).toBeUndefined();
  });
});

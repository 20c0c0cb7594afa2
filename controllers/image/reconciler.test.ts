import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { RegistryConfig } from '../../runtime/cri/index.ts';
import { NodeImageBuilder } from '../../runtime/build/node-image-builder.ts';
import { removeCgroup } from '../../runtime/oci/cgroups.ts';
import { hasDockerRegistry, skopeoAsync, startRegistry, type RegistryProcess } from '../../runtime/distribution/testing/registry-process.ts';
import { ImageStore } from '../../runtime/images/index.ts';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { Event, EventRecorder, findCondition, Image, isNotFound, silentLogger, type ApiClient } from '../framework/index.ts';
import { clientFor } from '../framework/testing/control-plane-client.ts';
import { managerFor } from '../framework/testing/manager.ts';
import { addImageController, IMAGE_FINALIZER } from './index.ts';

const WAIT = { timeout: 10_000, interval: 25 };
/** Where the build test's RUN steps get their cgroups; removed afterwards. */
const BUILD_CGROUP = `/berth-ctrl-test-${process.pid}`;

let fixtureDir: string;
let fx: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync(join(tmpdir(), 'berth-image-ctrl-fixture-'));
  fx = await buildBusyboxImage(fixtureDir);
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

async function start(registry: RegistryConfig = {}, withBuilder = false) {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const root = mkdtempSync(join(tmpdir(), 'berth-image-ctrl-store-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const store = new ImageStore({ root, registry });
  const client = clientFor(cp);
  const manager = managerFor(cp, { client });
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: 'n1' });
  const controller = addImageController(manager, {
    client, images: store, nodeName: 'n1', recorder, logger: silentLogger, retry: { initialMs: 100, maxMs: 400 }, progressIntervalMs: 50,
    ...(withBuilder ? { builder: new NodeImageBuilder({ store, cgroupParent: BUILD_CGROUP }) } : {}),
  });
  if (withBuilder) onTestFinished(async () => void (await removeCgroup(BUILD_CGROUP)));
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

  describe.skipIf(!hasDockerRegistry())('with a registry (Debian docker-registry, basic auth)', () => {
    const PORT = 5121;
    const creds = { username: 'ci', password: 'pa55word' };
    let registry: RegistryProcess;
    beforeAll(async () => {
      registry = await startRegistry({ port: PORT, basicAuth: creds });
      await skopeoAsync(['copy', '--dest-tls-verify=false', '--dest-creds', `${creds.username}:${creds.password}`, `oci:${fx.layoutDir}`, `docker://${registry.domain}/src/busybox:1`]);
    }, 60_000);
    afterAll(() => registry?.stop());

    const dockerConfigSecret = (name: string) => ({
      apiVersion: 'v1' as const, kind: 'Secret' as const, metadata: { name, namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [registry.domain]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } } })).toString('base64') },
    });

    it('pulls with the credentials of a dockerconfigjson Secret, tags it, and pushes it to spec.push', async () => {
      const { client, store } = await start({ insecureRegistries: [registry.domain] });
      await client.create(dockerConfigSecret('regcred'));
      const img = image('pulled', { pull: { reference: `${registry.domain}/src/busybox:1`, credentialsSecret: 'regcred' } }, ['busybox:pulled']);
      img.spec.push = [{ reference: `${registry.domain}/dst/busybox:2`, credentialsSecret: 'regcred' }];
      await client.create(img);
      await vi.waitFor(async () => expect((await get(client, 'pulled')).status?.pushed).toHaveLength(1), { ...WAIT, timeout: 30_000 });
      const got = await get(client, 'pulled');
      expect(got.status).toMatchObject({ phase: 'Ready', id: fx.configDigest, digest: fx.manifestDigest, pushed: [{ reference: `${registry.domain}/dst/busybox:2`, digest: fx.manifestDigest }] });
      expect(got.status?.progress).toBeUndefined();
      expect(findCondition(got.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Pushed' });
      expect((await store.imageStatus('busybox:pulled'))?.id).toBe(fx.configDigest);
      const inspected = JSON.parse(await skopeoAsync(['inspect', '--tls-verify=false', '--creds', `${creds.username}:${creds.password}`, `docker://${registry.domain}/dst/busybox:2`])) as { Digest: string };
      expect(inspected.Digest).toBe(fx.manifestDigest);
      await vi.waitFor(async () => expect(await reasons(client, 'pulled')).toEqual(expect.arrayContaining(['Pulling', 'Pulled', 'Pushed'])), WAIT);
    });

    it('fails a pull the registry refuses, Stalled and naming the reference, and a missing Secret naming the Secret', async () => {
      const { client } = await start({ insecureRegistries: [registry.domain] });
      await client.create(image('anon', { pull: { reference: `${registry.domain}/src/busybox:1` } }));
      await client.create(image('nosecret', { pull: { reference: `${registry.domain}/src/busybox:1`, credentialsSecret: 'missing' } }));
      await vi.waitFor(async () => {
        const anon = await get(client, 'anon');
        expect(anon.status?.phase).toBe('Failed');
        expect(findCondition(anon.status?.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'PullFailed' });
        expect(anon.status?.message).toContain(`${registry.domain}/src/busybox:1`);
        const nosecret = await get(client, 'nosecret');
        expect(findCondition(nosecret.status?.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'CredentialsNotFound' });
        expect(nosecret.status?.message).toBe('secret default/missing not found');
      }, { ...WAIT, timeout: 20_000 });
    });
  });

  it.skipIf(process.getuid?.() !== 0)('builds a Dockerfile from a directory and reports the steps', async () => {
    const { client, store } = await start({}, true);
    await client.create(image('busybox', { import: { path: fx.ociArchive } }, ['busybox:latest']));
    await vi.waitFor(async () => expect((await get(client, 'busybox')).status?.phase).toBe('Ready'), WAIT);
    const ctxDir = mkdtempSync(join(tmpdir(), 'berth-image-ctrl-ctx-'));
    onTestFinished(() => rmSync(ctxDir, { recursive: true, force: true }));
    writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copied\nCMD ["cat", "/copied"]\n');
    writeFileSync(join(ctxDir, 'hello.txt'), 'hello\n');
    await client.create(image('app', { build: { context: { path: ctxDir } } }, ['app:1']));
    await vi.waitFor(async () => expect((await get(client, 'app')).status?.phase).toBe('Ready'), { ...WAIT, timeout: 60_000 });
    const app = await get(client, 'app');
    expect(findCondition(app.status?.conditions, 'Ready')?.message).toMatch(/built Dockerfile in .* as app:1 on node n1 \(3 steps, 0 cached\)/);
    const built = await store.imageStatus('app:1');
    expect(built?.config.cmd).toEqual(['cat', '/copied']);

    await client.create(image('broken', { build: { context: { path: ctxDir }, dockerfile: 'Broken' } }));
    writeFileSync(join(ctxDir, 'Broken'), 'FROM busybox\nRUN exit 3\n');
    await vi.waitFor(async () => {
      const broken = await get(client, 'broken');
      expect(findCondition(broken.status?.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'BuildFailed' });
      expect(broken.status?.message).toMatch(/Dockerfile line 2.*code: 3/);
    }, { ...WAIT, timeout: 60_000 });
  }, 120_000);

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

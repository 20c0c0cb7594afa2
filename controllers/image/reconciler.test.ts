import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { BuildImageRequest, ContainerId, ImageBuilder, ImageId, RegistryConfig, RuntimeContainer, RuntimeService } from '../../runtime/cri/index.ts';
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

/** Fakes of the builder and runtime a test gives the controller instead of the real ones. */
interface Fakes {
  readonly builder?: (store: ImageStore) => ImageBuilder;
  readonly runtime?: Pick<RuntimeService, 'listContainers'>;
}

async function start(registry: RegistryConfig = {}, withBuilder = false, fakes: Fakes = {}) {
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
    ...(fakes.builder ? { builder: fakes.builder(store) } : {}),
    ...(fakes.runtime ? { runtime: fakes.runtime } : {}),
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

/** Merge-patches the spec of Image `name` (no conflict with the controller's status writes); resolves with the new generation. */
async function patchSpec(client: ApiClient, name: string, spec: Partial<Image['spec']>): Promise<number> {
  return (await client.patch(Image, 'default', name, { spec })).metadata.generation ?? 0;
}

/** Waits until Image `name` is Ready for `generation`; resolves with it. */
async function readyFor(client: ApiClient, name: string, generation: number, timeout = 10_000): Promise<Image> {
  let img: Image | undefined;
  await vi.waitFor(async () => {
    img = await get(client, name);
    expect(img.status?.observedGeneration).toBe(generation);
    expect(img.status?.phase).toBe('Ready');
  }, { ...WAIT, timeout });
  return img!;
}

/**
 * A builder that builds and commits by importing the busybox fixture under the
 * requested tags, recording each call: what the controller asked for, not how.
 */
class RecordingBuilder implements ImageBuilder {
  readonly builds: BuildImageRequest[] = [];
  readonly commits: ContainerId[] = [];
  constructor(private readonly store: ImageStore) {}

  async buildImage(req: BuildImageRequest) {
    this.builds.push(req);
    const imageId = await this.store.importImage(fx.ociArchive, { tags: req.tags });
    return { imageId, manifestDigest: fx.manifestDigest, steps: 1, cachedSteps: 0 };
  }

  async commitContainer(id: ContainerId, req: { tags: readonly string[] }) {
    this.commits.push(id);
    const imageId = await this.store.importImage(fx.ociArchive, { tags: req.tags });
    return { imageId, manifestDigest: fx.manifestDigest };
  }
}

/** A runtime with one container, `default/web`, until `remove()` (as `berth rm -f web` does). */
function oneContainerRuntime() {
  let alive = true;
  const web: RuntimeContainer = {
    id: 'c0ffee' as ContainerId, name: 'web', imageRef: 'busybox', imageId: fx.configDigest as ImageId, state: 'running', createdAtMs: 1,
    labels: { 'berth.dev/namespace': 'default', 'berth.dev/name': 'web' }, annotations: {},
  };
  return {
    remove: () => void (alive = false),
    listContainers: async (filter?: { labels?: Record<string, string> }) =>
      alive && Object.entries(filter?.labels ?? {}).every(([k, v]) => web.labels[k] === v) ? [web] : [],
  };
}

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

    it('pushes a committed image when spec.push changes, without committing again', async () => {
      let builder: RecordingBuilder | undefined;
      const runtime = oneContainerRuntime();
      const { client } = await start({ insecureRegistries: [registry.domain] }, false, { builder: (s) => (builder = new RecordingBuilder(s)), runtime });
      await client.create(dockerConfigSecret('regcred'));
      await client.create(image('snap', { commit: { container: 'web' } }, ['snap:1']));
      const committed = await readyFor(client, 'snap', 1);
      runtime.remove();
      const target = `${registry.domain}/dst/snap:1`;
      const generation = await patchSpec(client, 'snap', { push: [{ reference: target, credentialsSecret: 'regcred' }] });
      await vi.waitFor(async () => expect((await get(client, 'snap')).status?.pushed).toHaveLength(1), { ...WAIT, timeout: 30_000 });
      const pushed = await readyFor(client, 'snap', generation);
      expect(pushed.status).toMatchObject({ id: committed.status!.id, pushed: [{ reference: target, digest: fx.manifestDigest }] });
      expect(builder!.commits).toHaveLength(1);
      const inspected = JSON.parse(await skopeoAsync(['inspect', '--tls-verify=false', '--creds', `${creds.username}:${creds.password}`, `docker://${target}`])) as { Digest: string };
      expect(inspected.Digest).toBe(fx.manifestDigest);
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

  describe('what a spec change makes again (issues 4 and 6)', () => {
    it('re-tags a committed image whose container is gone, keeping it Ready, without committing again', async () => {
      let builder: RecordingBuilder | undefined;
      const runtime = oneContainerRuntime();
      const { client, store } = await start({}, false, { builder: (s) => (builder = new RecordingBuilder(s)), runtime });
      await client.create(image('img', { commit: { container: 'web', pause: true } }, ['img:1']));
      const committed = await readyFor(client, 'img', 1);
      expect(builder!.commits).toEqual(['c0ffee']);
      runtime.remove();

      // berth tag img:1 img:2
      const tagged = await readyFor(client, 'img', await patchSpec(client, 'img', { tags: ['img:1', 'img:2'] }));
      expect(tagged.status).toMatchObject({ id: committed.status!.id, digest: committed.status!.digest });
      expect(findCondition(tagged.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Tagged' });
      expect((await store.imageStatus('img:2'))?.id).toBe(committed.status!.id);
      expect((await store.imageStatus('img:1'))?.id).toBe(committed.status!.id);

      // berth rmi img:1: the dropped tag leaves the store, the image stays
      const untagged = await readyFor(client, 'img', await patchSpec(client, 'img', { tags: ['img:2'] }));
      expect(untagged.status?.id).toBe(committed.status!.id);
      expect(await store.imageStatus('img:1')).toBeUndefined();
      expect((await store.imageStatus('img:2'))?.id).toBe(committed.status!.id);
      expect(builder!.commits).toHaveLength(1);
      await vi.waitFor(async () => expect(await reasons(client, 'img')).toContain('Tagged'), WAIT);
      expect(await reasons(client, 'img')).not.toContain('ContainerNotFound');
    });

    it('re-tags a built image without building again, and builds again when the build args change', async () => {
      let builder: RecordingBuilder | undefined;
      const { client, store } = await start({}, false, { builder: (s) => (builder = new RecordingBuilder(s)) });
      await client.create(image('app', { build: { context: { path: '/nonexistent/ctx' }, buildArgs: { V: '1' } } }, ['app:1']));
      const built = await readyFor(client, 'app', 1);
      expect(builder!.builds).toHaveLength(1);

      await readyFor(client, 'app', await patchSpec(client, 'app', { tags: ['app:1', 'app:latest'] }));
      expect((await store.imageStatus('app:latest'))?.id).toBe(built.status!.id);
      expect(builder!.builds).toHaveLength(1);

      const generation = await patchSpec(client, 'app', { source: { build: { context: { path: '/nonexistent/ctx' }, buildArgs: { V: '2' } } } });
      const rebuilt = await readyFor(client, 'app', generation);
      expect(builder!.builds).toHaveLength(2);
      expect(builder!.builds[1]).toMatchObject({ buildArgs: { V: '2' }, tags: ['app:1', 'app:latest'] });
      expect(findCondition(rebuilt.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Built' });
    });

    it('imports again when spec.source changes, not when only spec.tags does', async () => {
      const { client, store } = await start();
      const imports = vi.spyOn(store, 'importImage');
      await client.create(image('bb', { import: { path: fx.ociArchive } }, ['bb:1']));
      await readyFor(client, 'bb', 1);
      expect(imports).toHaveBeenCalledTimes(1);
      await readyFor(client, 'bb', await patchSpec(client, 'bb', { tags: ['bb:2'] }));
      expect(imports).toHaveBeenCalledTimes(1);
      expect(await store.imageStatus('bb:1')).toBeUndefined();
      expect((await store.imageStatus('bb:2'))?.id).toBe(fx.configDigest);
      await readyFor(client, 'bb', await patchSpec(client, 'bb', { source: { import: { path: fx.dockerArchive } } }));
      expect(imports).toHaveBeenCalledTimes(2);
      expect(imports.mock.calls[1]?.[0]).toBe(fx.dockerArchive);
    });

    it('keeps what it made in the status (id, sourceHash, tags), so a kubectl replace that changes the tags only re-tags', async () => {
      const { client, store } = await start();
      const imports = vi.spyOn(store, 'importImage');
      await client.create(image('rp', { import: { path: fx.ociArchive } }, ['rp:1']));
      const ready = await readyFor(client, 'rp', 1);
      expect(ready.status).toMatchObject({ id: fx.configDigest, sourceHash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), tags: ['rp:1'] });
      expect(ready.metadata.annotations ?? {}).toEqual({});

      // kubectl replace -f: the manifest as written (no status, no annotations), tags changed
      const manifest = image('rp', { import: { path: fx.ociArchive } }, ['rp:2']);
      manifest.metadata.resourceVersion = ready.metadata.resourceVersion!;
      const replaced = await readyFor(client, 'rp', (await client.update(manifest)).metadata.generation ?? 0);
      expect(imports).toHaveBeenCalledTimes(1);
      expect(replaced.status).toMatchObject({ id: fx.configDigest, sourceHash: ready.status!.sourceHash, tags: ['rp:2'] });
      expect(await store.imageStatus('rp:1')).toBeUndefined();
      expect((await store.imageStatus('rp:2'))?.id).toBe(fx.configDigest);
    });

    it('makes the image again when its content left the store', async () => {
      const { client, store } = await start();
      const imports = vi.spyOn(store, 'importImage');
      await client.create(image('gone', { import: { path: fx.ociArchive } }, ['gone:1']));
      await readyFor(client, 'gone', 1);
      await store.removeImage(fx.configDigest);
      await readyFor(client, 'gone', await patchSpec(client, 'gone', { tags: ['gone:1', 'gone:2'] }));
      expect(imports).toHaveBeenCalledTimes(2);
      expect((await store.imageStatus('gone:2'))?.id).toBe(fx.configDigest);
    });
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

/**
 * `berth compose` with `build:` end to end, as root with real runc containers, the CLI
 * run as a child process: a service built from a Dockerfile (context, dockerfile,
 * args, target; a COPY and a RUN on the busybox fixture) brought up with `up -d`, its
 * output read with `logs`, then `down --rmi local` removing the built Image; `up`
 * attached (no -d) for a service that prints and exits, which prints its prefixed
 * output and returns, then `down --rmi all` removing the image another service ran;
 * `logs -f` following a container until it exits. Only this
 * run's names are used (projects h14*, network names bt14-*, tables bt14_*, subnets
 * 10.214.N.0/24, node h14, a mkdtemp data directory).
 *
 * Skipped unless running as root with runc, conmon, kubectl, ip and nft.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CGROUP_ROOT, removeCgroup } from '../../runtime/oci/cgroups.ts';
import { buildBusyboxImage, type BusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, narrator, networkLeftovers, realContainersMissing, run, sweepDataDir, sweepTestNetwork, testNetwork, type ToolResult } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const missing = realContainersMissing() ?? (spawnSync('nft', ['--version']).status === 0 ? undefined : 'nft is missing');

const { names: NAMES, subnet } = testNetwork('bt14', 214);
const PROJECTS = ['h14', 'h14b', 'h14c'] as const;
const selector = (project: string) => encodeURIComponent(`berth.dev/compose-project=${project}`);

/** A two-stage Dockerfile: `final` (the target) copies the first stage's output; a later `extra` stage must not be built. */
const DOCKERFILE = `FROM busybox AS base
ARG GREETING=unset
COPY message.txt /message.txt
RUN echo "built with $GREETING" > /built.txt

FROM busybox AS final
COPY --from=base /message.txt /built.txt /
CMD ["sh", "-c", "cat /message.txt /built.txt"]

FROM final AS extra
RUN echo "the extra stage was built" > /built.txt
`;

/** A project whose service is built from ./app with `command` (plus `extra` services), on a default network with its own subnet. */
const composeFile = (service: string, command: readonly string[], subnetIndex: number, extra = '') => `
services:${extra}
  ${service}:
    build:
      context: ./app
      dockerfile: build/App.dockerfile
      args: {GREETING: "\${GREETING:-nobody}"}
      target: final
    command: ${JSON.stringify(command)}
    stop_grace_period: 1s
networks:
  default:
    ipam:
      config: [{subnet: ${subnet(subnetIndex)}}]
`;

if (missing) {
  describe('berth compose build end to end', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and nft (${missing})`, () => {});
  });
} else {
  describe('berth compose build end to end (real runc)', () => {
    let root: string;
    let cp: ControlPlane | undefined;
    let buildCgroupExisted = true;
    let fixture: BusyboxImage;
    const log = narrator('h14');

    // BERTH_FROM_SOURCE: the sources of this checkout, whatever state a dist/ bundle is in.
    const berth = (args: readonly string[], timeoutMs = 180_000): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp!.server.kubeconfigPath, ...args], { timeoutMs, env: { GREETING: 'compose', BERTH_FROM_SOURCE: '1' } });
    /** `berth compose -p <project> VERB…` in the project's directory (found there as compose.yaml). */
    const composeIn = (project: string) => (args: readonly string[], timeoutMs?: number) =>
      berth(['compose', '-f', join(root, project, 'compose.yaml'), '-p', project, ...args], timeoutMs);
    const get = async (plural: string, name: string) => cp!.request('GET', `${NS}/${plural}/${name}`);
    const projectObjects = async (plural: string, project: string) => (await cp!.request('GET', `${NS}/${plural}?labelSelector=${selector(project)}`)).body.items as { metadata: { name: string } }[];

    /** Writes the project directory: compose.yaml and the build context ./app (Dockerfile under build/). */
    async function writeProject(project: string, yaml: string): Promise<void> {
      const dir = join(root, project);
      await mkdir(join(dir, 'app', 'build'), { recursive: true });
      await writeFile(join(dir, 'app', 'build', 'App.dockerfile'), DOCKERFILE);
      await writeFile(join(dir, 'app', 'message.txt'), `hello from ${project}\n`);
      await writeFile(join(dir, 'compose.yaml'), yaml);
    }

    beforeAll(async () => {
      buildCgroupExisted = existsSync(`${CGROUP_ROOT}/memory/berth-build`);
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-h14-'));
      fixture = await buildBusyboxImage(join(root, 'fixture'));
      cp = await startControlPlane({
        runtime: 'runc',
        controllers: true,
        nodeName: 'h14',
        network: { ...NAMES, defaultNetwork: { name: 'bt14-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(4) },
      });
      await cp.request('POST', `${NS}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.ociArchive } }, tags: ['busybox:latest'] } } });
      await vi.waitFor(async () => expect((await get('images', 'busybox')).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
    }, 90_000);

    afterAll(async () => {
      if (cp) {
        await cp.request('DELETE', `${NS}/images/h14b-extra`).catch(() => {});
        for (const project of PROJECTS) {
          for (const plural of ['containers', 'networks', 'volumes', 'images']) {
            const items = await projectObjects(plural, project).catch(() => []);
            for (const o of items) await cp.request('DELETE', `${NS}/${plural}/${o.metadata.name}`).catch(() => {});
            await vi.waitFor(async () => expect(await projectObjects(plural, project)).toEqual([]), { timeout: 30_000, interval: 200 }).catch(() => {});
          }
        }
        const dataDir = cp.dataDir;
        await cp.stop().catch(() => {});
        await sweepDataDir(dataDir);
      }
      if (root) await sweepDataDir(root);
      sweepTestNetwork(NAMES);
      if (!buildCgroupExisted) await removeCgroup('/berth-build').catch(() => {}); // where the builds' RUN steps ran
    }, 120_000);

    it('up -d builds the service image (context, dockerfile, args, target) and runs it; logs show its output; down --rmi local removes the image', async () => {
      const compose = composeIn('h14');
      await writeProject('h14', composeFile('app', ['sh', '-c', 'cat /message.txt /built.txt; echo ready; exec sleep 3600'], 1));

      log('up -d: the image is built, then the container started');
      const up = await compose(['up', '-d']);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toMatch(/Image h14-app {2}Building[\s\S]*Image h14-app {2}Built[\s\S]*Network h14-default {2}Created[\s\S]*Container h14-app-1 {2}Created/);
      const image = (await get('images', 'h14-app')).body;
      expect(image.status.phase).toBe('Ready');
      expect(image.metadata.labels).toMatchObject({ 'berth.dev/compose-project': 'h14', 'berth.dev/compose-service': 'app' });
      expect(image.spec.source.build).toMatchObject({ dockerfile: 'build/App.dockerfile', buildArgs: { GREETING: 'compose' }, target: 'final' });
      const ctr = (await get('containers', 'h14-app-1')).body;
      expect(ctr.spec.image).toBe(image.spec.tags[0]);
      expect(ctr.spec.imagePullPolicy).toBe('Never');

      log('logs: the COPY and the RUN of the target stage, with the build arg; not the later stage');
      await vi.waitFor(async () => {
        const logs = await compose(['logs']);
        expect(logs.code, logs.stderr).toBe(0);
        expect(logs.stdout).toBe('h14-app-1  | hello from h14\nh14-app-1  | built with compose\nh14-app-1  | ready\n');
      }, { timeout: 20_000, interval: 300 });

      log('up -d again: the unchanged build context is not rebuilt');
      const again = await compose(['up', '-d']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('Image h14-app  Unchanged');
      expect(again.stderr).not.toContain('Built');
      expect((await get('images', 'h14-app')).body.metadata.resourceVersion).toBe(image.metadata.resourceVersion);

      log('down --rmi local: the container, the network and the built image are gone; busybox stays');
      const down = await compose(['down', '--rmi', 'local']);
      expect(down.code, down.stderr).toBe(0);
      expect(down.stderr).toContain('Image h14-app  Removed');
      for (const plural of ['containers', 'networks', 'images']) expect(await projectObjects(plural, 'h14'), plural).toEqual([]);
      expect((await get('images', 'h14-app')).status).toBe(404);
      expect((await get('images', 'busybox')).body.status.phase).toBe('Ready');
    }, 300_000);

    it('up (attached) builds, prints the prefixed output of a service that exits, and returns; down --rmi all also untags the used image', async () => {
      const compose = composeIn('h14b');
      log('an image only this project uses: h14b-extra:1 (the busybox fixture under another tag)');
      await cp!.request('POST', `${NS}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'h14b-extra' }, spec: { source: { import: { path: fixture.ociArchive } }, tags: ['h14b-extra:1'] } } });
      await vi.waitFor(async () => expect((await get('images', 'h14b-extra')).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
      await writeProject('h14b', composeFile('hello', ['sh', '-c', 'cat /message.txt; echo "exiting now"'], 2, '\n  aux:\n    image: h14b-extra:1\n    command: ["true"]'));

      log('up without -d');
      const up = await compose(['up'], 240_000);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toContain('Image h14b-hello  Built');
      expect(up.stdout).toBe('h14b-hello-1  | hello from h14b\nh14b-hello-1  | exiting now\n');
      await vi.waitFor(async () => expect((await get('containers', 'h14b-hello-1')).body.status).toMatchObject({ phase: 'Exited', exitCode: 0 }), { timeout: 10_000, interval: 100 });

      log('down --rmi all: the built image and the used one go; busybox, used by no service, stays');
      const down = await compose(['down', '--rmi', 'all']);
      expect(down.code, down.stderr).toBe(0);
      expect(down.stderr).toContain('Image h14b-extra:1  Removed');
      for (const plural of ['containers', 'networks', 'images']) expect(await projectObjects(plural, 'h14b'), plural).toEqual([]);
      expect((await get('images', 'h14b-extra')).status).toBe(404);
      expect((await get('images', 'busybox')).body.status.phase).toBe('Ready');
    }, 300_000);

    it('logs -f follows a container until it exits', async () => {
      const compose = composeIn('h14c');
      await writeProject('h14c', composeFile('ticker', ['sh', '-c', 'echo start; sleep 6; echo end'], 3));
      const up = await compose(['up', '-d']);
      expect(up.code, up.stderr).toBe(0);

      log('logs -f while the container sleeps');
      let finished = false;
      const following = compose(['logs', '-f']).then((r) => {
        finished = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await get('containers', 'h14c-ticker-1')).body.status.phase).toBe('Running');
      expect(finished).toBe(false);
      const logs = await following;
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toBe('h14c-ticker-1  | start\nh14c-ticker-1  | end\n');
      await vi.waitFor(async () => expect((await get('containers', 'h14c-ticker-1')).body.status).toMatchObject({ phase: 'Exited', exitCode: 0 }), { timeout: 10_000, interval: 100 });

      const down = await compose(['down', '--rmi', 'local']);
      expect(down.code, down.stderr).toBe(0);
      for (const plural of ['containers', 'networks', 'images']) expect(await projectObjects(plural, 'h14c'), plural).toEqual([]);
      expect(networkLeftovers(NAMES).netns).toEqual([]);
      expect(networkLeftovers(NAMES).links.filter((l) => l !== `${NAMES.bridgePrefix}d`)).toEqual([]);
    }, 300_000);
  });
}

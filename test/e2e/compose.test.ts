/**
 * `berth compose` end to end, as root with real runc containers, the CLI run as a child
 * process: a web service (busybox httpd) publishing 127.0.0.1:5171 and serving a named
 * volume, a worker that depends on it being healthy and reaches it by name over a
 * named network; `up -d`, a change of the file (a new env var on the worker), `up -d`
 * again (only the worker is replaced), `ps`, `logs`, `down -v`; afterwards no
 * Container, Volume or Network of the project, and on the host no bridge, netns or
 * port of this run. Only this run's names are used (bt11-*, tables bt11_*, subnets
 * 10.211.N.0/24, host port 5171).
 *
 * Skipped unless running as root with runc, conmon, kubectl, ip and nft.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, httpGet, narrator, networkLeftovers, realContainersMissing, run, sweepDataDir, sweepTestNetwork, testNetwork, type ToolResult } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const missing = realContainersMissing() ?? (spawnSync('nft', ['--version']).status === 0 ? undefined : 'nft is missing');

const { names: NAMES, subnet } = testNetwork('bt11', 211);
const PORT = 5171;
const SELECTOR = encodeURIComponent('berth.dev/compose-project=h11');
const leftovers = () => networkLeftovers(NAMES);
const sweepHost = () => sweepTestNetwork(NAMES);
const get = httpGet;

const composeFile = (workerEnv: Record<string, string>) => `
name: ignored-because-of-p
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo \${GREETING:-hello} from compose > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1:${PORT}:8080"]
    volumes: ["site:/www"]
    networks:
      backend: {aliases: [www]}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]
      interval: 1s
      timeout: 1s
      retries: 3
    restart: always
    stop_grace_period: 1s
  worker:
    image: busybox
    command: ["sh", "-c", "printf 'GET /index.html HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 3 web 8080; exec sleep 3600"]
    environment: ${JSON.stringify(workerEnv)}
    depends_on:
      web: {condition: service_healthy}
    networks: [backend]
    stop_grace_period: 1s
networks:
  backend:
    internal: true
    ipam:
      config: [{subnet: ${subnet(1)}}]
volumes:
  site: {}
`;

if (missing) {
  describe('berth compose end to end', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and nft (${missing})`, () => {});
  });
} else {
  describe('berth compose end to end (real runc, nftables)', () => {
    let root: string;
    let cp: ControlPlane | undefined;
    const log = narrator('h11');
    let file: string;

    const berth = (args: readonly string[]): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp!.server.kubeconfigPath, ...args], { timeoutMs: 180_000, env: { GREETING: 'hi' } });
    const compose = (args: readonly string[]) => berth(['compose', '-f', file, '-p', 'h11', ...args]);
    const ctr = async (name: string) => (await cp!.request('GET', `${NS}/containers/${name}`)).body;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-h11-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      cp = await startControlPlane({
        runtime: 'runc',
        controllers: true,
        nodeName: 'h11',
        network: { ...NAMES, defaultNetwork: { name: 'bt11-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(3) },
      });
      await cp.request('POST', `${NS}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.ociArchive } }, tags: ['busybox:latest'] } } });
      await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/images/busybox`)).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
      await mkdir(join(root, 'proj'));
      file = join(root, 'proj', 'compose.yaml');
    }, 90_000);

    afterAll(async () => {
      if (cp) {
        for (const plural of ['containers', 'networks', 'volumes']) {
          const list = await cp.request('GET', `${NS}/${plural}?labelSelector=${SELECTOR}`).catch(() => undefined);
          for (const o of list?.body?.items ?? []) await cp.request('DELETE', `${NS}/${plural}/${o.metadata.name}`).catch(() => {});
          await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/${plural}?labelSelector=${SELECTOR}`)).body.items).toEqual([]), { timeout: 30_000, interval: 200 }).catch(() => {});
        }
        await cp.stop().catch(() => {});
      }
      if (root) await sweepDataDir(root);
      sweepHost();
    }, 120_000);

    it('brings a project up, updates only what changed, and takes it down with its volume', async () => {
      log('up -d');
      await writeFile(file, composeFile({ ROLE: 'worker' }));
      const up1 = await compose(['up', '-d']);
      expect(up1.stderr).toContain('Container h11-web-1  Healthy');
      expect(up1.code, up1.stderr).toBe(0);
      expect(up1.stderr).toMatch(/Network h11-backend {2}Created[\s\S]*Volume h11-site {2}Created[\s\S]*Container h11-web-1 {2}Created[\s\S]*Container h11-worker-1 {2}Created/);

      log('the web service answers on the published port; the worker reached it by name after it was healthy');
      await vi.waitFor(async () => expect(await get(PORT, '/index.html')).toEqual({ status: 200, body: 'hi from compose\n' }), { timeout: 10_000, interval: 100 });
      const web1 = await ctr('h11-web-1');
      expect(web1.status.health.status).toBe('Healthy');
      expect(web1.metadata.labels).toMatchObject({ 'berth.dev/compose-project': 'h11', 'berth.dev/compose-service': 'web' });
      const worker1 = await ctr('h11-worker-1');
      expect(Date.parse(worker1.status.startedAt)).toBeGreaterThanOrEqual(Date.parse(web1.status.startedAt));
      await vi.waitFor(async () => expect((await compose(['logs', 'worker'])).stdout).toContain('h11-worker-1  | hi from compose'), { timeout: 15_000, interval: 300 });
      const ps = await compose(['ps']);
      expect(ps.code).toBe(0);
      expect(ps.stdout).toMatch(/^NAME +IMAGE +COMMAND +SERVICE +CREATED +STATUS +PORTS\n/);
      expect(ps.stdout).toMatch(/h11-web-1 +busybox .* web .*Up .*127\.0\.0\.1:5171->8080\/tcp/);
      expect(ps.stdout).toMatch(/h11-worker-1 +busybox .* worker /);
      const bridge = (await cp!.request('GET', `${NS}/networks/h11-backend`)).body.status?.bridge as string;
      expect(bridge).toBeTruthy();

      log('up -d again with an unchanged file: nothing is written');
      const same = await compose(['up', '-d']);
      expect(same.code, same.stderr).toBe(0);
      // (the agent may write status meanwhile, e.g. health: compare what compose owns, not resourceVersion)
      const composeEntry = (c: { metadata: { managedFields?: { manager: string }[] } }) => c.metadata.managedFields?.find((m) => m.manager === 'berth-compose');
      for (const before of [web1, worker1]) {
        const now = await ctr(before.metadata.name);
        expect(now.metadata.generation).toBe(before.metadata.generation);
        expect(composeEntry(now)).toEqual(composeEntry(before));
      }

      log('a new env var on the worker: only the worker is replaced');
      await writeFile(file, composeFile({ ROLE: 'worker', EXTRA: 'yes' }));
      const up2 = await compose(['up', '-d']);
      expect(up2.code, up2.stderr).toBe(0);
      expect(up2.stderr).toContain('Container h11-worker-1  Recreated');
      expect(up2.stderr).toContain('Container h11-web-1  Running');
      const web2 = await ctr('h11-web-1');
      expect(web2.metadata.generation).toBe(web1.metadata.generation);
      expect(web2.status.containerID).toBe(web1.status.containerID);
      const worker2 = await ctr('h11-worker-1');
      expect(worker2.metadata.generation).toBe(worker1.metadata.generation + 1);
      expect(worker2.status.containerID).not.toBe(worker1.status.containerID);
      expect(worker2.spec.env).toEqual([{ name: 'ROLE', value: 'worker' }, { name: 'EXTRA', value: 'yes' }]);
      expect(worker2.metadata.managedFields.map((m: { manager: string }) => m.manager)).toContain('berth-compose');

      log('down -v: everything of the project is gone, on the API and on the host');
      const down = await compose(['down', '-v']);
      expect(down.code, down.stderr).toBe(0);
      for (const plural of ['containers', 'networks', 'volumes']) {
        expect((await cp!.request('GET', `${NS}/${plural}?labelSelector=${SELECTOR}`)).body.items, plural).toEqual([]);
      }
      expect(await get(PORT, '/index.html')).toBeInstanceOf(Error);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
      expect(leftovers().netns).toEqual([]);
      expect(leftovers().links.filter((l) => l !== `${NAMES.bridgePrefix}d`)).toEqual([]);
      expect((await compose(['ps', '-a'])).stdout.trim().split('\n')).toHaveLength(1);
    }, 300_000);

    it('refuses a file with a key berth cannot honour, naming it, and writes nothing', async () => {
      const bad = join(root, 'proj', 'bad.yaml');
      await writeFile(bad, 'services:\n  web:\n    image: busybox\n    privileged: true\n');
      const res = await berth(['compose', '-f', bad, '-p', 'h11', 'up', '-d']);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe('berth compose: services.web.privileged: not supported by berth\n');
      expect((await cp!.request('GET', `${NS}/containers?labelSelector=${SELECTOR}`)).body.items).toEqual([]);
      expect(await readFile(bad, 'utf8')).toContain('privileged');
    }, 60_000);
  });
}

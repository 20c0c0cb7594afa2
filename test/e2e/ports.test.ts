/**
 * Published ports end to end, as root with real containers: a busybox `httpd` serves a
 * file from a volume; the host reaches it through the published port on 127.0.0.1; a
 * second container reaches it by name over a user network and one on another network
 * cannot; a host port held by another process is a `PortConflict` (the container is not
 * created); the port is still served after a restart of the server; and nothing is left
 * on the host afterwards. Only this run's names (bt7p-*, tables bt7p_*, subnets
 * 10.207.N.0/24, host ports 5151–5159) are used.
 *
 * Skipped unless running as root with runc, conmon, kubectl, ip and nft.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { httpGet, narrator, realContainersMissing, sweepDataDir, sweepTestNetwork, testNetwork } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const missing = realContainersMissing() ?? (spawnSync('nft', ['--version']).status === 0 ? undefined : 'nft is missing');

const { names: NAMES, subnet } = testNetwork('bt7p', 207);
const PORT = 5151;
const TAKEN_PORT = 5152;
const sweepHost = () => sweepTestNetwork(NAMES);
const get = httpGet;

if (missing) {
  describe('published ports end to end', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and nft (${missing})`, () => {});
  });
} else {
  describe('published ports end to end (real runc, nftables)', () => {
    let root: string;
    let cp: ControlPlane | undefined;
    const log = narrator('e2e-ports');

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-ports-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      cp = await startControlPlane({
        runtime: 'runc',
        controllers: true,
        nodeName: 'ports',
        network: { ...NAMES, defaultNetwork: { name: 'bt7p-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(3) },
      });
      await cp.request('POST', `${NS}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.ociArchive } }, tags: ['busybox:latest'] } } });
      await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/images/busybox`)).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
    }, 60_000);

    afterAll(async () => {
      if (cp) {
        const list = await cp.request('GET', `${NS}/containers`).catch(() => undefined);
        for (const c of list?.body?.items ?? []) await cp.request('DELETE', `${NS}/containers/${c.metadata.name}`).catch(() => {});
        await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/containers`)).body.items).toEqual([]), { timeout: 30_000, interval: 200 }).catch(() => {});
        for (const n of ['front', 'other']) await cp.request('DELETE', `${NS}/networks/${n}`).catch(() => {});
        await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/networks`)).body.items).toEqual([]), { timeout: 20_000, interval: 200 }).catch(() => {});
        await cp.stop().catch(() => {});
      }
      if (root) await sweepDataDir(root);
      sweepHost();
    }, 90_000);

    const create = async (plural: string, obj: Record<string, unknown>) => {
      const res = await cp!.request('POST', `${NS}/${plural}`, { body: obj });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    };
    const container = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name }, spec: { image: 'busybox', stopGracePeriodSeconds: 1, ...spec } });
    const waitPhase = async (name: string, phase: string) => {
      let last: any;
      await vi.waitFor(async () => {
        last = (await cp!.request('GET', `${NS}/containers/${name}`)).body;
        expect(last.status?.phase, JSON.stringify(last.status)).toBe(phase);
      }, { timeout: 30_000, interval: 100 });
      return last;
    };

    it('serves a volume through a published port, by name on a user network, not across networks, and across a server restart', async () => {
      log('networks, a volume and a web server publishing 127.0.0.1:5151');
      await create('networks', { apiVersion: 'berth.dev/v1', kind: 'Network', metadata: { name: 'front' }, spec: { subnet: subnet(1) } });
      await create('networks', { apiVersion: 'berth.dev/v1', kind: 'Network', metadata: { name: 'other' }, spec: { subnet: subnet(2) } });
      await create('containers', container('writer', {
        command: ['sh', '-c', 'mkdir -p /srv/www && echo "hello through a port" > /srv/www/index.html'],
        restartPolicy: 'Never', volumeMounts: [{ name: 'site', mountPath: '/srv' }], networks: [{ name: 'none' }],
      }));
      expect((await waitPhase('writer', 'Exited')).status.exitCode).toBe(0);
      await create('containers', container('web', {
        command: ['httpd', '-f', '-p', '8080', '-h', '/srv/www'],
        volumeMounts: [{ name: 'site', mountPath: '/srv', readOnly: true }],
        networks: [{ name: 'front', aliases: ['www'] }],
        ports: [{ containerPort: 8080, hostPort: PORT }],
      }));
      const web = await waitPhase('web', 'Running');
      expect(web.status.ports).toEqual([expect.objectContaining({ containerPort: 8080, hostPort: PORT, hostIP: '127.0.0.1' })]);

      await vi.waitFor(async () => expect(await get(PORT, '/index.html')).toEqual({ status: 200, body: 'hello through a port\n' }), { timeout: 10_000, interval: 100 });

      log('by name on the same network; not from another network');
      // busybox's nc (its wget resolves names through glibc's NSS, which a static binary lacks)
      const fetch = (host: string) => ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 8080`];
      await create('containers', container('friend', { command: fetch('www'), restartPolicy: 'Never', networks: [{ name: 'front' }] }));
      await create('containers', container('stranger', { command: fetch(web.status.ip), restartPolicy: 'Never', networks: [{ name: 'other' }] }));
      await waitPhase('friend', 'Exited');
      expect((await cp!.request('GET', `${NS}/containers/friend/log`)).text).toContain('hello through a port');
      await waitPhase('stranger', 'Exited');
      expect((await cp!.request('GET', `${NS}/containers/stranger/log`)).text).not.toContain('hello through a port');

      log('a host port another process holds: PortConflict, nothing created');
      const holder = net.createServer();
      await new Promise<void>((ok) => holder.listen(TAKEN_PORT, '127.0.0.1', ok));
      try {
        await create('containers', container('clash', { command: ['sleep', '3600'], networks: [{ name: 'front' }], ports: [{ containerPort: 80, hostPort: TAKEN_PORT }] }));
        await vi.waitFor(async () => {
          const c = (await cp!.request('GET', `${NS}/containers/clash`)).body;
          expect(c.status?.phase).toBe('Pending');
          expect(c.status?.conditions?.find((x: any) => x.type === 'PortConflict')).toMatchObject({ status: 'True' });
          expect(c.status?.containerID).toBeUndefined();
        }, { timeout: 15_000, interval: 100 });
      } finally {
        await new Promise<void>((ok) => holder.close(() => ok()));
      }

      log('restart the server: the port keeps working');
      await cp!.restart();
      await waitPhase('web', 'Running');
      await vi.waitFor(async () => expect(await get(PORT, '/index.html')).toEqual({ status: 200, body: 'hello through a port\n' }), { timeout: 15_000, interval: 200 });

      log('stopped: the port closes; running again: it answers');
      const merge = 'application/merge-patch+json';
      await cp!.request('PATCH', `${NS}/containers/web`, { body: { spec: { state: 'Stopped' } }, contentType: merge });
      await waitPhase('web', 'Exited');
      await vi.waitFor(async () => expect(await get(PORT, '/index.html')).toBeInstanceOf(Error), { timeout: 10_000, interval: 100 });
      await cp!.request('PATCH', `${NS}/containers/web`, { body: { spec: { state: 'Running' } }, contentType: merge });
      await waitPhase('web', 'Running');
      await vi.waitFor(async () => expect(await get(PORT, '/index.html')).toEqual({ status: 200, body: 'hello through a port\n' }), { timeout: 15_000, interval: 100 });

      log('delete: the port closes');
      await cp!.request('DELETE', `${NS}/containers/web`);
      await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/containers/web`)).status).toBe(404), { timeout: 20_000, interval: 100 });
      expect(await get(PORT, '/index.html')).toBeInstanceOf(Error);
    }, 180_000);
  });
}

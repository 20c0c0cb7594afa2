/**
 * End to end with real containers (runc under conmon), as root: user networks where
 * containers reach each other by name and alias, isolation between networks, the
 * default network, addresses in status and `kubectl get -o wide`, and a host with no
 * leftover bridge, namespace, veth or nftables table afterwards. Only test names are
 * used on the host (bt8-*, table bt8_*, subnets 10.208.N.0/24); traffic stays inside
 * namespaces the test created.
 *
 * Skipped unless running as root with runc, conmon, kubectl, ip and nft.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ContainerId } from '../../runtime/cri/index.ts';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { kubectlWith, narrator, networkLeftovers, realContainersMissing, sweepDataDir, sweepTestNetwork } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const missing = realContainersMissing() ?? (spawnSync('nft', ['--version']).status === 0 ? undefined : 'nft is missing');

const r = Math.random().toString(16).slice(2, 6);
const N = 10 + Math.floor(Math.random() * 200);
const NAMES = { bridgePrefix: `bt8-${r}`, netnsPrefix: `bt8-${r}-`, vethPrefix: `bt8v${r}`, nftTable: `bt8_${r}`, portsTable: `bt8_ports_${r}` };
const subnet = (i: number) => `10.208.${N + i}.0/24`;

if (missing) {
  describe('networks end to end', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and nft (${missing})`, () => {});
  });
} else {
  describe('networks end to end (real runc, bridges, namespaces, nftables)', () => {
    let root: string;
    let cp: ControlPlane | undefined;
    const log = narrator('e2e-net');

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-net-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = root;
      try {
        cp = await startControlPlane({
          runtime: 'runc',
          controllers: true,
          nodeName: 'h8',
          network: { ...NAMES, defaultNetwork: { name: 'bt8-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(3) },
        });
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      const img = await cp.request('POST', `${NS}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.ociArchive } }, tags: ['busybox:latest'] } } });
      expect(img.status).toBe(201);
      await vi.waitFor(async () => expect((await cp!.request('GET', `${NS}/images/busybox`)).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
    }, 60_000);

    afterAll(async () => {
      if (cp) await cp.stop().catch(() => {});
      if (root) await sweepDataDir(root);
      sweepTestNetwork(NAMES);
      expect(networkLeftovers(NAMES)).toEqual({ netns: [], links: [], tables: [] });
    }, 60_000);

    const create = async (kind: 'networks' | 'containers', obj: Record<string, unknown>) => {
      const res = await cp!.request('POST', `${NS}/${kind}`, { body: { apiVersion: 'berth.dev/v1', kind: kind === 'networks' ? 'Network' : 'Container', ...obj } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    };
    const container = (name: string, command: string[], networks?: unknown[]) =>
      create('containers', { metadata: { name }, spec: { image: 'busybox', command, stopGracePeriodSeconds: 1, ...(networks ? { networks } : {}) } });
    const running = async (name: string): Promise<any> => {
      let last: any;
      await vi.waitFor(
        async () => {
          last = (await cp!.request('GET', `${NS}/containers/${name}`)).body;
          expect(last.status?.phase, JSON.stringify(last.status)).toBe('Running');
          expect(last.status?.ip).toBeTruthy();
        },
        { timeout: 30_000, interval: 100 },
      );
      return last;
    };
    const exec = async (c: any, script: string) => {
      const res = await cp!.server.runtime!.execSync(c.status.containerID as ContainerId, ['sh', '-c', script], 10);
      return { code: res.exitCode, out: `${res.stdout.toString()}${res.stderr.toString()}` };
    };
    const GET = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3`;
    const SLEEP = ['sh', '-c', 'while true; do sleep 1; done'];

    it('containers on a user network reach each other by name and alias; another network cannot', async () => {
      log('create networks front and back');
      await create('networks', { metadata: { name: 'front' }, spec: { subnet: subnet(1) } });
      await create('networks', { metadata: { name: 'back' }, spec: { subnet: subnet(2) } });

      log('web (httpd) and client on front, intruder on back, plain on the default network');
      await container('web', ['sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www'], [{ name: 'front', aliases: ['www'] }]);
      await container('client', SLEEP, [{ name: 'front' }]);
      await container('intruder', SLEEP, [{ name: 'back' }]);
      await container('plain', SLEEP);
      const web = await running('web');
      const client = await running('client');
      const intruder = await running('intruder');
      const plain = await running('plain');
      expect(web.status.networks).toEqual([expect.objectContaining({ name: 'front', ip: web.status.ip, prefixLength: 24, interfaceName: 'eth0' })]);
      expect(web.status.ip.startsWith(subnet(1).slice(0, -4))).toBe(true);
      expect(plain.status.ip.startsWith(subnet(0).slice(0, -4))).toBe(true);
      expect((await cp!.request('GET', `${NS}/networks/front`)).body.status).toMatchObject({ phase: 'Ready', subnet: subnet(1) });

      log('client → web by name and by alias');
      await vi.waitFor(async () => expect((await exec(client, `${GET} web 8080`)).out).toContain('hello-from-web'), { timeout: 10_000, interval: 500 });
      expect((await exec(client, `${GET} www 8080`)).out).toContain('hello-from-web');
      expect((await exec(client, 'cat /etc/resolv.conf')).out).toContain(`nameserver ${web.status.networks[0].gateway}`);

      log('intruder (back) cannot resolve web nor reach its address');
      expect((await exec(intruder, 'nslookup web')).out).not.toContain(web.status.ip);
      expect((await exec(intruder, `${GET} ${web.status.ip} 8080`)).out).not.toContain('hello-from-web');
      expect((await exec(plain, `${GET} ${web.status.ip} 8080`)).out).not.toContain('hello-from-web');

      log('kubectl get containers -o wide shows the address');
      const kubectl = kubectlWith(cp!.server.kubeconfigPath, join(cp!.dataDir, 'kubectl-cache'));
      const wide = await kubectl(['get', 'containers', 'web', '-o', 'wide']);
      expect(wide.code).toBe(0);
      expect(wide.stdout).toContain(web.status.ip);

      log('replace web (new command): the name follows it');
      const patched = await cp!.request('PATCH', `${NS}/containers/web`, { body: { spec: { command: ['sh', '-c', 'mkdir -p /www && echo hello-again > /www/index.html && exec httpd -f -p 8080 -h /www'] } }, contentType: 'application/merge-patch+json' });
      expect(patched.status).toBe(200);
      await vi.waitFor(async () => expect((await exec(client, `${GET} web 8080`)).out).toContain('hello-again'), { timeout: 20_000, interval: 500 });

      log('delete everything; only the default network is left on the host');
      for (const n of ['web', 'client', 'intruder', 'plain']) await cp!.request('DELETE', `${NS}/containers/${n}`);
      for (const n of ['front', 'back']) await cp!.request('DELETE', `${NS}/networks/${n}`);
      await vi.waitFor(
        async () => {
          expect((await cp!.request('GET', `${NS}/containers`)).body.items).toEqual([]);
          expect((await cp!.request('GET', `${NS}/networks`)).body.items).toEqual([]);
        },
        { timeout: 30_000, interval: 100 },
      );
      const left = networkLeftovers(NAMES);
      expect({ netns: left.netns, links: left.links }).toEqual({ netns: [], links: [`${NAMES.bridgePrefix}d`] });
      expect(left.tables).toContain(`inet ${NAMES.nftTable}`);
    }, 120_000);
  });
}

/**
 * Integration tests on the real host: bridges, namespaces, veths, nftables and the DNS
 * servers, with names and subnets only tests use (bt8-*, 10.208.N.0/24). Root only.
 * Traffic is sent only between namespaces the test creates.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import { BridgeNetworkService, type BridgeNetworkServiceOptions } from './bridge-network-service.ts';

const isRoot = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0 && spawnSync('ip', ['-V']).status === 0;
const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

/** Unique names for one test, and a sweep that removes whatever is left with them. */
function testNames(): BridgeNetworkServiceOptions & { sweep(): void; subnet(i: number): string } {
  const r = Math.random().toString(16).slice(2, 6);
  const base = 10 + Math.floor(Math.random() * 200);
  const names = { bridgePrefix: `bt8-${r}`, netnsPrefix: `bt8-${r}-`, vethPrefix: `bt8v${r}`, nftTable: `bt8_${r}` };
  return {
    stateDir: '',
    ...names,
    subnet: (i: number) => `10.208.${base + i}.0/24`,
    sweep() {
      for (const ns of readdirSync('/run/netns', { withFileTypes: false }).filter((n) => String(n).startsWith(names.netnsPrefix))) spawnSync('ip', ['netns', 'del', String(ns)]);
      for (const l of readdirSync('/sys/class/net').filter((n) => n.startsWith(names.bridgePrefix) || n.startsWith(names.vethPrefix))) spawnSync('ip', ['link', 'del', l]);
      spawnSync('nft', ['delete', 'table', 'inet', names.nftTable]);
    },
  };
}

/** Runs busybox in `netns`, asynchronously: the DNS servers answer from this process. */
function inNetns(netns: string, args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, BUSYBOX!, ...args], { timeout: 10_000 });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('close', (status) => resolve({ status, out }));
  });
}

const nsOf = (path: string) => path.split('/').pop()!;

describe.skipIf(!isRoot || !BUSYBOX)('BridgeNetworkService (root, real bridges and namespaces)', () => {
  async function open(): Promise<{ svc: BridgeNetworkService; names: ReturnType<typeof testNames> }> {
    const names = testNames();
    const stateDir = await mkdtemp(join(tmpdir(), 'bt8-net-'));
    const forwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    const svc = await BridgeNetworkService.open({ ...names, stateDir });
    onTestFinished(async () => {
      await svc.close();
      names.sweep();
      writeFileSync('/proc/sys/net/ipv4/ip_forward', forwardBefore);
      await rm(stateDir, { recursive: true, force: true });
    });
    return { svc, names: { ...names, stateDir } };
  }

  it('connects containers on one network, resolves their names, and isolates other networks', async () => {
    const { svc, names } = await open();
    const forwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    const a = await svc.ensureNetwork({ key: 'default/a', subnet: names.subnet(0), outbound: true });
    const b = await svc.ensureNetwork({ key: 'default/b', subnet: names.subnet(1), outbound: false });
    expect(existsSync(`/sys/class/net/${a.bridge}/bridge`)).toBe(true);
    expect(execFileSync('nft', ['list', 'table', 'inet', names.nftTable!], { encoding: 'utf8' })).toContain(`oifname "${b.bridge}" drop`);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe('1');

    const web = await svc.setUpContainerNetwork({ key: 'default/web', uid: 'u1', namespace: 'default', name: 'web', attachments: [{ network: 'default/a', aliases: ['www'] }] });
    const client = await svc.setUpContainerNetwork({ key: 'default/client', uid: 'u2', namespace: 'default', name: 'client', attachments: [{ network: 'default/a' }] });
    const other = await svc.setUpContainerNetwork({ key: 'default/other', uid: 'u3', namespace: 'default', name: 'other', attachments: [{ network: 'default/b' }] });
    expect(web.addresses[0]).toMatchObject({ network: 'default/a', gateway: a.gateway, interfaceName: 'eth0', prefixLength: 24 });
    expect(web.dnsServers).toEqual([a.gateway]);
    expect(execFileSync('ip', ['-n', nsOf(web.netnsPath), 'route'], { encoding: 'utf8' })).toContain(`default via ${a.gateway}`);

    // same network: reachable, by name and alias
    expect((await inNetns(nsOf(client.netnsPath), ['ping', '-c', '1', '-W', '2', web.addresses[0]!.ip])).status).toBe(0);
    expect((await inNetns(nsOf(client.netnsPath), ['nslookup', 'web', a.gateway])).out).toContain(web.addresses[0]!.ip);
    expect((await inNetns(nsOf(client.netnsPath), ['nslookup', 'www', a.gateway])).out).toContain(web.addresses[0]!.ip);
    // other network: neither reachable (forwarding is on: nftables drops it) nor resolvable
    expect((await inNetns(nsOf(other.netnsPath), ['ping', '-c', '1', '-W', '1', web.addresses[0]!.ip])).status).not.toBe(0);
    expect((await inNetns(nsOf(client.netnsPath), ['ping', '-c', '1', '-W', '1', other.addresses[0]!.ip])).status).not.toBe(0);
    expect((await inNetns(nsOf(other.netnsPath), ['nslookup', 'web', b.gateway])).out).not.toContain(web.addresses[0]!.ip);

    const err = await svc.removeNetwork('default/a').catch((e: unknown) => e);
    expect(isRuntimeError(err, 'FailedPrecondition')).toBe(true);

    for (const k of ['default/web', 'default/client', 'default/other']) await svc.tearDownContainerNetwork(k);
    await svc.removeNetwork('default/a');
    await svc.removeNetwork('default/b');
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(names.netnsPrefix!))).toEqual([]);
    expect(readdirSync('/sys/class/net').filter((n) => n.startsWith(names.bridgePrefix!) || n.startsWith(names.vethPrefix!))).toEqual([]);
    expect(spawnSync('nft', ['list', 'table', 'inet', names.nftTable!]).status).not.toBe(0);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(forwardBefore);
  });

  it('keeps a setup and its address across a reopen, and the name follows a rebuilt setup', async () => {
    const { svc, names } = await open();
    await svc.ensureNetwork({ key: 'default/a', subnet: names.subnet(2), outbound: false });
    const first = await svc.setUpContainerNetwork({ key: 'default/web', uid: 'u1', namespace: 'default', name: 'web', attachments: [{ network: 'default/a' }] });
    expect(await svc.setUpContainerNetwork({ key: 'default/web', uid: 'u1', namespace: 'default', name: 'web', attachments: [{ network: 'default/a' }] })).toEqual(first);
    await svc.close();

    const again = await BridgeNetworkService.open({ ...names });
    onTestFinished(() => again.close());
    expect(await again.containerNetwork('default/web')).toEqual(first);
    const client = await again.setUpContainerNetwork({ key: 'default/client', uid: 'u2', namespace: 'default', name: 'client', attachments: [{ network: 'default/a' }] });
    expect(client.addresses[0]!.ip).not.toBe(first.addresses[0]!.ip);
    // replaced object (new uid) with a fixed address: rebuilt, and DNS answers the new address
    const fixed = names.subnet(2).replace('.0/24', '.77');
    const replaced = await again.setUpContainerNetwork({ key: 'default/web', uid: 'u9', namespace: 'default', name: 'web', attachments: [{ network: 'default/a', ipv4Address: fixed }] });
    expect(replaced.addresses[0]!.ip).toBe(fixed);
    expect(existsSync(first.netnsPath)).toBe(false);
    expect((await inNetns(nsOf(client.netnsPath), ['nslookup', 'web', client.addresses[0]!.gateway])).out).toContain(fixed);
  });

  it('repairs on open what a crash left: unknown namespaces and devices, unfinished setups', async () => {
    const { svc, names } = await open();
    await svc.ensureNetwork({ key: 'default/a', subnet: names.subnet(3), outbound: false });
    await svc.close();
    const strayNs = `${names.netnsPrefix}stray`;
    execFileSync('ip', ['netns', 'add', strayNs]);
    execFileSync('ip', ['link', 'add', `${names.vethPrefix}x`, 'type', 'veth', 'peer', 'name', `${names.vethPrefix}y`]);
    const again = await BridgeNetworkService.open({ ...names });
    onTestFinished(() => again.close());
    expect(existsSync(`/run/netns/${strayNs}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${names.vethPrefix}x`)).toBe(false);
    expect((await again.listNetworks()).map((n) => n.key)).toEqual(['default/a']);
  });
});

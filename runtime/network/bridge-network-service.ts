import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type {
  ContainerAddress,
  ContainerNetworkRequest,
  ContainerNetworkSetup,
  NetworkDefinition,
  NetworkInfo,
  NetworkService,
} from '../cri/network-service.ts';
import { readJsonFile, writeFileAtomic } from './atomic-file.ts';
import { overlaps, parseSubnet, toIpString } from './cidr.ts';
import { DnsServer } from './dns-server.ts';
import { ipBatch, runCommand } from './host-command.ts';
import { Ipam } from './ipam.ts';
import { renderRuleset } from './nft-ruleset.ts';

const NETNS_DIR = '/run/netns';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const IFNAMSIZ = 15;

/** Minimal logger (pino's shape). */
export interface NetworkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface BridgeNetworkServiceOptions {
  /** Where state (`state.json`) and address allocations (`ipam.json`) live: `<dataDir>/networks`. */
  readonly stateDir: string;
  /** Prefix of the network namespaces it makes (`ip netns add <prefix><hash>`). Default `berth-`. */
  readonly netnsPrefix?: string;
  /** Prefix of bridge names of networks not in `bridgeNames`. Default `berth-`. */
  readonly bridgePrefix?: string;
  /** Fixed bridge names by network key (the default network's `berth0`). */
  readonly bridgeNames?: Readonly<Record<string, string>>;
  /** Prefix of the host ends of veth pairs. Default `vb-`. */
  readonly vethPrefix?: string;
  /** Name of berth's private nftables table (`inet` family). Default `berth-net`. */
  readonly nftTable?: string;
  /** Port of each network's DNS server on its gateway address. Default 53. */
  readonly dnsPort?: number;
  /** Nameservers for names that are not containers'; default those of the host's /etc/resolv.conf. */
  readonly upstreamNameservers?: readonly string[];
  readonly log?: NetworkLogger;
}

interface NetworkRecord {
  key: string;
  subnet: string;
  gateway: string;
  bridge: string;
  outbound: boolean;
}

interface AttachmentRecord {
  network: string;
  ip: string;
  requestedIp?: string;
  aliases: string[];
  interfaceName: string;
  hostVeth: string;
}

interface ContainerRecord {
  key: string;
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  attachments: AttachmentRecord[];
  /** False until every step of the setup is done: a crash before leaves it to repair. */
  ready: boolean;
}

interface StateFile {
  version: 1;
  networks: Record<string, NetworkRecord>;
  containers: Record<string, ContainerRecord>;
  /** berth set net.ipv4.ip_forward to 1 (it was 0) and must set it back when its last outbound network goes. */
  forwardingEnabledByBerth: boolean;
}

const noLog: NetworkLogger = { info: () => {}, warn: () => {} };

/** The nftables table of container networks (isolation, outbound NAT) unless `nftTable` names another. */
export const DEFAULT_NETWORK_TABLE = 'berth-net';

/**
 * `NetworkService` with Linux bridges, veth pairs and network namespaces made with
 * iproute2 (`ip -batch`), a DNS server per network on its gateway address, and
 * berth's private nftables table for isolation and NAT.
 *
 * Host-wide change: when a network with `outbound` exists, IP forwarding
 * (`net.ipv4.ip_forward`) must be on. If it was off, berth turns it on, records
 * that in its state, and turns it off again when its last outbound network is
 * removed; if it was already on, berth never touches it.
 *
 * Everything it makes on the host is named with its prefixes, so `open` can remove
 * what a crash left behind: namespaces, veths and bridges with its prefixes that the
 * state does not know, and setups that were not finished. Calls are serialised.
 */
export class BridgeNetworkService implements NetworkService {
  private readonly dns = new Map<string, DnsServer>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly log: NetworkLogger;

  private constructor(
    private readonly opts: BridgeNetworkServiceOptions,
    private readonly state: StateFile,
    private readonly ipam: Ipam,
    private readonly upstreams: readonly string[],
  ) {
    this.log = opts.log ?? noLog;
  }

  /**
   * Opens the state under `stateDir` and repairs the host: rebuilds the known networks
   * (after a reboot their bridges are gone), removes unfinished setups and anything
   * with berth's prefixes the state does not know, releases addresses of containers
   * without a setup, and rewrites the nftables table.
   */
  static async open(opts: BridgeNetworkServiceOptions): Promise<BridgeNetworkService> {
    const state = await readJsonFile<StateFile>(join(opts.stateDir, 'state.json'), { version: 1, networks: {}, containers: {}, forwardingEnabledByBerth: false });
    const ipam = await Ipam.open(join(opts.stateDir, 'ipam.json'));
    const upstreams = opts.upstreamNameservers ?? (await hostNameservers());
    const svc = new BridgeNetworkService(opts, state, ipam, upstreams);
    await svc.serial(() => svc.repair());
    return svc;
  }

  /** Stops the DNS servers. Bridges, namespaces and rules stay (containers keep running). */
  async close(): Promise<void> {
    await this.serial(async () => {
      await Promise.all([...this.dns.values()].map((d) => d.close()));
      this.dns.clear();
    });
  }

  ensureNetwork(def: NetworkDefinition): Promise<NetworkInfo> {
    return this.serial(async () => {
      let subnet;
      try {
        subnet = parseSubnet(def.subnet);
      } catch (err) {
        throw new RuntimeError('InvalidArgument', `network ${def.key}: ${(err as Error).message}`);
      }
      const gateway = def.gateway ?? toIpString(subnet.base + 1);
      for (const other of Object.values(this.state.networks)) {
        if (other.key !== def.key && overlaps(parseSubnet(other.subnet), subnet)) {
          throw new RuntimeError('FailedPrecondition', `network ${def.key}: subnet ${def.subnet} overlaps ${other.subnet} of network ${other.key}`);
        }
      }
      const rec: NetworkRecord = { key: def.key, subnet: def.subnet, gateway, bridge: this.bridgeName(def.key), outbound: def.outbound };
      await this.ipam.ensurePool(def.key, def.subnet, gateway);
      const old = this.state.networks[def.key];
      this.state.networks[def.key] = rec;
      await this.save();
      await this.buildNetwork(rec, old);
      await this.applyHostSettings();
      return toInfo(rec);
    });
  }

  removeNetwork(key: string): Promise<void> {
    return this.serial(async () => {
      const rec = this.state.networks[key];
      if (!rec) return;
      const users = Object.values(this.state.containers).filter((c) => c.attachments.some((a) => a.network === key));
      if (users.length) {
        throw new RuntimeError('FailedPrecondition', `network ${key} is in use by ${users.map((c) => c.key).join(', ')}`);
      }
      await this.dns.get(key)?.close();
      this.dns.delete(key);
      await deleteLink(rec.bridge);
      await this.ipam.removePool(key);
      delete this.state.networks[key];
      await this.save();
      await this.applyHostSettings();
    });
  }

  async listNetworks(): Promise<NetworkInfo[]> {
    return Object.values(this.state.networks).map(toInfo);
  }

  setUpContainerNetwork(req: ContainerNetworkRequest): Promise<ContainerNetworkSetup> {
    return this.serial(async () => {
      if (!req.attachments.length) throw new RuntimeError('InvalidArgument', `container ${req.key}: no networks to attach`);
      for (const a of req.attachments) {
        if (!this.state.networks[a.network]) throw new RuntimeError('NotFound', `network ${a.network} does not exist on this node`);
      }
      const have = this.state.containers[req.key];
      if (have && have.ready && have.uid === req.uid && sameAttachments(have, req) && existsSync(join(NETNS_DIR, have.netns))) {
        // Aliases change without rebuilding: DNS reads them from the record.
        have.attachments.forEach((a, i) => (a.aliases = [...(req.attachments[i]!.aliases ?? [])]));
        have.name = req.name;
        await this.save();
        return this.toSetup(have);
      }
      if (have) await this.tearDown(have);

      const netns = `${this.opts.netnsPrefix ?? 'berth-'}${hash(`${req.key}/${req.uid}`, 12)}`;
      const rec: ContainerRecord = { key: req.key, uid: req.uid, namespace: req.namespace, name: req.name, netns, attachments: [], ready: false };
      try {
        for (const [i, a] of req.attachments.entries()) {
          const ip = await this.ipam.allocate(a.network, req.key, a.ipv4Address);
          rec.attachments.push({
            network: a.network,
            ip,
            ...(a.ipv4Address ? { requestedIp: a.ipv4Address } : {}),
            aliases: [...(a.aliases ?? [])],
            interfaceName: `eth${i}`,
            hostVeth: this.vethName(`${req.key}/${req.uid}/${a.network}`),
          });
        }
        this.state.containers[req.key] = rec;
        await this.save();
        await this.buildNamespace(rec);
        rec.ready = true;
        await this.save();
      } catch (err) {
        await this.tearDown(rec).catch((e) => this.log.warn({ err: e, key: req.key }, 'cleanup after a failed network setup failed'));
        throw err;
      }
      this.log.info({ key: req.key, netns, addresses: rec.attachments.map((a) => `${a.network}=${a.ip}`) }, 'container network set up');
      return this.toSetup(rec);
    });
  }

  async containerNetwork(key: string): Promise<ContainerNetworkSetup | undefined> {
    const rec = this.state.containers[key];
    return rec?.ready ? this.toSetup(rec) : undefined;
  }

  tearDownContainerNetwork(key: string): Promise<void> {
    return this.serial(async () => {
      const rec = this.state.containers[key];
      if (rec) await this.tearDown(rec);
    });
  }

  async listContainerNetworks(): Promise<string[]> {
    return Object.keys(this.state.containers);
  }

  /** The host resources it owns now, by kind (for tests and diagnostics). */
  ownedHostResources(): { bridges: string[]; netns: string[]; veths: string[]; nftTable: string } {
    const containers = Object.values(this.state.containers);
    return {
      bridges: Object.values(this.state.networks).map((n) => n.bridge),
      netns: containers.map((c) => c.netns),
      veths: containers.flatMap((c) => c.attachments.map((a) => a.hostVeth)),
      nftTable: this.table,
    };
  }

  private get table(): string {
    return this.opts.nftTable ?? DEFAULT_NETWORK_TABLE;
  }

  private bridgeName(key: string): string {
    const fixed = this.opts.bridgeNames?.[key];
    if (fixed) return fixed;
    const prefix = this.opts.bridgePrefix ?? 'berth-';
    return `${prefix}${hash(key, Math.max(4, IFNAMSIZ - prefix.length))}`.slice(0, IFNAMSIZ);
  }

  private vethName(seed: string): string {
    const prefix = this.opts.vethPrefix ?? 'vb-';
    return `${prefix}${hash(seed, Math.max(4, IFNAMSIZ - prefix.length))}`.slice(0, IFNAMSIZ);
  }

  /** Bridge up with the gateway address, and its DNS server listening there. */
  private async buildNetwork(rec: NetworkRecord, old: NetworkRecord | undefined): Promise<void> {
    const prefixLength = parseSubnet(rec.subnet).prefixLength;
    const cidr = `${rec.gateway}/${prefixLength}`;
    if (!linkExists(rec.bridge)) await ipBatch([`link add ${rec.bridge} type bridge`]);
    const addrs = await linkAddresses(rec.bridge);
    const lines: string[] = [];
    if (!(addrs.length === 1 && addrs[0] === cidr)) {
      lines.push(`addr flush dev ${rec.bridge}`, `addr add ${cidr} dev ${rec.bridge}`);
    }
    lines.push(`link set ${rec.bridge} up`);
    await ipBatch(lines);
    const dns = this.dns.get(rec.key);
    if (dns && old && old.gateway === rec.gateway && old.bridge === rec.bridge) {
      dns.setUpstreams(rec.outbound ? this.upstreams : []);
      return;
    }
    await dns?.close();
    const server = new DnsServer({
      address: rec.gateway,
      port: this.opts.dnsPort ?? 53,
      lookup: (name, sourceIp) => this.lookup(rec.key, name, sourceIp),
      upstreams: rec.outbound ? this.upstreams : [],
    });
    await server.start();
    this.dns.set(rec.key, server);
  }

  /** Namespace, one veth per attachment into its bridge, addresses, routes, loopback. */
  private async buildNamespace(rec: ContainerRecord): Promise<void> {
    if (existsSync(join(NETNS_DIR, rec.netns))) await runCommand('ip', ['netns', 'del', rec.netns]);
    await runCommand('ip', ['netns', 'add', rec.netns]);
    const host: string[] = [];
    const inside: string[] = ['link set lo up'];
    for (const a of rec.attachments) {
      if (linkExists(a.hostVeth)) await deleteLink(a.hostVeth);
      const net = this.state.networks[a.network]!;
      const prefixLength = parseSubnet(net.subnet).prefixLength;
      host.push(`link add ${a.hostVeth} type veth peer name ${a.interfaceName} netns ${rec.netns}`, `link set ${a.hostVeth} master ${net.bridge} up`);
      inside.push(`addr add ${a.ip}/${prefixLength} dev ${a.interfaceName}`, `link set ${a.interfaceName} up`);
    }
    const first = this.state.networks[rec.attachments[0]!.network]!;
    inside.push(`route add default via ${first.gateway}`);
    await ipBatch(host);
    await ipBatch(inside, rec.netns);
  }

  private async tearDown(rec: ContainerRecord): Promise<void> {
    if (existsSync(join(NETNS_DIR, rec.netns))) {
      await runCommand('ip', ['netns', 'del', rec.netns]).catch((err) => {
        if (existsSync(join(NETNS_DIR, rec.netns))) throw err;
      });
    }
    for (const a of rec.attachments) if (linkExists(a.hostVeth)) await deleteLink(a.hostVeth);
    await this.ipam.releaseOwner(rec.key);
    if (this.state.containers[rec.key] === rec || this.state.containers[rec.key]?.netns === rec.netns) {
      delete this.state.containers[rec.key];
      await this.save();
    }
    this.log.info({ key: rec.key, netns: rec.netns }, 'container network torn down');
  }

  /** The addresses of `name` for the container at `sourceIp` on network `key`: its namespace, all its networks, this one first. */
  private lookup(key: string, name: string, sourceIp: string): string[] | undefined {
    const containers = Object.values(this.state.containers).filter((c) => c.ready);
    const asker = containers.find((c) => c.attachments.some((a) => a.network === key && a.ip === sourceIp));
    if (!asker) return undefined;
    const networks = [key, ...asker.attachments.map((a) => a.network).filter((n) => n !== key)];
    for (const net of networks) {
      const ips = containers
        .filter((c) => c.namespace === asker.namespace)
        .flatMap((c) => c.attachments.filter((a) => a.network === net && (c.name.toLowerCase() === name || a.aliases.some((x) => x.toLowerCase() === name))).map((a) => a.ip));
      if (ips.length) return ips;
    }
    return undefined;
  }

  /** nftables table and IP forwarding as the networks need them. */
  private async applyHostSettings(): Promise<void> {
    const networks = Object.values(this.state.networks);
    await runCommand('nft', ['-f', '-'], renderRuleset(this.table, networks));
    const wantForwarding = networks.some((n) => n.outbound);
    const on = (await readFile(IP_FORWARD, 'utf8')).trim() === '1';
    if (wantForwarding && !on) {
      // Host-wide: recorded first, so a crash in between still knows to undo it.
      this.state.forwardingEnabledByBerth = true;
      await this.save();
      await writeFile(IP_FORWARD, '1');
      this.log.warn({}, 'turned on net.ipv4.ip_forward (host-wide) for networks with outbound access; berth turns it off when the last one goes');
    } else if (!wantForwarding && this.state.forwardingEnabledByBerth) {
      if (on) await writeFile(IP_FORWARD, '0');
      this.state.forwardingEnabledByBerth = false;
      await this.save();
      this.log.info({}, 'turned net.ipv4.ip_forward back off: no network with outbound access is left');
    }
  }

  private async repair(): Promise<void> {
    for (const rec of Object.values(this.state.containers)) {
      if (!rec.ready || !existsSync(join(NETNS_DIR, rec.netns)) || rec.attachments.some((a) => !this.state.networks[a.network])) {
        this.log.warn({ key: rec.key, netns: rec.netns }, 'removing an unfinished or broken container network setup');
        await this.tearDown(rec);
      }
    }
    for (const rec of Object.values(this.state.networks)) {
      await this.ipam.ensurePool(rec.key, rec.subnet, rec.gateway);
      await this.buildNetwork(rec, undefined);
    }
    const known = new Set(Object.keys(this.state.containers));
    for (const owner of this.ipam.owners()) if (!known.has(owner)) await this.ipam.releaseOwner(owner);
    for (const key of this.ipam.poolKeys()) if (!this.state.networks[key]) await this.ipam.removePool(key);
    const owned = this.ownedHostResources();
    const netnsPrefix = this.opts.netnsPrefix ?? 'berth-';
    for (const ns of await readdir(NETNS_DIR).catch(() => [] as string[])) {
      if (ns.startsWith(netnsPrefix) && !owned.netns.includes(ns)) {
        this.log.warn({ netns: ns }, 'removing a network namespace left behind');
        await runCommand('ip', ['netns', 'del', ns]).catch((err) => this.log.warn({ err, netns: ns }, 'could not remove a network namespace'));
      }
    }
    const vethPrefix = this.opts.vethPrefix ?? 'vb-';
    const bridgePrefix = this.opts.bridgePrefix ?? 'berth-';
    const fixedBridges = new Set(Object.values(this.opts.bridgeNames ?? {}));
    for (const link of await readdir('/sys/class/net').catch(() => [] as string[])) {
      const strayVeth = link.startsWith(vethPrefix) && !owned.veths.includes(link);
      const isBridge = existsSync(join('/sys/class/net', link, 'bridge'));
      const strayBridge = isBridge && (link.startsWith(bridgePrefix) || fixedBridges.has(link)) && !owned.bridges.includes(link);
      if (strayVeth || strayBridge) {
        this.log.warn({ link }, 'removing a network device left behind');
        await deleteLink(link).catch((err) => this.log.warn({ err, link }, 'could not remove a network device'));
      }
    }
    await this.applyHostSettings();
  }

  private toSetup(rec: ContainerRecord): ContainerNetworkSetup {
    const addresses: ContainerAddress[] = rec.attachments.map((a) => {
      const net = this.state.networks[a.network]!;
      return { network: a.network, ip: a.ip, prefixLength: parseSubnet(net.subnet).prefixLength, gateway: net.gateway, interfaceName: a.interfaceName };
    });
    return { key: rec.key, netnsPath: join(NETNS_DIR, rec.netns), addresses, dnsServers: [addresses[0]!.gateway] };
  }

  private save(): Promise<void> {
    return writeFileAtomic(join(this.opts.stateDir, 'state.json'), `${JSON.stringify(this.state, null, 1)}\n`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

function sameAttachments(have: ContainerRecord, req: ContainerNetworkRequest): boolean {
  return (
    have.attachments.length === req.attachments.length &&
    have.attachments.every((a, i) => {
      const r = req.attachments[i]!;
      return a.network === r.network && (r.ipv4Address === undefined ? a.requestedIp === undefined : r.ipv4Address === a.ip);
    })
  );
}

function toInfo(r: NetworkRecord): NetworkInfo {
  return { key: r.key, subnet: r.subnet, gateway: r.gateway, bridge: r.bridge, outbound: r.outbound };
}

function hash(s: string, n: number): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

function linkExists(name: string): boolean {
  return existsSync(join('/sys/class/net', name));
}

async function deleteLink(name: string): Promise<void> {
  await runCommand('ip', ['link', 'del', name]).catch((err) => {
    if (linkExists(name)) throw err;
  });
}

async function linkAddresses(name: string): Promise<string[]> {
  const { stdout } = await runCommand('ip', ['-j', '-4', 'addr', 'show', 'dev', name]);
  const parsed = JSON.parse(stdout || '[]') as { addr_info?: { local: string; prefixlen: number }[] }[];
  return parsed.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

/** The nameservers of the host's /etc/resolv.conf (the DNS servers run on the host, so loopback ones work too). */
async function hostNameservers(): Promise<string[]> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]!);
}

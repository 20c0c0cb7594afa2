import { readFile, rm, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { RuntimeError } from '../../cri/errors.ts';
import {
  PORT_OWNER_OTHER_PROCESS,
  PortConflictError,
  type PortForwarding,
  type PortMapping,
  type PortProtocol,
  type PortPublication,
  type PortService,
  type PublishedPort,
  type PublishRequest,
} from '../../cri/port-service.ts';
import { readJsonFile, writeFileAtomic } from '../atomic-file.ts';
import { runCommand } from '../host-command.ts';
import { openHostPort, type HostPort } from './host-port.ts';
import { needsRouteLocalnet, renderPortRules } from './nft-port-rules.ts';

/** Minimal logger (pino's shape). */
export interface PortLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PortPublisherOptions {
  /** Where the state (`ports.json`) lives, e.g. `<dataDir>/ports`. */
  readonly stateDir: string;
  /** Name of berth's private nftables table (`ip` family). Default `berth-ports`. */
  readonly table?: string;
  /**
   * `auto` (default): nftables when `nft list tables` works (root, nf_tables loaded),
   * else the in-process proxy. `nftables` or `proxy` force one.
   */
  readonly forwarding?: 'auto' | PortForwarding;
  readonly log?: PortLogger;
}

/** What `recover` did. */
export interface PortRecovery {
  /** Publications forwarded again. */
  readonly publications: readonly PortPublication[];
  /** Keys whose publication was removed because their container is gone. */
  readonly removedKeys: readonly string[];
}

interface StoredPort extends PublishedPort {
  /** The host port was picked by berth (kept when the key publishes again). */
  readonly picked: boolean;
}

interface StoredPublication {
  readonly key: string;
  readonly containerIp: string;
  readonly ports: readonly StoredPort[];
  /** The interface towards the container whose `route_localnet` it needs, if any. */
  readonly localnetInterface?: string;
}

interface StateFile {
  version: 1;
  forwarding: PortForwarding;
  table: string;
  publications: StoredPublication[];
  /** `route_localnet` values berth changed, by interface: the value before, restored when unused. */
  localnetBefore: Record<string, string>;
}

const DEFAULT_HOST_IP = '127.0.0.1';
/** The nftables table of published ports unless `table` names another. */
export const DEFAULT_PORTS_TABLE = 'berth-ports';
const STATE_FILE = 'ports.json';
const routeLocalnetPath = (iface: string): string => `/proc/sys/net/ipv4/conf/${iface}/route_localnet`;
const portId = (p: { hostIP: string; hostPort: number; protocol: PortProtocol }): string => `${p.hostIP}:${p.hostPort}/${p.protocol}`;
const overlaps = (a: PublishedPort, b: PublishedPort): boolean =>
  a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIP === b.hostIP || a.hostIP === '0.0.0.0' || b.hostIP === '0.0.0.0');
const toPublished = ({ picked: _picked, ...p }: StoredPort): PublishedPort => p;

/**
 * Publishes containers' ports on this node (the `PortService` port): DNAT rules in berth's
 * private nftables table `ip <table>`, replaced atomically with one `nft -f -` per change,
 * or an in-process TCP/UDP proxy where nftables is unavailable. Either way the host port is
 * held by a socket of this process, so a taken port is detected by binding it and no
 * other process can take a published port while berth runs.
 *
 * Lifecycle: construct, `recover()` once at start (re-applies what the state holds),
 * then `publish`/`unpublish`; `close()` at shutdown keeps the nftables rules (ports stay
 * reachable while berth restarts; proxied ports go down), `close({ removeAll: true })`
 * removes every rule, the table, the `route_localnet` changes and the state.
 * State: `<stateDir>/ports.json`, written atomically after each change.
 */
export class PortPublisher implements PortService {
  private readonly table: string;
  private readonly stateFile: string;
  private state: StateFile | undefined;
  private forwarding: PortForwarding | undefined;
  /** Sockets holding each key's host ports, by `portId`. */
  private readonly held = new Map<string, Map<string, HostPort>>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: PortPublisherOptions) {
    this.table = options.table ?? DEFAULT_PORTS_TABLE;
    if (!/^[A-Za-z][A-Za-z0-9_-]{0,30}$/.test(this.table)) throw new RuntimeError('InvalidArgument', `bad nftables table name ${JSON.stringify(this.table)}`);
    this.stateFile = join(options.stateDir, STATE_FILE);
  }

  /** How this publisher forwards; resolves after detecting it (`auto`) on first use. */
  async forwardingMode(): Promise<PortForwarding> {
    return this.serial(async () => (await this.load()).forwarding);
  }

  /**
   * Publishes `req.ports` of `key` to `req.containerIp`, replacing the key's previous
   * publication. All or nothing; rejects with `PortConflictError` naming the port and
   * its owner (another key, or `PORT_OWNER_OTHER_PROCESS`).
   */
  async publish(key: string, req: PublishRequest): Promise<PortPublication> {
    const wanted = validate(key, req);
    return this.serial(async () => {
      const state = await this.load();
      const old = state.publications.find((p) => p.key === key);
      const others = state.publications.filter((p) => p.key !== key);
      const oldHeld = this.held.get(key) ?? new Map<string, HostPort>();
      if (old && isUnchanged(old, req.containerIp, wanted) && old.ports.every((p) => oldHeld.has(portId(p)))) return this.toPublication(key);
      const opened = new Map<string, HostPort>();
      const reused = new Map<string, HostPort>();
      const ports: StoredPort[] = [];
      try {
        for (const m of wanted) {
          const keep = m.hostPort === 0 ? old?.ports.find((p) => p.picked && p.containerPort === m.containerPort && p.protocol === m.protocol && p.hostIP === m.hostIP && !ports.some((q) => overlaps(q, p))) : undefined;
          const hostPort = keep?.hostPort ?? m.hostPort;
          const port: PublishedPort = { containerPort: m.containerPort, hostPort, hostIP: m.hostIP, protocol: m.protocol };
          if (hostPort !== 0) {
            const owner = others.find((p) => p.ports.some((q) => overlaps(q, port)));
            if (owner) throw new PortConflictError(port, owner.key);
            if (ports.some((q) => overlaps(q, port))) throw new RuntimeError('InvalidArgument', `host port ${portId(port)} is asked for twice`);
          }
          const existing = hostPort !== 0 ? oldHeld.get(portId(port)) : undefined;
          if (existing && !reused.has(portId(port))) {
            reused.set(portId(port), existing);
            ports.push({ ...port, picked: m.hostPort === 0 });
            continue;
          }
          const h = await this.openPort(port, others, ports);
          opened.set(portId({ ...port, hostPort: h.hostPort }), h);
          ports.push({ ...port, hostPort: h.hostPort, picked: m.hostPort === 0 });
        }
        const next: StoredPublication = { key, containerIp: req.containerIp, ports };
        const publications = [...others, next];
        const localnet = await this.applyForwarding(state, publications, next);
        const nextHeld = new Map([...reused, ...opened]);
        if (state.forwarding === 'proxy') for (const [id, h] of nextHeld) h.setTarget({ ip: req.containerIp, port: ports.find((p) => portId(p) === id)!.containerPort });
        await this.save({ ...this.state!, publications: publications.map((p) => (p.key === key ? { ...next, ...(localnet ? { localnetInterface: localnet } : {}) } : p)) });
        this.held.set(key, nextHeld);
        for (const [id, h] of oldHeld) if (!reused.has(id)) await h.close();
        await this.restoreUnusedLocalnet();
      } catch (err) {
        for (const h of opened.values()) await h.close();
        throw err;
      }
      const result = this.toPublication(key);
      this.options.log?.info({ key, forwarding: result.forwarding, containerIp: req.containerIp, ports: result.ports.map(portId) }, `published ports of ${key} via ${result.forwarding}`);
      return result;
    });
  }

  /** Removes the key's forwarding and frees its host ports. Idempotent. */
  unpublish(key: string): Promise<void> {
    return this.serial(async () => {
      const state = await this.load();
      if (!state.publications.some((p) => p.key === key)) return;
      const publications = state.publications.filter((p) => p.key !== key);
      await this.applyForwarding(state, publications, undefined);
      await this.save({ ...this.state!, publications });
      await this.closeHeld(key);
      await this.restoreUnusedLocalnet();
      this.options.log?.info({ key }, `unpublished ports of ${key}`);
    });
  }

  /** Every key's publication. */
  list(): Promise<PortPublication[]> {
    return this.serial(async () => (await this.load()).publications.map((p) => this.toPublication(p.key)));
  }

  /**
   * Re-applies the stored publications after a restart: holds their host ports again,
   * rewrites the table (dropping rules no publication has), and, when `presentKeys` is
   * given, first removes the publications of keys not in it (containers that are gone).
   * A port another process took meanwhile is logged and left to the rule (nftables) or
   * dropped (proxy).
   */
  recover(options: { readonly presentKeys?: readonly string[] } = {}): Promise<PortRecovery> {
    return this.serial(async () => {
      const state = await this.load();
      const present = options.presentKeys ? new Set(options.presentKeys) : undefined;
      const removedKeys = present ? state.publications.filter((p) => !present.has(p.key)).map((p) => p.key) : [];
      for (const key of removedKeys) await this.closeHeld(key);
      let publications = state.publications.filter((p) => !removedKeys.includes(p.key));
      for (const p of publications) {
        const held = this.held.get(p.key) ?? new Map<string, HostPort>();
        const kept: StoredPort[] = [];
        for (const port of p.ports) {
          if (held.has(portId(port))) {
            kept.push(port);
            continue;
          }
          try {
            const h = await openHostPort(port.hostIP, port.hostPort, port.protocol, state.forwarding === 'proxy' ? { ip: p.containerIp, port: port.containerPort } : undefined);
            held.set(portId(port), h);
            kept.push(port);
          } catch (err) {
            this.options.log?.warn({ key: p.key, port: portId(port), err: (err as Error).message }, `cannot hold published port ${portId(port)} of ${p.key} again`);
            if (state.forwarding === 'nftables') kept.push(port);
          }
        }
        this.held.set(p.key, held);
        if (kept.length !== p.ports.length) publications = publications.map((q) => (q.key === p.key ? { ...q, ports: kept } : q));
      }
      await this.applyForwarding(state, publications, undefined);
      await this.save({ ...this.state!, publications });
      await this.restoreUnusedLocalnet();
      this.options.log?.info({ forwarding: state.forwarding, table: this.table, keys: publications.map((p) => p.key), removedKeys }, `recovered published ports via ${state.forwarding}`);
      return { publications: publications.map((p) => this.toPublication(p.key)), removedKeys };
    });
  }

  /**
   * Closes the held sockets (proxied ports stop answering). With `removeAll`, also
   * removes the table, restores `route_localnet` and deletes the state. Idempotent.
   */
  close(options: { readonly removeAll?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      for (const key of [...this.held.keys()]) await this.closeHeld(key);
      if (!options.removeAll) return;
      const state = await this.load();
      if (state.forwarding === 'nftables') await this.nft(renderPortRules(this.table, [], []));
      await this.save({ ...state, publications: [] });
      await this.restoreUnusedLocalnet();
      await rm(this.stateFile, { force: true });
      this.state = undefined;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<StateFile> {
    if (this.state) return this.state;
    this.forwarding ??= await this.detectForwarding();
    const stored = await readJsonFile<StateFile | undefined>(this.stateFile, undefined);
    if (stored && stored.forwarding === 'nftables' && (this.forwarding !== 'nftables' || stored.table !== this.table)) {
      // The rules of an earlier run would shadow the ports this run holds differently.
      await this.nft(renderPortRules(stored.table, [], [])).catch(() => undefined);
    }
    this.state = { version: 1, publications: [], localnetBefore: {}, ...stored, forwarding: this.forwarding, table: this.table };
    return this.state;
  }

  private async detectForwarding(): Promise<PortForwarding> {
    const asked = this.options.forwarding ?? 'auto';
    if (asked === 'proxy') {
      this.options.log?.info({ forwarding: 'proxy' }, 'published ports use the in-process proxy (forced by configuration)');
      return 'proxy';
    }
    try {
      await runCommand('nft', ['list', 'tables']);
      this.options.log?.info({ forwarding: 'nftables', table: this.table }, `published ports use nftables table ip ${this.table}`);
      return 'nftables';
    } catch (err) {
      if (asked === 'nftables') throw new RuntimeError('Unavailable', `nftables is unavailable: ${(err as Error).message}`, { cause: err });
      this.options.log?.warn({ forwarding: 'proxy', err: (err as Error).message }, 'nftables is unavailable; published ports use the in-process proxy');
      return 'proxy';
    }
  }

  /** Binds the host port, picking a free one for 0 that no other publication uses either. */
  private async openPort(port: PublishedPort, others: readonly StoredPublication[], siblings: readonly PublishedPort[]): Promise<HostPort> {
    for (let attempt = 0; ; attempt++) {
      let h: HostPort;
      try {
        h = await openHostPort(port.hostIP, port.hostPort, port.protocol);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES') throw new PortConflictError(port, PORT_OWNER_OTHER_PROCESS, { cause: err });
        if (code === 'EADDRNOTAVAIL') throw new RuntimeError('InvalidArgument', `hostIP ${port.hostIP} is not an address of this node`, { cause: err });
        throw new RuntimeError('Internal', `cannot bind ${portId(port)}: ${(err as Error).message}`, { cause: err });
      }
      const picked = { ...port, hostPort: h.hostPort };
      const taken = port.hostPort === 0 && [...others.flatMap((p) => p.ports), ...siblings].some((q) => overlaps(q, picked));
      if (!taken) return h;
      await h.close();
      if (attempt >= 20) throw new RuntimeError('Unavailable', `no free host port for ${port.hostIP}/${port.protocol}`);
    }
  }

  /**
   * Makes the kernel forward `publications` (nftables mode): `route_localnet` on the
   * interface towards `changed`'s container when it needs it, then the whole table in one
   * transaction. Returns that interface. A no-op in proxy mode.
   */
  private async applyForwarding(state: StateFile, publications: readonly StoredPublication[], changed: StoredPublication | undefined): Promise<string | undefined> {
    if (state.forwarding !== 'nftables') return undefined;
    let localnet: string | undefined;
    if (changed && needsRouteLocalnet({ ...changed, forwarding: 'nftables' })) {
      localnet = await interfaceTowards(changed.containerIp);
      await this.ensureRouteLocalnet(localnet);
    }
    const ifaces = new Set(publications.map((p) => (p === changed ? localnet : p.localnetInterface)).filter((i): i is string => !!i));
    const views = publications.map((p) => ({ key: p.key, containerIp: p.containerIp, ports: p.ports.map(toPublished), forwarding: 'nftables' as const }));
    await this.nft(renderPortRules(this.table, views, [...ifaces].sort()));
    return localnet;
  }

  private async ensureRouteLocalnet(iface: string): Promise<void> {
    const path = routeLocalnetPath(iface);
    const before = (await readFile(path, 'utf8')).trim();
    if (before === '1') return;
    // Record before writing: a crash in between still restores the old value later.
    const state = this.state!;
    if (!(iface in state.localnetBefore)) await this.save({ ...state, localnetBefore: { ...state.localnetBefore, [iface]: before } });
    await writeFile(path, '1');
    this.options.log?.info({ interface: iface }, `set net.ipv4.conf.${iface}.route_localnet=1 so that 127.0.0.1 reaches published ports`);
  }

  /** Restores `route_localnet` on interfaces no publication needs any more. */
  private async restoreUnusedLocalnet(): Promise<void> {
    const state = this.state!;
    const used = new Set(state.publications.map((p) => p.localnetInterface));
    const restore = Object.entries(state.localnetBefore).filter(([iface]) => !used.has(iface));
    if (!restore.length) return;
    for (const [iface, before] of restore) {
      // The interface may be gone with its container; nothing to restore then.
      await writeFile(routeLocalnetPath(iface), before).catch(() => undefined);
    }
    const localnetBefore = Object.fromEntries(Object.entries(state.localnetBefore).filter(([iface]) => used.has(iface)));
    await this.save({ ...state, localnetBefore });
  }

  private async nft(script: string): Promise<void> {
    await runCommand('nft', ['-f', '-'], script);
  }

  private async save(next: StateFile): Promise<void> {
    await writeFileAtomic(this.stateFile, `${JSON.stringify(next, null, 2)}\n`);
    this.state = next;
  }

  private async closeHeld(key: string): Promise<void> {
    const held = this.held.get(key);
    this.held.delete(key);
    for (const h of held?.values() ?? []) await h.close();
  }

  private toPublication(key: string): PortPublication {
    const p = this.state!.publications.find((q) => q.key === key)!;
    return { key, containerIp: p.containerIp, ports: p.ports.map(toPublished), forwarding: this.state!.forwarding };
  }
}

/** The device the host routes `ip` through (`ip route get`). */
async function interfaceTowards(ip: string): Promise<string> {
  const { stdout } = await runCommand('ip', ['-j', 'route', 'get', ip]);
  const dev = (JSON.parse(stdout) as { dev?: string }[])[0]?.dev;
  if (!dev || dev === 'lo') throw new RuntimeError('InvalidArgument', `container address ${ip} is not reachable through an interface of this node`);
  return dev;
}

/** Whether publishing `wanted` to `containerIp` would leave `old` as it is (picked ports stay picked). */
function isUnchanged(old: StoredPublication, containerIp: string, wanted: readonly WantedPort[]): boolean {
  return (
    old.containerIp === containerIp &&
    old.ports.length === wanted.length &&
    wanted.every((m, i) => {
      const p = old.ports[i]!;
      const samePort = m.hostPort === 0 ? p.picked : !p.picked && p.hostPort === m.hostPort;
      return samePort && p.containerPort === m.containerPort && p.hostIP === m.hostIP && p.protocol === m.protocol;
    })
  );
}

interface WantedPort {
  readonly containerPort: number;
  readonly hostPort: number;
  readonly hostIP: string;
  readonly protocol: PortProtocol;
}

function validate(key: string, req: PublishRequest): WantedPort[] {
  const bad = (msg: string): never => {
    throw new RuntimeError('InvalidArgument', `ports of ${key}: ${msg}`);
  };
  if (!key) bad('empty key');
  if (!isIPv4(req.containerIp)) bad(`containerIp ${JSON.stringify(req.containerIp)} is not an IPv4 address`);
  return req.ports.map((m: PortMapping, i) => {
    const isPort = (n: unknown, min: number): boolean => Number.isInteger(n) && (n as number) >= min && (n as number) <= 65535;
    if (!isPort(m.containerPort, 1)) bad(`ports[${i}].containerPort ${m.containerPort} is not in 1–65535`);
    if (m.hostPort !== undefined && !isPort(m.hostPort, 0)) bad(`ports[${i}].hostPort ${m.hostPort} is not in 0–65535`);
    const hostIP = m.hostIP || DEFAULT_HOST_IP;
    if (!isIPv4(hostIP)) bad(`ports[${i}].hostIP ${JSON.stringify(hostIP)} is not an IPv4 address (IPv6 is not supported)`);
    const protocol = m.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP') bad(`ports[${i}].protocol ${JSON.stringify(protocol)} is not TCP or UDP`);
    return { containerPort: m.containerPort, hostPort: m.hostPort ?? 0, hostIP, protocol };
  });
}

import { RuntimeError } from '../cri/errors.ts';
import { readJsonFile, writeFileAtomic } from './atomic-file.ts';
import { isHostAddress, parseSubnet, toIpNumber, toIpString, type Subnet } from './cidr.ts';

interface PoolState {
  subnet: string;
  gateway: string;
  /** ip → owner */
  allocations: Record<string, string>;
  /** Last address handed out: the next search starts after it, so a released address is not reused at once. */
  last?: string;
}

interface IpamFile {
  version: 1;
  pools: Record<string, PoolState>;
}

/**
 * IPv4 address management for the node's networks: one pool per network, addresses
 * owned by a container key. Every change is written to one JSON file (atomically)
 * before the call resolves, so allocations survive a restart and no address is handed
 * out twice. Addresses are handed out round-robin (the search starts after the last
 * one given), as Podman does, so a released address is not reused at once.
 *
 * Not safe for concurrent calls from several processes; calls within one process are
 * serialised.
 */
export class Ipam {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly state: IpamFile,
  ) {}

  /** Opens (or starts) the allocation file at `path`. */
  static async open(path: string): Promise<Ipam> {
    const state = await readJsonFile<IpamFile>(path, { version: 1, pools: {} });
    return new Ipam(path, state);
  }

  /**
   * Creates the pool of network `key`, or keeps it when the subnet and gateway are
   * the same. A different subnet replaces the pool only when it has no allocations;
   * otherwise rejects with `FailedPrecondition`. The gateway counts as taken.
   */
  ensurePool(key: string, subnet: string, gateway: string): Promise<void> {
    return this.serial(async () => {
      const s = toSubnet(subnet);
      const gw = toAddress(gateway);
      if (!isHostAddress(s, gw)) throw new RuntimeError('InvalidArgument', `gateway ${gateway} is not a host address of ${subnet}`);
      const old = this.state.pools[key];
      if (old && old.subnet === subnet && old.gateway === gateway) return;
      if (old && Object.keys(old.allocations).length) {
        throw new RuntimeError('FailedPrecondition', `network ${key} has ${Object.keys(old.allocations).length} addresses in use in ${old.subnet}; cannot change it to ${subnet} (gateway ${gateway})`);
      }
      this.state.pools[key] = { subnet, gateway, allocations: {} };
      await this.save();
    });
  }

  /** Removes the pool of network `key` and its allocations. Idempotent. */
  removePool(key: string): Promise<void> {
    return this.serial(async () => {
      if (!this.state.pools[key]) return;
      delete this.state.pools[key];
      await this.save();
    });
  }

  /**
   * An address of network `key` for `owner`: the one it already holds, else
   * `requested` if given (rejects with `FailedPrecondition` when another owner holds
   * it, `InvalidArgument` when outside the subnet), else the next free one (rejects
   * with `Unavailable` when none is left).
   */
  allocate(key: string, owner: string, requested?: string): Promise<string> {
    return this.serial(async () => {
      const pool = this.pool(key);
      const s = parseSubnet(pool.subnet);
      const held = Object.entries(pool.allocations).find(([, o]) => o === owner)?.[0];
      if (held && (!requested || requested === held)) return held;
      let ip: string;
      if (requested) {
        const n = toAddress(requested);
        if (!isHostAddress(s, n)) throw new RuntimeError('InvalidArgument', `address ${requested} is not a host address of ${pool.subnet}`);
        if (requested === pool.gateway) throw new RuntimeError('FailedPrecondition', `address ${requested} is the gateway of network ${key}`);
        const by = pool.allocations[requested];
        if (by !== undefined && by !== owner) throw new RuntimeError('FailedPrecondition', `address ${requested} of network ${key} is in use by ${by}`);
        ip = requested;
      } else {
        ip = nextFree(s, pool);
      }
      if (held) delete pool.allocations[held];
      pool.allocations[ip] = owner;
      pool.last = ip;
      await this.save();
      return ip;
    });
  }

  /** Releases every address `owner` holds, in every pool. Idempotent. */
  releaseOwner(owner: string): Promise<void> {
    return this.serial(async () => {
      let changed = false;
      for (const pool of Object.values(this.state.pools)) {
        for (const [ip, o] of Object.entries(pool.allocations)) {
          if (o === owner) {
            delete pool.allocations[ip];
            changed = true;
          }
        }
      }
      if (changed) await this.save();
    });
  }

  /** The allocations of network `key` (ip → owner); empty when there is no such pool. */
  allocations(key: string): Readonly<Record<string, string>> {
    return { ...(this.state.pools[key]?.allocations ?? {}) };
  }

  /** Every owner holding an address anywhere. */
  owners(): Set<string> {
    return new Set(Object.values(this.state.pools).flatMap((p) => Object.values(p.allocations)));
  }

  /** Keys of every pool. */
  poolKeys(): string[] {
    return Object.keys(this.state.pools);
  }

  private pool(key: string): PoolState {
    const pool = this.state.pools[key];
    if (!pool) throw new RuntimeError('NotFound', `network ${key} has no address pool on this node`);
    return pool;
  }

  private save(): Promise<void> {
    return writeFileAtomic(this.path, `${JSON.stringify(this.state, null, 1)}\n`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

function nextFree(s: Subnet, pool: PoolState): string {
  const first = s.base + 1;
  const count = s.size - 2;
  const start = pool.last ? toIpNumber(pool.last) - first + 1 : 0;
  for (let i = 0; i < count; i++) {
    const ip = toIpString(first + ((start + i) % count));
    if (ip !== pool.gateway && pool.allocations[ip] === undefined) return ip;
  }
  throw new RuntimeError('Unavailable', `network subnet ${pool.subnet} has no free address (${count - 1} in use)`);
}

function toSubnet(cidr: string): Subnet {
  try {
    return parseSubnet(cidr);
  } catch (err) {
    throw new RuntimeError('InvalidArgument', (err as Error).message, { cause: err });
  }
}

function toAddress(ip: string): number {
  try {
    return toIpNumber(ip);
  } catch (err) {
    throw new RuntimeError('InvalidArgument', (err as Error).message, { cause: err });
  }
}

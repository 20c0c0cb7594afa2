import { RuntimeError } from '../cri/errors.ts';
import type { ContainerNetworkRequest, ContainerNetworkSetup, NetworkDefinition, NetworkInfo, NetworkService } from '../cri/network-service.ts';

/** The methods of `NetworkService`, as recorded in `calls`. */
export type NetworkMethod = keyof NetworkService;

/**
 * An in-memory `NetworkService` for controller tests: no host changes. Networks get
 * bridge `fake-<n>`; containers get addresses counting up from the subnet's second
 * address and a netns path that does not exist. Keeps the real contracts: attachments
 * to unknown networks are `NotFound`, removing a network in use is `FailedPrecondition`,
 * setups are returned unchanged for the same uid and attachments.
 */
export class FakeNetworkService implements NetworkService {
  readonly calls: NetworkMethod[] = [];
  readonly networks = new Map<string, NetworkInfo>();
  readonly containers = new Map<string, { uid: string; req: ContainerNetworkRequest; setup: ContainerNetworkSetup }>();
  private next = 2;
  private readonly errors = new Map<NetworkMethod, Error[]>();

  /** The next call of `method` rejects with `err`. */
  injectError(method: NetworkMethod, err: Error): void {
    this.errors.set(method, [...(this.errors.get(method) ?? []), err]);
  }

  async ensureNetwork(def: NetworkDefinition): Promise<NetworkInfo> {
    this.record('ensureNetwork');
    const [base, len] = def.subnet.split('/');
    if (!base || !len) throw new RuntimeError('InvalidArgument', `not a subnet: ${def.subnet}`);
    const gateway = def.gateway ?? base.replace(/\.\d+$/, (m) => `.${Number(m.slice(1)) + 1}`);
    const info = { key: def.key, subnet: def.subnet, gateway, bridge: this.networks.get(def.key)?.bridge ?? `fake-${this.networks.size}`, outbound: def.outbound };
    this.networks.set(def.key, info);
    return info;
  }

  async removeNetwork(key: string): Promise<void> {
    this.record('removeNetwork');
    const users = [...this.containers.values()].filter((c) => c.req.attachments.some((a) => a.network === key));
    if (users.length) throw new RuntimeError('FailedPrecondition', `network ${key} is in use by ${users.map((u) => u.req.key).join(', ')}`);
    this.networks.delete(key);
  }

  async listNetworks(): Promise<NetworkInfo[]> {
    this.record('listNetworks');
    return [...this.networks.values()];
  }

  async setUpContainerNetwork(req: ContainerNetworkRequest): Promise<ContainerNetworkSetup> {
    this.record('setUpContainerNetwork');
    const have = this.containers.get(req.key);
    if (have && have.uid === req.uid && JSON.stringify(have.req.attachments) === JSON.stringify(req.attachments)) return have.setup;
    const addresses = req.attachments.map((a, i) => {
      const net = this.networks.get(a.network);
      if (!net) throw new RuntimeError('NotFound', `network ${a.network} does not exist on this node`);
      const ip = a.ipv4Address ?? net.subnet.split('/')[0]!.replace(/\.\d+$/, `.${this.next++}`);
      return { network: a.network, ip, prefixLength: Number(net.subnet.split('/')[1]), gateway: net.gateway, interfaceName: `eth${i}` };
    });
    const setup = { key: req.key, netnsPath: `/run/netns/fake-${req.uid}`, addresses, dnsServers: [addresses[0]!.gateway] };
    this.containers.set(req.key, { uid: req.uid, req, setup });
    return setup;
  }

  async containerNetwork(key: string): Promise<ContainerNetworkSetup | undefined> {
    this.record('containerNetwork');
    return this.containers.get(key)?.setup;
  }

  async tearDownContainerNetwork(key: string): Promise<void> {
    this.record('tearDownContainerNetwork');
    this.containers.delete(key);
  }

  async listContainerNetworks(): Promise<string[]> {
    this.record('listContainerNetworks');
    return [...this.containers.keys()];
  }

  private record(method: NetworkMethod): void {
    this.calls.push(method);
    const err = this.errors.get(method)?.shift();
    if (err) throw err;
  }
}

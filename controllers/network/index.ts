/**
 * The node agent's Network controller: `addNetworkController` wires `NetworkReconciler`
 * to a manager; `sweepContainerNetworks` removes container networks whose Container is gone.
 */
import type { KubeObject } from '../../api/types/index.ts';
import type { NetworkService } from '../../runtime/cri/index.ts';
import { AgentController, runWithManager } from '../container/agent-controller.ts';
import { Container, enqueueSelf, Network, type ApiClient, type Clock, type Controller, type EventRecorder, type Lister, type Logger, type Manager, type SharedInformer } from '../framework/index.ts';
import { NetworkReconciler } from './reconciler.ts';

export { NetworkReconciler, NETWORK_FINALIZER, networkKey, type NetworkReconcilerDeps } from './reconciler.ts';
export { freeSubnet } from './subnet-pool.ts';

/** Name of the controller (logs, metrics, queue). */
export const NETWORK_CONTROLLER = 'network';

export interface NetworkControllerDeps {
  readonly client: ApiClient;
  readonly network: NetworkService;
  readonly nodeName: string;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  /** Range for Networks without `spec.subnet`. Default `10.90.0.0/16`. */
  readonly subnetPool?: string;
  /** Subnets taken besides Networks' own (the node's default network). */
  readonly reservedSubnets?: readonly string[];
  readonly clock?: Clock;
}

/**
 * Adds the Network controller to `manager`: every Network (all namespaces) is built on
 * this node. It is woken by Network changes and by Containers of this node (a Network
 * being deleted waits for them). Starts with the manager, stops with it.
 */
export function addNetworkController(manager: Manager, deps: NetworkControllerDeps): Controller {
  const networks = manager.informer(Network);
  const containers = manager.informer(Container, { fieldSelector: `spec.nodeName=${deps.nodeName}` });
  const controller = new AgentController({
    name: NETWORK_CONTROLLER,
    reconciler: new NetworkReconciler({
      networks,
      containers,
      client: deps.client,
      network: deps.network,
      recorder: deps.recorder,
      ...(deps.subnetPool ? { subnetPool: deps.subnetPool } : {}),
      ...(deps.reservedSubnets ? { reservedSubnets: deps.reservedSubnets } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    }),
    workers: 2,
    log: deps.logger.child({ node: deps.nodeName }),
    metrics: manager.metrics,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ownWrites: { tracker: deps.client.writes, kind: Network, informers: [networks as unknown as SharedInformer<KubeObject>], maxWaitMs: 2_000 },
  });
  controller.watch(networks, enqueueSelf);
  controller.watch(containers, (c) => (c.spec.networks ?? []).map((n) => ({ namespace: c.metadata.namespace ?? '', name: n.name })));
  runWithManager(manager, controller);
  return controller;
}

/**
 * Tears down the container networks of this node whose Container is gone or bound
 * elsewhere: what a crash between a Container's removal and its network's teardown
 * left behind. Call after the manager's caches have synced; resolves with the keys removed.
 */
export async function sweepContainerNetworks(network: NetworkService, containers: Lister<Container>, nodeName: string): Promise<string[]> {
  const removed: string[] = [];
  for (const key of await network.listContainerNetworks()) {
    const [ns = '', name = ''] = key.split('/');
    const c = containers.get(ns, name);
    if (c && c.spec.nodeName === nodeName) continue;
    await network.tearDownContainerNetwork(key);
    removed.push(key);
  }
  return removed;
}

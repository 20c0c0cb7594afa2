/**
 * `NetworkReconciler`: the node agent's reconciler of Network objects. It builds each
 * Network on this node through the `NetworkService` port (bridge, gateway, DNS,
 * isolation and NAT) and reports it: `status.phase`, subnet, gateway, bridge and the
 * conditions Ready, Reconciling and Stalled.
 */
import type { Condition, NetworkStatus } from '../../api/types/index.ts';
import { isRuntimeError, type NetworkService } from '../../runtime/cri/index.ts';
import {
  realClock,
  setCondition,
  TerminalError,
  type ApiClient,
  type Clock,
  type Container,
  type EventRecorder,
  type Lister,
  type Network,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';
import { freeSubnet } from './subnet-pool.ts';

/** Held by a Network until this node has removed it (after its last container). */
export const NETWORK_FINALIZER = 'berth.dev/network';

export interface NetworkReconcilerDeps {
  readonly networks: Lister<Network>;
  /** Containers bound to this node: a Network is removed only once none of them names it. */
  readonly containers: Lister<Container>;
  readonly client: ApiClient;
  readonly network: NetworkService;
  /** Subnets for Networks without `spec.subnet`: a free /24 from this range. Default `10.90.0.0/16`. */
  readonly subnetPool?: string;
  /** Subnets that are taken besides other Networks' (the node's default network). */
  readonly reservedSubnets?: readonly string[];
  readonly recorder?: EventRecorder;
  readonly clock?: Clock;
  /** How often a Network waiting for its containers to go is looked at again. Default 2 s. */
  readonly inUseRetryMs?: number;
}

/** The network key of a Network object (see `NetworkService`). */
export const networkKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * Builds each Network on this node and reports it.
 *
 * Level-triggered: each call reads the Network from the cache and ensures it in the
 * `NetworkService` (idempotent). A Network being deleted stays (finalizer
 * `berth.dev/network`, condition Ready=False/InUse) until no Container of this node
 * names it and its last container network is torn down. A subnet that cannot be used
 * (malformed, overlapping) is `Stalled` (+ `TerminalError`) until the spec changes.
 */
export class NetworkReconciler implements Reconciler {
  constructor(private readonly deps: NetworkReconcilerDeps) {}

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { networks, containers, client, network } = this.deps;
    const call = { signal: ctx.signal };
    const key = networkKey(req.namespace, req.name);
    const want = networks.get(req.namespace, req.name);
    if (!want) {
      await network.removeNetwork(key, call);
      return {};
    }
    if (want.metadata.deletionTimestamp) {
      const users = containers.list(req.namespace).filter((c) => c.spec.networks?.some((n) => n.name === req.name)).map((c) => c.metadata.name);
      if (!users.length) {
        try {
          await network.removeNetwork(key, call);
          await client.removeFinalizer(want, NETWORK_FINALIZER, call);
          return {};
        } catch (err) {
          if (!isRuntimeError(err, 'FailedPrecondition')) throw err;
          users.push(err.message);
        }
      }
      await this.writeStatus(ctx, want, { phase: want.status?.phase ?? 'Pending' }, ['False', 'InUse', `waiting for containers to leave the network: ${users.join(', ')}`]);
      return { requeueAfterMs: this.deps.inUseRetryMs ?? 2_000 };
    }

    const obj = await client.ensureFinalizer(want, NETWORK_FINALIZER, call);
    const subnet = obj.spec?.subnet ?? obj.status?.subnet ?? this.pickSubnet(obj);
    if (!subnet) return this.stall(ctx, obj, 'NoFreeSubnet', `no free /24 left in ${this.deps.subnetPool ?? '10.90.0.0/16'}; set spec.subnet`);
    try {
      const info = await network.ensureNetwork(
        { key, subnet, outbound: obj.spec?.outbound ?? false, ...(obj.spec?.gateway ? { gateway: obj.spec.gateway } : {}) },
        call,
      );
      await this.writeStatus(ctx, obj, { phase: 'Ready', subnet: info.subnet, gateway: info.gateway, bridge: info.bridge }, ['True', 'Ready', `bridge ${info.bridge}, gateway ${info.gateway}`]);
      return {};
    } catch (err) {
      if (isRuntimeError(err, 'InvalidArgument') || isRuntimeError(err, 'FailedPrecondition')) return this.stall(ctx, obj, 'InvalidSubnet', err.message);
      throw err;
    }
  }

  private pickSubnet(obj: Network): string | undefined {
    const taken = [
      ...(this.deps.reservedSubnets ?? []),
      ...this.deps.networks
        .list()
        .filter((n) => n.metadata.uid !== obj.metadata.uid)
        .flatMap((n) => [n.spec?.subnet, n.status?.subnet].filter((s): s is string => !!s)),
    ];
    return freeSubnet(this.deps.subnetPool ?? '10.90.0.0/16', 24, taken);
  }

  private async stall(ctx: ReconcileContext, obj: Network, reason: string, message: string): Promise<never> {
    await this.writeStatus(ctx, obj, { phase: 'Failed' }, ['False', reason, message], true);
    void this.deps.recorder?.warning(obj, reason, message);
    throw new TerminalError(`network ${obj.metadata.namespace}/${obj.metadata.name}: ${message}`);
  }

  private async writeStatus(ctx: ReconcileContext, obj: Network, fields: Partial<NetworkStatus>, ready: [Condition['status'], string, string], stalled = false): Promise<void> {
    const now = (this.deps.clock ?? realClock).nowMs();
    const generation = obj.metadata.generation ?? 0;
    const [status, reason, message] = ready;
    let conditions = setCondition(obj.status?.conditions, { type: 'Ready', status, reason, message, observedGeneration: generation }, now);
    conditions = setCondition(
      conditions,
      status === 'True' || stalled
        ? { type: 'Reconciling', status: 'False', reason: stalled ? reason : 'Converged', message: stalled ? 'waiting for the spec to be fixed' : 'the network is built on this node', observedGeneration: generation }
        : { type: 'Reconciling', status: 'True', reason, message, observedGeneration: generation },
      now,
    );
    conditions = setCondition(conditions, stalled ? { type: 'Stalled', status: 'True', reason, message, observedGeneration: generation } : { type: 'Stalled', status: 'False', reason: 'NotStalled', message: '', observedGeneration: generation }, now);
    const was = obj.status?.phase;
    const written = await this.deps.client.updateStatusIfChanged(obj, { ...obj.status, ...fields, observedGeneration: generation, conditions }, { signal: ctx.signal });
    if (fields.phase === 'Ready' && was !== 'Ready') void this.deps.recorder?.normal(written, 'Ready', message);
  }
}

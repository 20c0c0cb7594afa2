/**
 * `NodeLifecycleReconciler`: the control plane's view of node health, after
 * Kubernetes' node lifecycle controller. A Node whose heartbeat Lease has not been
 * renewed for `gracePeriodMs` gets `Ready=Unknown` (`NodeStatusUnknown`); its agent
 * sets `Ready=True` again once it heartbeats.
 */
import {
  controllerFor,
  findCondition,
  Lease,
  Node,
  realClock,
  setCondition,
  type ApiClient,
  type Clock,
  type ControllerSpec,
  type EventRecorder,
  type Lister,
  type Manager,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';
import { NODE_LEASE_NAMESPACE } from './agent-registration.ts';

/** Reason of the `Ready=Unknown` this controller writes. */
export const REASON_NODE_STATUS_UNKNOWN = 'NodeStatusUnknown';
export const MESSAGE_NODE_STATUS_UNKNOWN = 'berth agent stopped posting node status';
/** Default time without a Lease renewal before a node is marked not ready. */
export const DEFAULT_NODE_GRACE_PERIOD_MS = 40_000;

export interface NodeLifecycleReconcilerDeps {
  readonly nodes: Lister<Node>;
  /** Leases of `berth-system`. */
  readonly leases: Lister<Lease>;
  readonly client: ApiClient;
  readonly events?: EventRecorder;
  readonly clock?: Clock;
  /** Default 40 s. */
  readonly gracePeriodMs?: number;
}

interface Observation {
  readonly renewTime: string;
  readonly atMs: number;
}

/**
 * Marks nodes whose agent went silent. Renewals are timed on this process's clock
 * (when it saw `renewTime` change), not by the agent's timestamps, so clock skew
 * between machines does not matter — and a freshly started controller gives every
 * node a full grace period, as Kubernetes does. Never sets `Ready=True`: only the
 * agent knows that.
 */
export class NodeLifecycleReconciler implements Reconciler {
  private readonly observed = new Map<string, Observation>();
  private readonly clock: Clock;
  private readonly gracePeriodMs: number;

  constructor(private readonly deps: NodeLifecycleReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
    this.gracePeriodMs = deps.gracePeriodMs ?? DEFAULT_NODE_GRACE_PERIOD_MS;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { nodes, leases, client, events } = this.deps;
    const node = nodes.get('', req.name);
    if (!node) {
      this.observed.delete(req.name);
      return {};
    }
    if (node.metadata.deletionTimestamp) return {};

    const now = this.clock.nowMs();
    const renewTime = leases.get(NODE_LEASE_NAMESPACE, req.name)?.spec?.renewTime ?? '';
    let seen = this.observed.get(req.name);
    if (!seen || seen.renewTime !== renewTime) {
      seen = { renewTime, atMs: now };
      this.observed.set(req.name, seen);
    }
    const expiresAtMs = seen.atMs + this.gracePeriodMs;
    if (now < expiresAtMs) return { requeueAfterMs: expiresAtMs - now + 50 };

    const ready = findCondition(node.status?.conditions, 'Ready');
    if (ready?.status === 'Unknown' && ready.reason === REASON_NODE_STATUS_UNKNOWN) return {};
    const generation = node.metadata.generation ?? 0;
    const conditions = setCondition(
      node.status?.conditions,
      { type: 'Ready', status: 'Unknown', reason: REASON_NODE_STATUS_UNKNOWN, message: MESSAGE_NODE_STATUS_UNKNOWN, observedGeneration: generation },
      now,
    );
    const written = await client.updateStatus({ ...node, status: { ...node.status, conditions } }, { signal: ctx.signal });
    ctx.log.info({ silentForMs: now - seen.atMs }, 'node stopped heartbeating; marked Ready=Unknown');
    await events?.warning(written, 'NodeNotReady', `Node ${req.name} status is now: NodeNotReady (${MESSAGE_NODE_STATUS_UNKNOWN})`);
    return {};
  }
}

export interface NodeLifecycleControllerOptions {
  readonly client: ApiClient;
  readonly events?: EventRecorder;
  readonly clock?: Clock;
  /** Default 40 s. */
  readonly gracePeriodMs?: number;
}

/** Declares the node lifecycle controller and adds it to `manager`: Nodes, plus each node's Lease. */
export function addNodeLifecycleController(manager: Manager, opts: NodeLifecycleControllerOptions): ControllerSpec {
  const leaseSelectors = { namespace: NODE_LEASE_NAMESPACE };
  const spec = controllerFor(Node)
    .named('node-lifecycle')
    .watches(Lease, (lease) => (lease.metadata.name ? [{ namespace: '', name: lease.metadata.name }] : []), leaseSelectors)
    .complete(
      new NodeLifecycleReconciler({
        nodes: manager.lister(Node),
        leases: manager.lister(Lease, leaseSelectors),
        client: opts.client,
        ...(opts.events ? { events: opts.events } : {}),
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.gracePeriodMs !== undefined ? { gracePeriodMs: opts.gracePeriodMs } : {}),
      }),
    );
  manager.add(spec);
  return spec;
}

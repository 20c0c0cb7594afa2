/**
 * `SchedulerReconciler`: binds each Container without `spec.nodeName` to a Ready,
 * Active node with room for its resources, and reports the outcome in the
 * Container's `Scheduled` condition (kube-scheduler's PodScheduled).
 */
import {
  Container,
  controllerFor,
  findCondition,
  Node,
  realClock,
  Volume,
  setCondition,
  type ApiClient,
  type Clock,
  type ControllerSettings,
  type ControllerSpec,
  type EventRecorder,
  type Lister,
  type Manager,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';
import { RUNTIME_FINALIZER } from '../container/labels.ts';
import { addRequests, chooseNode, requestOf, type Decision, type NodeLoad, type ResourceRequest } from './fit.ts';
import { volumePlacement } from './volume-affinity.ts';
import { NodeReservations } from './node-reservations.ts';

/** Name of the Container index by `spec.nodeName` ('' for unscheduled) the scheduler adds to the shared informer. */
export const NODE_NAME_INDEX = 'scheduler:spec.nodeName';
export const REASON_SCHEDULED = 'Scheduled';
export const REASON_UNSCHEDULABLE = 'Unschedulable';
/** Default delay before an unschedulable Container is tried again (Node changes retry it sooner). */
export const DEFAULT_UNSCHEDULABLE_RETRY_MS = 10_000;

export interface SchedulerReconcilerDeps {
  /** Containers of all namespaces. */
  readonly containers: Lister<Container>;
  /** What the bound Containers of that cache reserve per node (`NodeReservations.track`). */
  readonly reservations: NodeReservations;
  readonly nodes: Lister<Node>;
  /** Volumes of all namespaces: a Container mounting a placed local Volume may only go to its node. Absent: ignored. */
  readonly volumes?: Lister<Volume>;
  readonly client: ApiClient;
  readonly events?: EventRecorder;
  readonly clock?: Clock;
  readonly unschedulableRetryMs?: number;
}

interface Assumed {
  readonly nodeName: string;
  readonly request: ResourceRequest;
}

/**
 * Schedules one Container per reconcile. The binding is a merge patch of
 * `spec.nodeName`, conditional on the resourceVersion the decision was made from (the
 * API has no binding subresource; the patch bumps `generation`, which the node agent
 * sees as the spec it must run). Then `Scheduled=True` is written to status.
 *
 * Like kube-scheduler it *assumes* each binding at once: until the cache shows the
 * Container bound, its request counts against the chosen node, so reconciles running
 * in parallel (several workers) never overcommit a node. A node that fits nothing
 * yields `Scheduled=False`, reason `Unschedulable`, a message saying why, and a requeue.
 */
export class SchedulerReconciler implements Reconciler {
  private readonly assumed = new Map<string, Assumed>();
  private readonly clock: Clock;

  constructor(private readonly deps: SchedulerReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { containers, client, events } = this.deps;
    const key = `${req.namespace}/${req.name}`;
    const c = containers.get(req.namespace, req.name);
    if (!c || c.metadata.deletionTimestamp) {
      this.assumed.delete(key);
      return {};
    }
    const signal = ctx.signal;
    const now = this.clock.nowMs();
    const generation = c.metadata.generation ?? 0;

    if (c.spec?.nodeName) {
      this.assumed.delete(key);
      // Bound (by us before a failed status write, or by the user after Unschedulable): say so.
      const scheduled = findCondition(c.status?.conditions, 'Scheduled');
      if (scheduled && scheduled.status !== 'True') await client.updateStatus(withScheduled(c, c.spec.nodeName, now), { signal });
      return {};
    }

    const request = requestOf(c);
    const placement = this.deps.volumes ? volumePlacement(c, this.deps.volumes) : { kind: 'any' as const };
    const decision: Decision =
      placement.kind === 'conflict' ? { fits: false, message: placement.message } : chooseNode(this.loads(), request, placement.kind === 'node' ? placement.nodeName : undefined);
    if (!decision.fits) {
      const before = findCondition(c.status?.conditions, 'Scheduled');
      const conditions = setCondition(
        c.status?.conditions,
        { type: 'Scheduled', status: 'False', reason: REASON_UNSCHEDULABLE, message: decision.message, observedGeneration: generation },
        now,
      );
      await client.updateStatusIfChanged(c, { ...c.status, conditions }, { signal });
      if (before?.message !== decision.message) {
        ctx.log.info({ reason: decision.message }, 'container is unschedulable');
        void events?.warning(c, 'FailedScheduling', decision.message);
      }
      return { requeueAfterMs: this.deps.unschedulableRetryMs ?? DEFAULT_UNSCHEDULABLE_RETRY_MS };
    }

    // Reserve before the first await, so a parallel reconcile sees this binding.
    this.assumed.set(key, { nodeName: decision.nodeName, request });
    let bound: Container;
    try {
      // The Scheduled condition first, then the binding: the node agent starts on the Container
      // when it sees spec.nodeName, and then its status writes do not conflict with ours.
      const withCondition = await client.updateStatus(withScheduled(c, decision.nodeName, now), { signal });
      // Binding also adds the node agent's finalizer (conditional on the same resourceVersion):
      // a Container bound to a node is released by that node's agent before it goes, and the
      // agent saves a write on the way to Running.
      const finalizers = withCondition.metadata.finalizers ?? [];
      const metadata = { resourceVersion: withCondition.metadata.resourceVersion, ...(finalizers.includes(RUNTIME_FINALIZER) ? {} : { finalizers: [...finalizers, RUNTIME_FINALIZER] }) };
      bound = await client.patch(Container, req.namespace, req.name, { metadata, spec: { nodeName: decision.nodeName } }, { signal });
    } catch (err) {
      this.assumed.delete(key);
      throw err;
    }
    ctx.log.debug({ node: decision.nodeName }, 'bound container');
    void events?.normal(bound, 'Scheduled', `Successfully assigned ${key} to ${decision.nodeName}`);
    return {};
  }

  /** Every node with what is reserved on it, bound containers plus assumed bindings. */
  private loads(): NodeLoad[] {
    const { containers, nodes, reservations } = this.deps;
    const assumedBy = new Map<string, ResourceRequest[]>();
    for (const [key, a] of this.assumed) {
      const [ns, name] = splitKey(key);
      const cached = containers.get(ns, name);
      if (!cached || cached.metadata.deletionTimestamp || cached.spec?.nodeName) {
        // The cache caught up (or the object went): the index counts it from now on.
        this.assumed.delete(key);
        continue;
      }
      const onNode = assumedBy.get(a.nodeName);
      if (onNode) onNode.push(a.request);
      else assumedBy.set(a.nodeName, [a.request]);
    }
    return nodes.list().map((node) => {
      const name = node.metadata.name ?? '';
      const bound = reservations.of(name);
      let reserved = bound.reserved;
      const pending = assumedBy.get(name) ?? [];
      for (const r of pending) reserved = addRequests(reserved, r);
      return { node, reserved, containers: bound.containers + pending.length };
    });
  }
}

const splitKey = (key: string): [string, string] => {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
};

function withScheduled(c: Container, nodeName: string, nowMs: number): Container {
  const conditions = setCondition(
    c.status?.conditions,
    { type: 'Scheduled', status: 'True', reason: REASON_SCHEDULED, message: `bound to node ${nodeName}`, observedGeneration: c.metadata.generation ?? 0 },
    nowMs,
  );
  return { ...c, status: { ...c.status, conditions } };
}

export interface SchedulerOptions {
  readonly client: ApiClient;
  readonly events?: EventRecorder;
  readonly clock?: Clock;
  /** Default 10 s. */
  readonly unschedulableRetryMs?: number;
  /** Default 16 workers: a bind is two round trips of a few ms each, so throughput is workers / latency; assumed bindings keep parallel decisions consistent. */
  readonly settings?: ControllerSettings;
}

/**
 * Declares the scheduler and adds it to `manager`: it watches all Containers, and
 * Nodes and Volumes (a change retries every unscheduled Container). Adds `NODE_NAME_INDEX`
 * to the manager's shared Container informer.
 */
export function addScheduler(manager: Manager, opts: SchedulerOptions): ControllerSpec {
  const informer = manager.informer(Container);
  informer.addIndexer(NODE_NAME_INDEX, (c) => [c.spec?.nodeName ?? '']);
  // lives as long as the informer, as the index does
  const { reservations } = NodeReservations.track(informer);
  const unscheduled = () => informer.byIndex(NODE_NAME_INDEX, '').map((c) => ({ namespace: c.metadata.namespace ?? '', name: c.metadata.name ?? '' }));
  const spec = controllerFor(Container)
    .named('scheduler')
    .watches(Container, (c) => (c.spec?.nodeName && findCondition(c.status?.conditions, 'Scheduled')?.status !== 'False' ? [] : [{ namespace: c.metadata.namespace ?? '', name: c.metadata.name ?? '' }]))
    .watches(Node, () => unscheduled())
    // a Volume placed on a node changes where the Containers mounting it may go
    .watches(Volume, () => unscheduled())
    .withSettings({ workers: 16, ...(opts.settings ?? {}) })
    .complete(
      new SchedulerReconciler({
        containers: informer,
        reservations,
        nodes: manager.lister(Node),
        volumes: manager.lister(Volume),
        client: opts.client,
        ...(opts.events ? { events: opts.events } : {}),
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.unschedulableRetryMs !== undefined ? { unschedulableRetryMs: opts.unschedulableRetryMs } : {}),
      }),
    );
  manager.add(spec);
  return spec;
}

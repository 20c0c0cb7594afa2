/**
 * `NodeRegistration`: the node agent's side of the Node API, as the kubelet's node
 * status manager and node lease controller. It creates the agent's `Node`, keeps its
 * labels and status (capacity, runtime, addresses, `Ready`) current, and renews the
 * node's heartbeat `Lease` in `berth-system` every `heartbeatIntervalMs`.
 */
import type { NodeStatus } from '../../api/types/index.ts';
import type { RuntimeService } from '../../runtime/cri/index.ts';
import {
  isAlreadyExists,
  isConflict,
  isNotFound,
  Lease,
  Node,
  realClock,
  setCondition,
  silentLogger,
  sleep,
  type ApiClient,
  type Clock,
  type Logger,
} from '../framework/index.ts';
import { ANNOTATION_OS_IMAGE, LABEL_ARCH, LABEL_HOSTNAME, LABEL_OS, readNodeFacts, type NodeFacts, type NodeFactsSources } from './node-facts.ts';

/** Namespace of node heartbeat Leases (one per node, named after it). */
export const NODE_LEASE_NAMESPACE = 'berth-system';
/** Reason of `Ready=True` written by a healthy agent. */
export const REASON_AGENT_READY = 'AgentReady';
/** Reason of `Ready=False` when the runtime does not answer. */
export const REASON_RUNTIME_UNAVAILABLE = 'RuntimeUnavailable';

export interface NodeRegistrationOptions {
  /** The Node's name and the Lease's name and holder. */
  readonly nodeName: string;
  /** `spec.role` when the agent creates its Node; an existing Node's spec is left alone. Default `worker`. */
  readonly role?: 'manager' | 'worker';
  /** berth's version, reported as `status.nodeInfo.agentVersion`. */
  readonly agentVersion: string;
  /** Time between heartbeats (lease renewal, then a status check). Default 10 s. */
  readonly heartbeatIntervalMs?: number;
  /** The Lease's `leaseDurationSeconds`. Default 40. */
  readonly leaseDurationSeconds?: number;
  /** Extra labels to keep on the Node. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Extra annotations to keep on the Node, e.g. where its stream server listens. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** How long `runtime.version()` may take before the runtime counts as unavailable. Default 5 s. */
  readonly runtimeTimeoutMs?: number;
  /** Where machine facts are read; tests only. */
  readonly factsSources?: NodeFactsSources;
}

export interface NodeRegistrationDeps {
  readonly client: ApiClient;
  /** Asked for its version on every heartbeat: the runtime name and version, and whether it works. */
  readonly runtime: Pick<RuntimeService, 'version'>;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** A Lease timestamp: RFC 3339 with microseconds (metav1.MicroTime). */
export const toMicroTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, '000Z');

/**
 * Registers a node and heartbeats for it. `start` runs the first heartbeat and resolves
 * once it has succeeded or failed (failures are logged and retried on the next beat);
 * later beats run in the background until `stop`. Every write is conditional on the
 * resourceVersion read just before; a Conflict is retried at the next beat. Status is
 * written only when it changed, so a steady node costs one Lease write per beat.
 *
 * The agent owns `status` and the labels it sets; it never changes an existing
 * Node's `spec` (an operator's `availability: Drain` stays).
 */
export class NodeRegistration {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly stopper = new AbortController();
  private facts: NodeFacts | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly opts: NodeRegistrationOptions,
    private readonly deps: NodeRegistrationDeps,
  ) {
    this.clock = deps.clock ?? realClock;
    this.log = (deps.log ?? silentLogger).child({ component: 'node-registration', node: opts.nodeName });
  }

  /** Runs the first heartbeat, then keeps beating in the background. Call once. */
  async start(): Promise<void> {
    if (this.loop) throw new Error('node registration already started');
    await this.beatLogged();
    const interval = this.opts.heartbeatIntervalMs ?? 10_000;
    this.loop = (async () => {
      while (await sleep(this.clock, interval, this.stopper.signal)) await this.beatLogged();
    })();
  }

  /** Stops heartbeating (the Node and Lease stay; the lifecycle controller notices). Idempotent. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  /** One heartbeat: renew the Lease, then bring the Node's labels and status up to date. Rejects on API errors. */
  async heartbeat(): Promise<void> {
    const signal = this.stopper.signal;
    this.facts ??= await readNodeFacts(this.opts.agentVersion, this.opts.factsSources);
    await this.renewLease(signal);
    await this.ensureNode(this.facts, signal);
  }

  private async beatLogged(): Promise<void> {
    try {
      await this.heartbeat();
    } catch (err) {
      if (this.stopper.signal.aborted) return;
      this.log[isConflict(err) ? 'debug' : 'warn']({ err: String(err) }, 'node heartbeat failed; retrying at the next beat');
    }
  }

  private async renewLease(signal: AbortSignal): Promise<void> {
    const { client } = this.deps;
    const { nodeName } = this.opts;
    const now = toMicroTime(this.clock.nowMs());
    const spec = { holderIdentity: nodeName, leaseDurationSeconds: this.opts.leaseDurationSeconds ?? 40, renewTime: now };
    let lease: Lease;
    try {
      lease = await client.get(Lease, NODE_LEASE_NAMESPACE, nodeName, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await client.create<Lease>(
          { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: nodeName, namespace: NODE_LEASE_NAMESPACE }, spec: { ...spec, acquireTime: now } },
          { signal },
        );
        return;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        lease = await client.get(Lease, NODE_LEASE_NAMESPACE, nodeName, { signal });
      }
    }
    await client.update({ ...lease, spec: { ...lease.spec, ...spec } }, { signal });
  }

  private async ensureNode(facts: NodeFacts, signal: AbortSignal): Promise<void> {
    const { client } = this.deps;
    const { nodeName } = this.opts;
    const labels = {
      [LABEL_HOSTNAME]: facts.hostname,
      [LABEL_OS]: facts.nodeInfo.os ?? process.platform,
      [LABEL_ARCH]: facts.nodeInfo.architecture ?? process.arch,
      ...(this.opts.labels ?? {}),
    };
    const annotations: Record<string, string> = {
      ...(facts.osImage ? { [ANNOTATION_OS_IMAGE]: facts.osImage } : {}),
      ...(this.opts.annotations ?? {}),
    };
    let node: Node;
    try {
      node = await client.get(Node, '', nodeName, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      node = await client.create<Node>(
        { apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: nodeName, labels, annotations }, spec: { role: this.opts.role ?? 'worker', availability: 'Active' } },
        { signal },
      );
      this.log.info({ role: node.spec?.role }, 'registered node');
    }
    const have = { ...node.metadata.labels, ...node.metadata.annotations };
    if (Object.entries({ ...labels, ...annotations }).some(([k, v]) => have[k] !== v)) {
      node = await client.update(
        { ...node, metadata: { ...node.metadata, labels: { ...node.metadata.labels, ...labels }, annotations: { ...node.metadata.annotations, ...annotations } } },
        { signal },
      );
    }
    const status = await this.statusFor(node, facts, signal);
    const before = node.status?.conditions?.find((c) => c.type === 'Ready');
    await client.updateStatusIfChanged(node, status, { signal });
    const after = status.conditions?.find((c) => c.type === 'Ready');
    if (before?.status !== after?.status) this.log.info({ ready: after?.status, reason: after?.reason }, 'node Ready changed');
  }

  private async statusFor(node: Node, facts: NodeFacts, signal: AbortSignal): Promise<NodeStatus> {
    const now = this.clock.nowMs();
    const timeout = AbortSignal.timeout(this.opts.runtimeTimeoutMs ?? 5_000);
    let runtime: NodeStatus['runtime'] = node.status?.runtime;
    let ready: { status: 'True' | 'False'; reason: string; message: string };
    try {
      const v = await this.deps.runtime.version({ signal: AbortSignal.any([signal, timeout]) });
      runtime = { name: v.runtimeName, version: v.runtimeVersion };
      ready = { status: 'True', reason: REASON_AGENT_READY, message: 'berth agent is posting ready status' };
    } catch (err) {
      ready = { status: 'False', reason: REASON_RUNTIME_UNAVAILABLE, message: `container runtime is not answering: ${err instanceof Error ? err.message : String(err)}` };
    }
    const generation = node.metadata.generation ?? 0;
    return {
      ...node.status,
      capacity: { ...facts.capacity },
      allocatable: { ...facts.capacity },
      ...(runtime ? { runtime } : {}),
      addresses: facts.addresses.map((a) => ({ ...a })),
      nodeInfo: { ...facts.nodeInfo },
      observedGeneration: generation,
      conditions: setCondition(node.status?.conditions, { type: 'Ready', ...ready, observedGeneration: generation }, now),
    };
  }
}

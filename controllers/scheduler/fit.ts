/**
 * The scheduler's decision, as pure functions: which nodes may take a container,
 * which of them is least loaded, and why none fits. No I/O; the reconciler feeds
 * it cached Nodes and the Containers already bound to them.
 */
import type { Container, Node } from '../framework/index.ts';
import { findCondition } from '../framework/index.ts';
import { toQuantityValue } from '../framework/quantity.ts';

/** What a container asks of a node: its limits, counted as reservations (Swarm's model). 0 = nothing. */
export interface ResourceRequest {
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly pids: number;
}

export const NO_REQUEST: ResourceRequest = { memoryBytes: 0, cpus: 0, pids: 0 };

/** Why a node cannot take a container. `insufficient …` reasons may appear together for one node. */
export type FitFailure = 'not ready' | 'being deleted' | 'paused' | 'drained' | 'insufficient memory' | 'insufficient cpu' | 'insufficient pids' | 'volume node affinity conflict';

/** The resources a container reserves on its node: `spec.resources` memory, cpus and pids. */
export function requestOf(c: Container): ResourceRequest {
  const r = c.spec?.resources;
  return {
    memoryBytes: toQuantityValue(r?.memory) ?? 0,
    cpus: toQuantityValue(r?.cpus) ?? 0,
    pids: r?.pids ?? 0,
  };
}

/** Sum of requests. */
export function addRequests(a: ResourceRequest, b: ResourceRequest): ResourceRequest {
  return { memoryBytes: a.memoryBytes + b.memoryBytes, cpus: a.cpus + b.cpus, pids: a.pids + b.pids };
}

/**
 * Whether a bound container holds its reservation: every one not being deleted whose
 * desired state is not `Stopped` (a stopped container may start again, but then it is
 * its own node's problem, as with `docker start`).
 */
export function isReserving(c: Container): boolean {
  return !c.metadata.deletionTimestamp && c.spec?.state !== 'Stopped';
}

/** A node's `status.allocatable` (or `capacity` when absent) as numbers; a resource not reported is unlimited. */
export function allocatableOf(n: Node): ResourceRequest {
  const a = { ...(n.status?.capacity ?? {}), ...(n.status?.allocatable ?? {}) };
  return {
    memoryBytes: toQuantityValue(a.memory) ?? Infinity,
    cpus: toQuantityValue(a.cpu) ?? Infinity,
    pids: toQuantityValue(a.pids) ?? Infinity,
  };
}

/** A node with what is already reserved on it. */
export interface NodeLoad {
  readonly node: Node;
  readonly reserved: ResourceRequest;
  /** Containers bound to it (reserving or not). */
  readonly containers: number;
}

/** Why `node` cannot take `request` (empty: it fits). */
export function fitFailures(load: NodeLoad, request: ResourceRequest): FitFailure[] {
  const { node, reserved } = load;
  if (node.metadata.deletionTimestamp) return ['being deleted'];
  if (findCondition(node.status?.conditions, 'Ready')?.status !== 'True') return ['not ready'];
  const availability = node.spec?.availability ?? 'Active';
  if (availability === 'Pause') return ['paused'];
  if (availability === 'Drain') return ['drained'];
  const alloc = allocatableOf(node);
  const out: FitFailure[] = [];
  if (request.memoryBytes > 0 && reserved.memoryBytes + request.memoryBytes > alloc.memoryBytes) out.push('insufficient memory');
  if (request.cpus > 0 && reserved.cpus + request.cpus > alloc.cpus + 1e-9) out.push('insufficient cpu');
  if (request.pids > 0 && reserved.pids + request.pids > alloc.pids) out.push('insufficient pids');
  return out;
}

/**
 * How loaded a node would be with `request` added: the larger of its memory and CPU
 * fractions reserved (0 when it reports no finite allocatable). Lower is better.
 */
export function loadScore(load: NodeLoad, request: ResourceRequest): number {
  const alloc = allocatableOf(load.node);
  const frac = (used: number, total: number) => (Number.isFinite(total) && total > 0 ? used / total : 0);
  return Math.max(frac(load.reserved.memoryBytes + request.memoryBytes, alloc.memoryBytes), frac(load.reserved.cpus + request.cpus, alloc.cpus));
}

/** The outcome of scheduling one container. */
export type Decision =
  | { readonly fits: true; readonly nodeName: string }
  | { readonly fits: false; readonly message: string };

/**
 * Picks the node for `request`: among nodes that fit, the least loaded by `loadScore`,
 * then the one with fewest containers, then by name (so the choice is deterministic).
 * With `requiredNode` (the node of the container's local volumes) only that node may fit.
 * When none fits, the message counts the reasons the way kube-scheduler does:
 * `0/3 nodes are available: 1 insufficient memory, 2 not ready.`
 */
export function chooseNode(loads: readonly NodeLoad[], request: ResourceRequest, requiredNode?: string): Decision {
  const fitting: NodeLoad[] = [];
  const reasons = new Map<FitFailure, number>();
  for (const load of loads) {
    const failures: FitFailure[] = requiredNode !== undefined && load.node.metadata.name !== requiredNode ? ['volume node affinity conflict'] : fitFailures(load, request);
    if (failures.length === 0) fitting.push(load);
    for (const f of failures) reasons.set(f, (reasons.get(f) ?? 0) + 1);
  }
  if (fitting.length > 0) {
    const best = fitting
      .map((l) => ({ l, score: loadScore(l, request) }))
      .sort((a, b) => a.score - b.score || a.l.containers - b.l.containers || (a.l.node.metadata.name ?? '').localeCompare(b.l.node.metadata.name ?? ''))[0]!;
    return { fits: true, nodeName: best.l.node.metadata.name ?? '' };
  }
  const detail = [...reasons].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).map(([r, n]) => `${n} ${r}`);
  const message = loads.length === 0 ? '0/0 nodes are available: no nodes registered.' : `0/${loads.length} nodes are available: ${detail.join(', ')}.`;
  return { fits: false, message };
}

/**
 * `NodeReservations`: what the Containers bound to each node reserve, kept as running
 * sums from the Container informer's events (kube-scheduler's cached `NodeInfo`), so a
 * scheduling decision costs O(nodes), not O(bound containers).
 */
import type { Container, SharedInformer } from '../framework/index.ts';
import { isReserving, NO_REQUEST, requestOf, type ResourceRequest } from './fit.ts';

/** What one node has bound: the summed requests of its reserving Containers, and how many Containers (reserving or not). */
export interface NodeReservation {
  readonly reserved: ResourceRequest;
  readonly containers: number;
}

interface Counted {
  readonly nodeName: string;
  /** undefined: bound but not reserving (Stopped or being deleted). */
  readonly request: ResourceRequest | undefined;
}

/** CPU is summed in integer nano-CPUs so that adding and removing many fractions never drifts. */
interface Sum {
  memoryBytes: number;
  nanoCpus: number;
  pids: number;
  containers: number;
}

const NANO = 1e9;

/**
 * The reservations of every node, from the Containers of one informer. `track` keeps
 * them current; `set`/`delete` are what its handlers call (exposed for tests). Holds one
 * entry per bound Container in the cache and one per node with Containers: nothing
 * grows with history. Single-threaded; no locking.
 */
export class NodeReservations {
  private readonly byContainer = new Map<string, Counted>();
  private readonly byNode = new Map<string, Sum>();

  /** Reservations that follow `informer` from now on (and its cached objects at once). Returns them and the unsubscribe. */
  static track(informer: SharedInformer<Container>): { reservations: NodeReservations; stop: () => void } {
    const reservations = new NodeReservations();
    const stop = informer.addEventHandler({
      onAdd: (c) => reservations.set(c),
      onUpdate: (_, c) => reservations.set(c),
      onDelete: (c) => reservations.delete(c),
    });
    return { reservations, stop };
  }

  /** Counts `c` as it is now, replacing what was counted for the same namespace/name. */
  set(c: Container): void {
    const key = keyOfContainer(c);
    this.uncount(key);
    const nodeName = c.spec?.nodeName;
    if (!nodeName) return;
    const counted: Counted = { nodeName, request: isReserving(c) ? requestOf(c) : undefined };
    this.byContainer.set(key, counted);
    this.apply(counted, +1);
  }

  /** Stops counting `c`. */
  delete(c: Container): void {
    this.uncount(keyOfContainer(c));
  }

  /** What `nodeName` has bound (nothing for a node without Containers). */
  of(nodeName: string): NodeReservation {
    const s = this.byNode.get(nodeName);
    if (!s) return { reserved: NO_REQUEST, containers: 0 };
    return { reserved: { memoryBytes: s.memoryBytes, cpus: s.nanoCpus / NANO, pids: s.pids }, containers: s.containers };
  }

  private uncount(key: string): void {
    const prev = this.byContainer.get(key);
    if (!prev) return;
    this.byContainer.delete(key);
    this.apply(prev, -1);
  }

  private apply(c: Counted, sign: 1 | -1): void {
    const s = this.byNode.get(c.nodeName) ?? { memoryBytes: 0, nanoCpus: 0, pids: 0, containers: 0 };
    s.containers += sign;
    if (c.request) {
      s.memoryBytes += sign * c.request.memoryBytes;
      s.nanoCpus += sign * Math.round(c.request.cpus * NANO);
      s.pids += sign * c.request.pids;
    }
    if (s.containers === 0) this.byNode.delete(c.nodeName);
    else this.byNode.set(c.nodeName, s);
  }
}

const keyOfContainer = (c: Container): string => `${c.metadata.namespace ?? ''}/${c.metadata.name ?? ''}`;

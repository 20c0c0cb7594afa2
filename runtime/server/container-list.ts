import type { CallOptions, ContainerFilter, ContainerId, RuntimeContainer } from '../cri/types.ts';
import { toStatus, type ServerContext } from './context.ts';

/** Containers not yet removed that match every part of `filter`, oldest first. */
export async function listContainers(ctx: ServerContext, filter: ContainerFilter = {}, opts?: CallOptions): Promise<RuntimeContainer[]> {
  opts?.signal?.throwIfAborted();
  const out: RuntimeContainer[] = [];
  for (const task of ctx.tasks.values()) {
    if (task.state === 'deleted') continue;
    // labels first: most lists name an owner, and most containers are not its; no status is built for those
    if (!hasLabels(task.record.config.labels ?? {}, filter.labels)) continue;
    const s = toStatus(task);
    if (matchesFilter(s, filter)) {
      const { id, name, imageRef, imageId, state, createdAtMs, labels, annotations } = s;
      out.push({ id, name, imageRef, imageId, state, createdAtMs, labels, annotations });
    }
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
}

/** Whether a container matches a filter: the same ID and state when given, and every given label. */
export function matchesFilter(c: RuntimeContainer, filter: ContainerFilter): boolean {
  if (filter.id !== undefined && c.id !== filter.id) return false;
  if (filter.state !== undefined && c.state !== filter.state) return false;
  return hasLabels(c.labels, filter.labels);
}

function hasLabels(have: Readonly<Record<string, string>>, want: Readonly<Record<string, string>> | undefined): boolean {
  if (want) for (const k in want) if (have[k] !== want[k]) return false;
  return true;
}

/**
 * An index of a runtime's containers by ID, by each label (key and value) and by name,
 * so that listing by labels (the agent lists one Container's runtime containers by its
 * owner labels on every reconcile) reads only the containers carrying those labels,
 * whatever the total.
 *
 * The runtime calls `add` when it records a container and `remove` when it forgets it,
 * with the same name and labels (a container's labels never change). Both are
 * idempotent. IDs come back in the order they were added. Holds only IDs of containers
 * not yet removed: it never grows with history. Single-threaded; no locking.
 */
export class ContainerIndex {
  private readonly byLabel = new Map<string, Set<ContainerId>>();
  private readonly byName = new Map<string, Set<ContainerId>>();
  private readonly all = new Set<ContainerId>();

  add(id: ContainerId, name: string, labels: Readonly<Record<string, string>>): void {
    if (this.all.has(id)) return;
    this.all.add(id);
    addTo(this.byName, name, id);
    for (const k in labels) addTo(this.byLabel, labelKey(k, labels[k]!), id);
  }

  remove(id: ContainerId, name: string, labels: Readonly<Record<string, string>>): void {
    if (!this.all.delete(id)) return;
    removeFrom(this.byName, name, id);
    for (const k in labels) removeFrom(this.byLabel, labelKey(k, labels[k]!), id);
  }

  /**
   * The IDs that may match `filter`: a superset of the matches (the caller still checks
   * each with `matchesFilter`), taken from the smallest set the filter names: its ID,
   * else its rarest label, else every container.
   */
  candidates(filter: ContainerFilter = {}): Iterable<ContainerId> {
    if (filter.id !== undefined) return this.all.has(filter.id) ? [filter.id] : [];
    let best: ReadonlySet<ContainerId> = this.all;
    for (const k in filter.labels ?? {}) {
      const ids = this.byLabel.get(labelKey(k, filter.labels![k]!));
      if (!ids) return [];
      if (ids.size < best.size) best = ids;
    }
    return best;
  }

  /** The IDs of the containers named `name` (a live one blocks a create of the same name). */
  named(name: string): ReadonlySet<ContainerId> {
    return this.byName.get(name) ?? EMPTY;
  }

  /** Number of containers indexed. */
  get size(): number {
    return this.all.size;
  }
}

const EMPTY: ReadonlySet<ContainerId> = new Set();

const labelKey = (k: string, v: string): string => `${k}\u0000${v}`;

function addTo(m: Map<string, Set<ContainerId>>, key: string, id: ContainerId): void {
  const ids = m.get(key);
  if (ids) ids.add(id);
  else m.set(key, new Set([id]));
}

function removeFrom(m: Map<string, Set<ContainerId>>, key: string, id: ContainerId): void {
  const ids = m.get(key);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) m.delete(key);
}

import type { CallOptions, ContainerFilter, RuntimeContainer } from '../cri/types.ts';
import { toStatus, type ServerContext } from './context.ts';

/** Containers not yet removed that match every part of `filter`, oldest first. */
export async function listContainers(ctx: ServerContext, filter: ContainerFilter = {}, opts?: CallOptions): Promise<RuntimeContainer[]> {
  opts?.signal?.throwIfAborted();
  const out: RuntimeContainer[] = [];
  for (const task of ctx.tasks.values()) {
    if (task.state === 'deleted') continue;
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
  for (const [k, v] of Object.entries(filter.labels ?? {})) if (c.labels[k] !== v) return false;
  return true;
}

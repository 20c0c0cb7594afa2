/**
 * Local volumes pin containers: a Container mounting a Volume whose data lives on a node
 * can only run there (kube-scheduler's VolumeBinding / node affinity of local PVs).
 */
import type { Container, Lister, Volume } from '../framework/index.ts';
import { volumeNodeOf } from '../volume/paths.ts';

/** Where `volumeMounts` let a container run: anywhere, on one node, or nowhere (volumes on different nodes). */
export type VolumePlacement =
  | { readonly kind: 'any' }
  | { readonly kind: 'node'; readonly nodeName: string }
  | { readonly kind: 'conflict'; readonly message: string };

/**
 * The placement the Volumes `c` mounts impose: the node of each placed Volume
 * (`status.nodeName`, else `spec.nodeName`); Volumes not yet placed or not yet created
 * impose nothing (they are made on the container's node). Pure over the cache.
 */
export function volumePlacement(c: Container, volumes: Lister<Volume>): VolumePlacement {
  const ns = c.metadata.namespace ?? '';
  const byNode = new Map<string, string[]>();
  for (const name of new Set((c.spec?.volumeMounts ?? []).map((m) => m.name))) {
    const v = volumes.get(ns, name);
    const node = v ? volumeNodeOf(v) : undefined;
    if (node) byNode.set(node, [...(byNode.get(node) ?? []), name]);
  }
  if (byNode.size === 0) return { kind: 'any' };
  if (byNode.size === 1) return { kind: 'node', nodeName: [...byNode.keys()][0]! };
  const where = [...byNode].map(([node, names]) => `${names.map((n) => JSON.stringify(n)).join(', ')} on node ${node}`).join('; ');
  return { kind: 'conflict', message: `the container mounts local volumes that live on different nodes (${where}): it cannot run anywhere` };
}

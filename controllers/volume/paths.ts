/**
 * Where a local volume's data lives on its node, the names berth puts on Volumes, and
 * which node a Volume belongs to.
 */
import { join } from 'node:path';
import type { Container, Volume } from '../framework/index.ts';

/** The Volume finalizer: the owning node's agent removes the data before the object goes. */
export const VOLUME_FINALIZER = 'berth.dev/volume';
/** Label of a Volume the agent created because a Container mounted a name that was not declared (`docker run -v name:/path`). */
export const LABEL_AUTO_CREATED = 'berth.dev/auto-created';
/** Drivers the node agent serves. */
export const SUPPORTED_VOLUME_DRIVERS: readonly string[] = ['local'];

/** `<volumesRoot>/<namespace>/<name>`: the directory berth owns for one Volume (removed with it). */
export const volumeDir = (volumesRoot: string, namespace: string, name: string): string => join(volumesRoot, namespace, name);

/** `<volumesRoot>/<namespace>/<name>/_data`: what containers mount, as Docker's `/var/lib/docker/volumes/<name>/_data`. */
export const volumeDataDir = (volumesRoot: string, namespace: string, name: string): string => join(volumeDir(volumesRoot, namespace, name), '_data');

/** The node the Volume's data lives on: `status.nodeName` once created, else `spec.nodeName`; undefined while unplaced. */
export function volumeNodeOf(v: Volume): string | undefined {
  return v.status?.nodeName || v.spec?.nodeName || undefined;
}

/** The names of the Volumes `c` mounts, without duplicates, in spec order. */
export function volumeNamesOf(c: Container): string[] {
  return [...new Set((c.spec?.volumeMounts ?? []).map((m) => m.name))];
}

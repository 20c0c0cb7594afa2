/**
 * `berth system prune`: deletes stopped Containers, Networks no Container is on,
 * dangling Images (failed ones, or with every tag removed) — with `-a` every Image no
 * Container uses — and with `--volumes` Volumes no Container uses. Asks first unless `-f`.
 */
import type { Container, Image } from '../../api/types/index.ts';
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind, Image as ImageKind, type ResourceKind } from '../../controllers/framework/resource-kind.ts';
import { normalizeReference } from '../../runtime/images/reference.ts';
import type { Connection } from './connection.ts';
import { humanSize } from './format.ts';
import { pruneNetworks } from './networks.ts';
import { confirm, pruneVolumes } from './volumes.ts';
import { waitForObject } from './wait.ts';

/** A Container `system prune` removes: its process is not running, paused or restarting. */
export const isStopped = (c: Container): boolean => c.status?.phase !== 'Running' && c.status?.phase !== 'Paused' && !(c.status?.phase === 'Exited' && c.status.reason === 'BackOff' && c.spec.state !== 'Stopped');

const norm = (ref: string): string => {
  try {
    return normalizeReference(ref);
  } catch {
    return ref;
  }
};

/**
 * The Images `system prune` removes: dangling ones (Failed, or `spec.tags` emptied),
 * and with `all` every Image no Container (of `containers`) names by one of its tags.
 */
export function prunableImages(images: readonly Image[], containers: readonly Container[], all: boolean): Image[] {
  const used = new Set(containers.map((c) => norm(c.spec.image)));
  return images.filter((i) => {
    if (i.status?.phase === 'Failed' || (Array.isArray(i.spec.tags) && i.spec.tags.length === 0)) return true;
    if (!all) return false;
    const tags = i.spec.tags?.length ? i.spec.tags : [`${i.metadata.name!}:latest`];
    return !tags.some((t) => used.has(norm(t))) && !containers.some((c) => c.status?.imageID && c.status.imageID === i.status?.digest);
  });
}

/** The warning `system prune` shows before asking. */
export function pruneWarning(all: boolean, volumes: boolean): string {
  return [
    'WARNING! This will remove:',
    '  - all stopped containers',
    '  - all networks not used by at least one container',
    ...(volumes ? ['  - all volumes not used by at least one container'] : []),
    all ? '  - all images without at least one container associated to them' : '  - all dangling images',
    '',
    'Are you sure you want to continue?',
  ].join('\n');
}

async function deleteAndWait(conn: Connection, kind: ResourceKind, name: string): Promise<void> {
  try {
    await conn.client.delete(kind, conn.namespace, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitForObject(conn, kind, name, (o) => o === undefined, { timeoutMs: 60_000 });
}

export interface SystemPruneFlags {
  readonly all?: boolean;
  readonly volumes?: boolean;
  readonly force?: boolean;
}

/** `system prune [-a] [--volumes] [-f]`: prints what went, in Docker's sections. */
export async function systemPrune(conn: Connection, flags: SystemPruneFlags, out: (s: string) => void): Promise<number> {
  if (!flags.force && !(await confirm(pruneWarning(flags.all ?? false, flags.volumes ?? false)))) return 0;
  const ctrs = (await conn.client.list(ContainerKind, { namespace: conn.namespace })).items;
  const stopped = ctrs.filter(isStopped);
  await Promise.all(stopped.map((c) => deleteAndWait(conn, ContainerKind, c.metadata.name!)));
  const left = ctrs.filter((c) => !stopped.includes(c));
  const networks = await pruneNetworks(conn);
  const volumes = flags.volumes ? await pruneVolumes(conn) : [];
  const imgs = prunableImages((await conn.client.list(ImageKind, { namespace: conn.namespace })).items, left, flags.all ?? false);
  await Promise.all(imgs.map((i) => deleteAndWait(conn, ImageKind, i.metadata.name!)));
  const section = (title: string, items: readonly string[]) => (items.length ? `${title}:\n${items.map((x) => `${x}\n`).join('')}\n` : '');
  out(
    section('Deleted Containers', stopped.map((c) => c.status?.containerID ?? c.metadata.name!)) +
    section('Deleted Networks', networks) +
    section('Deleted Volumes', volumes) +
    section('Deleted Images', imgs.flatMap((i) => [...(i.spec.tags ?? []).map((t) => `untagged: ${t}`), `deleted: ${i.status?.id ?? i.metadata.name!}`])) +
    `Total reclaimed space: ${humanSize(imgs.reduce((n, i) => n + (i.status?.size ?? 0), 0))}\n`,
  );
  return 0;
}

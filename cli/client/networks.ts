/**
 * Docker's `network` verbs over `Network` objects: `create`, `ls`, `inspect`, `rm`,
 * `prune`, `connect`, `disconnect`. Connecting or disconnecting edits the Container's
 * `spec.networks`; the agent then replaces its runtime container (a restart: the
 * process starts again with the new interfaces), as any spec edit does.
 */
import type { Container, Network, NetworkAttachment } from '../../api/types/index.ts';
import { isAlreadyExists, isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind, Network as NetworkKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from './connection.ts';
import { FlagError } from './container-spec.ts';
import { findContainer, startFailure, VerbError } from './containers.ts';
import { renderFormat } from './format.ts';
import { confirm, keyValues } from './volumes.ts';
import { waitForObject } from './wait.ts';

/** The ID Docker shows for a Network: its uid without dashes (12 characters unless `--no-trunc`). */
export const networkId = (n: Network, full = false): string => (n.metadata.uid ?? '').replace(/-/g, '').slice(0, full ? undefined : 12);

/** `docker network ls` fields of one Network. */
export function networkRow(n: Network, full = false): Record<string, unknown> {
  return {
    ID: networkId(n, full),
    Name: n.metadata.name!,
    Driver: n.spec?.driver ?? 'bridge',
    Scope: 'local',
    Subnet: n.status?.subnet ?? n.spec?.subnet ?? '',
    Gateway: n.status?.gateway ?? n.spec?.gateway ?? '',
    Internal: String(!(n.spec?.outbound ?? false)),
    Status: n.status?.phase ?? 'Pending',
    Labels: Object.entries(n.metadata.labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','),
    CreatedAt: n.metadata.creationTimestamp ?? '',
  };
}

const NETWORK_HEADERS = { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', Subnet: 'SUBNET', Gateway: 'GATEWAY', Internal: 'INTERNAL', Status: 'STATUS', Labels: 'LABELS', CreatedAt: 'CREATED AT' };
const NETWORK_DEFAULT = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';

export interface NetworkCreateFlags {
  readonly driver?: string;
  readonly subnet?: string;
  readonly gateway?: string;
  readonly internal?: boolean;
  readonly label?: readonly string[];
}

/**
 * The Network of `network create`. Docker's networks reach the outside unless
 * `--internal`, so `outbound` is true unless `--internal` (berth's own default is false).
 */
export function toNetwork(name: string, namespace: string, flags: NetworkCreateFlags): Network {
  if (flags.driver && flags.driver !== 'bridge') throw new FlagError(`network create -d ${flags.driver}: only the bridge driver is supported`);
  const labels = keyValues('--label', flags.label);
  return {
    apiVersion: 'berth.dev/v1', kind: 'Network',
    metadata: { name, namespace, ...(Object.keys(labels).length ? { labels } : {}) },
    spec: { driver: 'bridge', outbound: !flags.internal, ...(flags.subnet ? { subnet: flags.subnet } : {}), ...(flags.gateway ? { gateway: flags.gateway } : {}) },
  };
}

/** `network create NAME`: prints the new Network's ID. */
export async function networkCreate(conn: Connection, name: string, flags: NetworkCreateFlags, out: (s: string) => void): Promise<number> {
  try {
    const n = await conn.client.create(toNetwork(name, conn.namespace, flags));
    out(`${networkId(n, true)}\n`);
  } catch (err) {
    if (isAlreadyExists(err)) throw new VerbError(`network with name ${name} already exists`);
    throw err;
  }
  return 0;
}

/** `network ls [-q] [--filter] [--format] [--no-trunc]`. Filters: `name=`, `label=`, `id=`, `driver=`. */
export async function networkLs(conn: Connection, flags: { quiet?: boolean; filter?: readonly string[]; format?: string; noTrunc?: boolean }, out: (s: string) => void): Promise<number> {
  const labels: string[] = [];
  const tests: ((n: Network) => boolean)[] = [];
  for (const f of flags.filter ?? []) {
    const eq = f.indexOf('=');
    const [key, value] = eq < 0 ? [f, ''] : [f.slice(0, eq), f.slice(eq + 1)];
    if (key === 'label') labels.push(value);
    else if (key === 'name') tests.push((n) => n.metadata.name!.includes(value));
    else if (key === 'id') tests.push((n) => networkId(n, true).startsWith(value));
    else if (key === 'driver') tests.push((n) => (n.spec?.driver ?? 'bridge') === value);
    else throw new FlagError(`--filter ${key}: not supported (name, label, id, driver)`);
  }
  const list = await conn.client.list(NetworkKind, { namespace: conn.namespace, ...(labels.length ? { labelSelector: labels.join(',') } : {}) });
  const rows = list.items.filter((n) => tests.every((t) => t(n))).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!)).map((n) => networkRow(n, flags.noTrunc ?? false));
  out(flags.quiet ? rows.map((r) => `${r.ID as string}\n`).join('') : renderFormat(flags.format ?? NETWORK_DEFAULT, rows, NETWORK_HEADERS));
  return 0;
}

/** Finds a Network by name or ID prefix. */
export async function findNetwork(conn: Connection, ref: string): Promise<Network> {
  try {
    return await conn.client.get(NetworkKind, conn.namespace, ref);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (/^[0-9a-f]{3,32}$/.test(ref)) {
    const hits = (await conn.client.list(NetworkKind, { namespace: conn.namespace })).items.filter((n) => networkId(n, true).startsWith(ref));
    if (hits.length === 1) return hits[0]!;
  }
  throw new VerbError(`network ${ref} not found`);
}

/** `network inspect [-f TEMPLATE] NAME…`: the objects as stored. */
export async function networkInspect(conn: Connection, refs: readonly string[], format: string | undefined, out: (s: string) => void): Promise<number> {
  const objs: Network[] = [];
  for (const r of refs) objs.push(await findNetwork(conn, r));
  out(format ? renderFormat(format, objs as unknown as Record<string, unknown>[]) : `${JSON.stringify(objs, null, 4)}\n`);
  return 0;
}

/** The Containers attached to a network, by name. */
export const networkUsers = (network: string, containers: readonly Container[]): string[] =>
  containers.filter((c) => (c.spec.networks ?? []).some((a) => a.name === network)).map((c) => c.metadata.name!);

async function deleteNetwork(conn: Connection, name: string): Promise<void> {
  try {
    await conn.client.delete(NetworkKind, conn.namespace, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitForObject(conn, NetworkKind, name, (n) => n === undefined, { timeoutMs: 60_000 });
}

/** `network rm NAME…`: refuses networks that Containers are attached to (as Docker). */
export async function networkRm(conn: Connection, refs: readonly string[], out: (s: string) => void): Promise<number> {
  const ctrs = (await conn.client.list(ContainerKind, { namespace: conn.namespace })).items;
  let failed = 0;
  for (const r of refs) {
    try {
      const n = await findNetwork(conn, r);
      const users = networkUsers(n.metadata.name!, ctrs);
      if (users.length) throw new VerbError(`error while removing network: network ${n.metadata.name!} id ${networkId(n, true)} has active endpoints (${users.join(', ')})`);
      await deleteNetwork(conn, n.metadata.name!);
      out(`${r}\n`);
    } catch (err) {
      if (refs.length === 1) throw err;
      failed++;
      process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Removes every Network no Container is attached to; resolves with their names. */
export async function pruneNetworks(conn: Connection, labelSelector?: string): Promise<string[]> {
  const [nets, ctrs] = await Promise.all([
    conn.client.list(NetworkKind, { namespace: conn.namespace, ...(labelSelector ? { labelSelector } : {}) }),
    conn.client.list(ContainerKind, { namespace: conn.namespace }),
  ]);
  const gone: string[] = [];
  for (const n of nets.items) {
    if (networkUsers(n.metadata.name!, ctrs.items).length) continue;
    await deleteNetwork(conn, n.metadata.name!);
    gone.push(n.metadata.name!);
  }
  return gone;
}

/** `network prune [-f] [--filter label=…]`. */
export async function networkPrune(conn: Connection, flags: { force?: boolean; filter?: readonly string[] }, out: (s: string) => void): Promise<number> {
  const labels = (flags.filter ?? []).map((f) => {
    if (!f.startsWith('label=')) throw new FlagError(`--filter ${f}: only label= is supported`);
    return f.slice('label='.length);
  });
  if (!flags.force && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?'))) return 0;
  const gone = await pruneNetworks(conn, labels.length ? labels.join(',') : undefined);
  if (gone.length) out(`Deleted Networks:\n${gone.map((n) => `${n}\n`).join('')}`);
  return 0;
}

/**
 * `spec.networks` after connecting `network` (with aliases and a fixed address) or,
 * with `attach` undefined, after disconnecting it. Throws `VerbError` for a second
 * connect or a disconnect of a network the container is not on, as Docker does.
 */
export function editAttachments(have: readonly NetworkAttachment[], container: string, network: string, attach: Omit<NetworkAttachment, 'name'> | undefined): NetworkAttachment[] {
  const on = have.some((a) => a.name === network);
  if (attach) {
    if (on) throw new VerbError(`endpoint with name ${container} already exists in network ${network}`);
    return [...have, { name: network, ...attach }];
  }
  if (!on) throw new VerbError(`container ${container} is not connected to network ${network}`);
  return have.filter((a) => a.name !== network);
}

/**
 * `network connect [--alias A] [--ip IP] NET CTR` / `network disconnect NET CTR`: edits
 * the Container's `spec.networks` and waits until the agent observed the edit (the
 * runtime container is replaced, so a running container restarts).
 */
export async function networkConnect(conn: Connection, netRef: string, ctrRef: string, attach: Omit<NetworkAttachment, 'name'> | undefined): Promise<number> {
  const net = await findNetwork(conn, netRef);
  const c = await findContainer(conn, ctrRef);
  const networks = editAttachments(c.spec.networks ?? [], c.metadata.name!, net.metadata.name!, attach);
  const wasUp = c.status?.phase === 'Running' || c.status?.phase === 'Paused';
  const written = await conn.client.patch(ContainerKind, conn.namespace, c.metadata.name!, { spec: { networks }, metadata: { resourceVersion: c.metadata.resourceVersion } });
  const gen = written.metadata.generation ?? 0;
  await waitForObject(conn, ContainerKind, c.metadata.name!, (x) => {
    if (!x) throw new VerbError(`container ${c.metadata.name!} was removed`);
    if ((x.status?.observedGeneration ?? 0) < gen) return false;
    const failed = startFailure(x);
    if (failed) throw new VerbError(failed.message, failed.code);
    return !wasUp || x.status?.phase === 'Running' || x.status?.phase === 'Paused' || x.status?.phase === 'Exited';
  }, { timeoutMs: 120_000 });
  return 0;
}

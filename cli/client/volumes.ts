/**
 * Docker's `volume` verbs over `Volume` objects: `create`, `ls`, `inspect`, `rm`,
 * `prune`. A volume is in use while a Container names it in `spec.volumeMounts`
 * (or the agent reports it in `status.usedBy`); `rm` refuses such a volume without `-f`.
 */
import { randomBytes } from 'node:crypto';
import type { Container, Volume } from '../../api/types/index.ts';
import { isAlreadyExists, isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind, Volume as VolumeKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from './connection.ts';
import { FlagError } from './container-spec.ts';
import { VerbError } from './containers.ts';
import { renderFormat } from './format.ts';
import { waitForObject } from './wait.ts';

/** `KEY=VALUE` flags (`--label`, `--opt`) as a record; throws `FlagError` naming the flag. */
export function keyValues(flag: string, values: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new FlagError(`${flag} ${JSON.stringify(v)}: expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** The Containers that use each volume: named in `spec.volumeMounts`, or in the volume's `status.usedBy`. */
export function volumeUsers(volumes: readonly Volume[], containers: readonly Container[]): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const v of volumes) users.set(v.metadata.name!, [...(v.status?.usedBy ?? [])]);
  for (const c of containers) {
    for (const m of c.spec.volumeMounts ?? []) {
      const list = users.get(m.name);
      if (list && !list.includes(c.metadata.name!)) list.push(c.metadata.name!);
    }
  }
  return users;
}

/** `docker volume ls` fields of one Volume. */
export function volumeRow(v: Volume): Record<string, unknown> {
  return {
    Driver: v.spec?.driver ?? 'local',
    Name: v.metadata.name!,
    Mountpoint: v.status?.mountpoint ?? '',
    Scope: 'local',
    Status: v.status?.phase ?? 'Pending',
    Node: v.status?.nodeName ?? v.spec?.nodeName ?? '',
    Labels: Object.entries(v.metadata.labels ?? {}).map(([k, x]) => `${k}=${x}`).join(','),
    CreatedAt: v.metadata.creationTimestamp ?? '',
  };
}

const VOLUME_HEADERS = { Driver: 'DRIVER', Name: 'VOLUME NAME', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Status: 'STATUS', Node: 'NODE', Labels: 'LABELS', CreatedAt: 'CREATED AT' };
const VOLUME_DEFAULT = 'table {{.Driver}}\t{{.Name}}';

export interface VolumeCreateFlags {
  readonly driver?: string;
  readonly opt?: readonly string[];
  readonly label?: readonly string[];
}

/** `volume create [NAME]`: a Volume (a random 64-hex name when none is given, as Docker); prints its name. */
export async function volumeCreate(conn: Connection, name: string | undefined, flags: VolumeCreateFlags, out: (s: string) => void): Promise<number> {
  const n = name ?? randomBytes(32).toString('hex');
  const labels = keyValues('--label', flags.label);
  const options = keyValues('--opt', flags.opt);
  try {
    await conn.client.create<Volume>({
      apiVersion: 'berth.dev/v1', kind: 'Volume',
      metadata: { name: n, namespace: conn.namespace, ...(Object.keys(labels).length ? { labels } : {}) },
      spec: { driver: flags.driver ?? 'local', ...(Object.keys(options).length ? { options } : {}) },
    });
  } catch (err) {
    // Docker's create is idempotent for an existing volume of the same name.
    if (!isAlreadyExists(err)) throw err;
  }
  out(`${n}\n`);
  return 0;
}

/** `volume ls [-q] [--filter] [--format]`. Filters: `name=`, `label=`, `dangling=true|false`, `driver=`. */
export async function volumeLs(conn: Connection, flags: { quiet?: boolean; filter?: readonly string[]; format?: string }, out: (s: string) => void): Promise<number> {
  const labels: string[] = [];
  const tests: ((v: Volume, used: boolean) => boolean)[] = [];
  for (const f of flags.filter ?? []) {
    const eq = f.indexOf('=');
    const [key, value] = eq < 0 ? [f, ''] : [f.slice(0, eq), f.slice(eq + 1)];
    if (key === 'label') labels.push(value);
    else if (key === 'name') tests.push((v) => v.metadata.name!.includes(value));
    else if (key === 'driver') tests.push((v) => (v.spec?.driver ?? 'local') === value);
    else if (key === 'dangling') tests.push((_v, used) => used !== (value === 'true' || value === '1'));
    else throw new FlagError(`--filter ${key}: not supported (name, label, driver, dangling)`);
  }
  const [vols, ctrs] = await Promise.all([
    conn.client.list(VolumeKind, { namespace: conn.namespace, ...(labels.length ? { labelSelector: labels.join(',') } : {}) }),
    tests.length ? conn.client.list(ContainerKind, { namespace: conn.namespace }) : Promise.resolve({ items: [] as Container[] }),
  ]);
  const users = volumeUsers(vols.items, ctrs.items);
  const rows = vols.items
    .filter((v) => tests.every((t) => t(v, (users.get(v.metadata.name!) ?? []).length > 0)))
    .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))
    .map(volumeRow);
  out(flags.quiet ? rows.map((r) => `${r.Name as string}\n`).join('') : renderFormat(flags.format ?? VOLUME_DEFAULT, rows, VOLUME_HEADERS));
  return 0;
}

/** Reads a Volume or throws Docker's `no such volume` error. */
async function getOr(conn: Connection, name: string): Promise<Volume> {
  try {
    return await conn.client.get(VolumeKind, conn.namespace, name);
  } catch (err) {
    if (isNotFound(err)) throw new VerbError(`get ${name}: no such volume`);
    throw err;
  }
}

/** `volume inspect [-f TEMPLATE] NAME…`: the objects as stored. */
export async function volumeInspect(conn: Connection, names: readonly string[], format: string | undefined, out: (s: string) => void): Promise<number> {
  const objs: Volume[] = [];
  for (const n of names) objs.push(await getOr(conn, n));
  out(format ? renderFormat(format, objs as unknown as Record<string, unknown>[]) : `${JSON.stringify(objs, null, 4)}\n`);
  return 0;
}

/** Deletes a volume and waits until the agent released it and the object is gone. */
async function deleteVolume(conn: Connection, name: string): Promise<void> {
  try {
    await conn.client.delete(VolumeKind, conn.namespace, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitForObject(conn, VolumeKind, name, (v) => v === undefined, { timeoutMs: 60_000 });
}

/** `volume rm [-f] NAME…`: refuses volumes in use unless `-f`; prints each name removed. */
export async function volumeRm(conn: Connection, names: readonly string[], force: boolean, out: (s: string) => void): Promise<number> {
  const ctrs = (await conn.client.list(ContainerKind, { namespace: conn.namespace })).items;
  let failed = 0;
  for (const n of names) {
    try {
      const v = await getOr(conn, n);
      const users = volumeUsers([v], ctrs).get(n) ?? [];
      if (users.length && !force) throw new VerbError(`remove ${n}: volume is in use - [${users.join(', ')}]`);
      await deleteVolume(conn, n);
      out(`${n}\n`);
    } catch (err) {
      if (names.length === 1) throw err;
      failed++;
      process.stderr.write(`Error response from daemon: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** The volumes no Container uses. */
export async function unusedVolumes(conn: Connection, labelSelector?: string): Promise<Volume[]> {
  const [vols, ctrs] = await Promise.all([
    conn.client.list(VolumeKind, { namespace: conn.namespace, ...(labelSelector ? { labelSelector } : {}) }),
    conn.client.list(ContainerKind, { namespace: conn.namespace }),
  ]);
  const users = volumeUsers(vols.items, ctrs.items);
  return vols.items.filter((v) => (users.get(v.metadata.name!) ?? []).length === 0);
}

/** Removes every unused volume; resolves with their names. */
export async function pruneVolumes(conn: Connection, labelSelector?: string): Promise<string[]> {
  const gone: string[] = [];
  for (const v of await unusedVolumes(conn, labelSelector)) {
    await deleteVolume(conn, v.metadata.name!);
    gone.push(v.metadata.name!);
  }
  return gone;
}

/**
 * Asks `question [y/N]` on stderr and reads one line of stdin; true only for y/yes.
 * End of input counts as no.
 */
export async function confirm(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.includes('\n')) done();
    };
    const done = () => {
      process.stdin.off('data', onData);
      process.stdin.off('end', done);
      process.stdin.pause();
      resolve(buf.split('\n')[0] ?? '');
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', done);
    process.stdin.resume();
  });
  return /^\s*y(es)?\s*$/i.test(line);
}

/** `volume prune [-f] [--filter label=…]`: removes every volume no Container uses. */
export async function volumePrune(conn: Connection, flags: { force?: boolean; filter?: readonly string[] }, out: (s: string) => void): Promise<number> {
  const labels = (flags.filter ?? []).map((f) => {
    if (!f.startsWith('label=')) throw new FlagError(`--filter ${f}: only label= is supported`);
    return f.slice('label='.length);
  });
  if (!flags.force && !(await confirm('WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?'))) return 0;
  const gone = await pruneVolumes(conn, labels.length ? labels.join(',') : undefined);
  out(`${gone.length ? `Deleted Volumes:\n${gone.map((n) => `${n}\n`).join('')}\n` : ''}Total reclaimed space: 0B\n`);
  return 0;
}

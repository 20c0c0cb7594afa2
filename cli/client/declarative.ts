/**
 * kubectl's declarative verbs, enough for habit: `apply -f` (server-side apply as
 * field manager `berth`, with `--prune -l` over berth's kinds), `get`, `describe`,
 * `delete`, `diff` and `wait --for`. Kinds are found through the server's discovery
 * (`containers`, `container`, `ctr`, `containers.berth.dev`, `Container`, …); tables
 * are the server's own (`as=Table`), as kubectl prints them.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { stableJson } from '../../controllers/framework/stable-json.ts';
import type { KubeObject } from '../../api/types/index.ts';
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import { collectionPath, objectPath, resourceKind, type ResourceKind } from '../../controllers/framework/resource-kind.ts';
import { readBody, type Connection } from './connection.ts';
import { FlagError } from './container-spec.ts';
import { VerbError } from './containers.ts';
import { renderTable } from './format.ts';
import { WaitTimeoutError, waitForObject } from './wait.ts';

/** The field manager of `berth apply`. */
export const APPLY_FIELD_MANAGER = 'berth';

/**
 * The apply changed nothing: the object is as it was, or only others wrote it meanwhile
 * (a controller's status): the same generation, labels, annotations and `berth`'s own
 * managedFields entry (the server does not touch it for a no-op apply).
 */
export function appliedNothing(before: KubeObject, after: KubeObject): boolean {
  if (before.metadata.resourceVersion === after.metadata.resourceVersion) return true;
  const mine = (o: KubeObject) => JSON.stringify((o.metadata.managedFields ?? []).find((m) => m.manager === APPLY_FIELD_MANAGER && m.operation === 'Apply') ?? null);
  const meta = (o: KubeObject) => stableJson({ g: o.metadata.generation, l: o.metadata.labels, a: o.metadata.annotations });
  return mine(before) !== 'null' && mine(before) === mine(after) && meta(before) === meta(after);
}

/** One served resource, from discovery. */
export interface ApiResource {
  readonly kind: ResourceKind;
  readonly singular: string;
  readonly shortNames: readonly string[];
}

/** A manifest file's objects, with where they came from (for messages). */
export interface Manifest {
  readonly source: string;
  readonly object: KubeObject;
}

/**
 * Parses YAML or JSON text holding one or more documents; `List` kinds are expanded
 * into their items and empty documents skipped. Throws naming `source` and the document.
 */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length) throw new FlagError(`${source}: document ${i + 1}: ${doc.errors[0]!.message}`);
    const v = doc.toJS() as unknown;
    if (v === null || v === undefined) return;
    const push = (o: unknown, where: string) => {
      const obj = o as Partial<KubeObject>;
      if (!obj || typeof obj !== 'object' || !obj.apiVersion || !obj.kind) throw new FlagError(`${source}: ${where}: apiVersion and kind are required`);
      if (!obj.metadata?.name) throw new FlagError(`${source}: ${where}: metadata.name is required (${obj.kind})`);
      out.push({ source, object: obj as KubeObject });
    };
    if ((v as { kind?: string }).kind?.endsWith('List') && Array.isArray((v as { items?: unknown }).items)) (v as { items: unknown[] }).items.forEach((x, j) => push(x, `document ${i + 1} item ${j + 1}`));
    else push(v, `document ${i + 1}`);
  });
  return out;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Reads `-f` arguments: files, directories (their `.yaml`/`.yml`/`.json` files, sorted; `-R` recurses) and `-` for stdin. */
export async function readManifests(paths: readonly string[], recursive: boolean, stdin: () => Promise<string>): Promise<Manifest[]> {
  const out: Manifest[] = [];
  const visit = async (p: string, top: boolean): Promise<void> => {
    if (p === '-') {
      out.push(...parseManifests(await stdin(), 'stdin'));
      return;
    }
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new FlagError(`the path "${p}" does not exist`);
    }
    if (st.isDirectory()) {
      if (!top && !recursive) return;
      for (const e of (await readdir(p)).sort()) {
        const child = join(p, e);
        if ((await stat(child)).isDirectory()) await visit(child, false);
        else if (MANIFEST_FILE.test(e)) await visit(child, false);
      }
      return;
    }
    out.push(...parseManifests(await readFile(p, 'utf8'), p));
  };
  if (!paths.length) throw new FlagError('must specify one of -f and -k (berth supports -f FILE|DIR|-)');
  for (const p of paths) await visit(p, true);
  return out;
}

/** Reads all of stdin. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function getJson<T>(conn: Connection, path: string): Promise<T> {
  return JSON.parse(await readBody(await conn.request('GET', path, { headers: { accept: 'application/json' } }))) as T;
}

interface ResourceList {
  groupVersion: string;
  resources: { name: string; singularName?: string; namespaced: boolean; kind: string; shortNames?: string[] }[];
}

/** The served resources (core v1 and every group's preferred version), without subresources. */
export async function discover(conn: Connection): Promise<ApiResource[]> {
  const lists: ResourceList[] = [];
  const core = await getJson<ResourceList>(conn, '/api/v1').catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  if (core) lists.push(core);
  const groups = await getJson<{ groups: { preferredVersion?: { groupVersion: string }; versions: { groupVersion: string }[] }[] }>(conn, '/apis');
  for (const g of groups.groups ?? []) {
    const gv = g.preferredVersion?.groupVersion ?? g.versions[0]?.groupVersion;
    if (gv) lists.push(await getJson<ResourceList>(conn, `/apis/${gv}`));
  }
  const out: ApiResource[] = [];
  for (const l of lists) {
    const [group, version] = l.groupVersion.includes('/') ? l.groupVersion.split('/') as [string, string] : ['', l.groupVersion];
    for (const r of l.resources) {
      if (r.name.includes('/')) continue;
      out.push({ kind: resourceKind(group, version, r.name, r.kind, r.namespaced), singular: r.singularName || r.kind.toLowerCase(), shortNames: r.shortNames ?? [] });
    }
  }
  return out;
}

/** Finds the resource a kubectl-style type names: plural, singular, short name or kind, optionally `.group`. */
export function resolveResource(resources: readonly ApiResource[], type: string): ApiResource {
  const [head, ...rest] = type.split('.');
  const group = rest.join('.');
  const want = head!.toLowerCase();
  const hits = resources.filter((r) => (!group || r.kind.group === group) && [r.kind.plural, r.singular, r.kind.kind.toLowerCase(), ...r.shortNames].includes(want));
  const best = hits.find((r) => r.kind.group === 'berth.dev') ?? hits[0];
  if (!best) throw new VerbError(`the server doesn't have a resource type "${type}"`);
  return best;
}

/** kubectl's name of an object's resource: `container.berth.dev/web`, `secret/s`. */
export const qualifiedName = (r: ApiResource, name: string): string => `${r.kind.kind.toLowerCase()}${r.kind.group ? `.${r.kind.group}` : ''}/${name}`;

const byApiVersionKind = (resources: readonly ApiResource[], obj: KubeObject): ApiResource => {
  const r = resources.find((x) => (x.kind.group ? `${x.kind.group}/${x.kind.version}` : x.kind.version) === obj.apiVersion && x.kind.kind === obj.kind);
  if (!r) throw new VerbError(`resource mapping not found for name: "${obj.metadata.name}" namespace: "${obj.metadata.namespace ?? ''}": no matches for kind "${obj.kind}" in version "${obj.apiVersion}"`);
  return r;
};

async function sendJson<T>(conn: Connection, method: string, path: string, body: unknown, contentType: string): Promise<T> {
  const res = await conn.request(method, path, { body: Buffer.from(JSON.stringify(body)), headers: { 'content-type': contentType, accept: 'application/json' } });
  return JSON.parse(await readBody(res)) as T;
}

/** Server-side apply of one object as `berth`; with `dryRun`, nothing is stored. */
export async function applyObject(conn: Connection, r: ApiResource, obj: KubeObject, opts: { force?: boolean; dryRun?: boolean } = {}): Promise<KubeObject> {
  const ns = r.kind.namespaced ? (obj.metadata.namespace ?? conn.namespace) : '';
  const q = new URLSearchParams({ fieldManager: APPLY_FIELD_MANAGER });
  if (opts.force) q.set('force', 'true');
  if (opts.dryRun) q.set('dryRun', 'All');
  const body = { ...obj, metadata: { ...obj.metadata, ...(ns ? { namespace: ns } : {}) } };
  return sendJson(conn, 'PATCH', `${objectPath(r.kind, ns, obj.metadata.name!)}?${q}`, body, 'application/apply-patch+yaml');
}

async function getObject(conn: Connection, r: ApiResource, ns: string, name: string): Promise<KubeObject | undefined> {
  try {
    return await getJson<KubeObject>(conn, objectPath(r.kind, r.kind.namespaced ? ns : '', name));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The kinds `apply --prune` considers: berth's own (never Nodes, Leases or Events). */
export const PRUNE_KINDS = ['containers', 'images', 'volumes', 'networks', 'services', 'secrets'];

/** Whether `berth apply` (field manager `berth`, operation Apply) owns fields of `obj`: only those are pruned. */
export const appliedByBerth = (obj: KubeObject): boolean =>
  (obj.metadata.managedFields ?? []).some((m) => m.manager === APPLY_FIELD_MANAGER && m.operation === 'Apply');

export interface ApplyFlags {
  readonly filename?: readonly string[];
  readonly recursive?: boolean;
  readonly prune?: boolean;
  readonly selector?: string;
  readonly force?: boolean;
  readonly dryRun?: string;
  readonly output?: string;
}

/**
 * `apply -f …`: server-side apply of each object, printing `container.berth.dev/web
 * created|configured|unchanged`. With `--prune -l SEL`, objects of berth's kinds that
 * match SEL, were applied by `berth apply` and are not in the files are deleted.
 */
export async function apply(conn: Connection, flags: ApplyFlags, out: (s: string) => void): Promise<number> {
  if (flags.prune && !flags.selector) throw new FlagError('--prune needs -l/--selector (berth prunes only objects with those labels)');
  const manifests = await readManifests(flags.filename ?? [], flags.recursive ?? false, readStdin);
  const resources = await discover(conn);
  const dry = flags.dryRun === 'server' || flags.dryRun === 'client';
  const applied = new Set<string>();
  const written: KubeObject[] = [];
  for (const m of manifests) {
    const r = byApiVersionKind(resources, m.object);
    const ns = r.kind.namespaced ? (m.object.metadata.namespace ?? conn.namespace) : '';
    const before = await getObject(conn, r, ns, m.object.metadata.name!);
    let after: KubeObject;
    try {
      after = await applyObject(conn, r, m.object, { force: flags.force ?? false, dryRun: dry });
    } catch (err) {
      throw new VerbError(`${m.source}: ${qualifiedName(r, m.object.metadata.name!)}: ${(err as Error & { status?: { message?: string } }).status?.message ?? (err as Error).message}`);
    }
    applied.add(`${r.kind.plural}.${r.kind.group}/${ns}/${after.metadata.name!}`);
    written.push(after);
    const what = !before ? 'created' : appliedNothing(before, after) ? 'unchanged' : 'configured';
    if (!flags.output) out(`${qualifiedName(r, after.metadata.name!)} ${what}${dry ? ' (server dry run)' : ''}\n`);
  }
  if (flags.prune) {
    for (const plural of PRUNE_KINDS) {
      const r = resources.find((x) => x.kind.plural === plural && (x.kind.group === 'berth.dev' || (plural === 'secrets' && x.kind.group === '')));
      if (!r) continue;
      const list = await getJson<{ items: KubeObject[] }>(conn, `${collectionPath(r.kind, conn.namespace)}?labelSelector=${encodeURIComponent(flags.selector!)}`);
      for (const o of list.items) {
        if (applied.has(`${r.kind.plural}.${r.kind.group}/${o.metadata.namespace ?? ''}/${o.metadata.name!}`) || !appliedByBerth(o)) continue;
        if (!dry) await conn.request('DELETE', objectPath(r.kind, o.metadata.namespace ?? '', o.metadata.name!)).then((res) => res.resume());
        out(`${qualifiedName(r, o.metadata.name!)} pruned${dry ? ' (server dry run)' : ''}\n`);
      }
    }
  }
  if (flags.output === 'yaml' || flags.output === 'json') out(renderObjects(flags.output, written));
  return 0;
}

/** `TYPE NAME…`, `TYPE/NAME…` or `-f` arguments as (resource, name) pairs. */
async function targets(conn: Connection, args: readonly string[], files: readonly string[] | undefined, recursive = false): Promise<{ r: ApiResource; ns: string; name?: string }[]> {
  const resources = await discover(conn);
  if (files?.length) {
    return (await readManifests(files, recursive, readStdin)).map((m) => {
      const r = byApiVersionKind(resources, m.object);
      return { r, ns: r.kind.namespaced ? (m.object.metadata.namespace ?? conn.namespace) : '', name: m.object.metadata.name! };
    });
  }
  if (!args.length) throw new FlagError('You must specify the type of resource to get. Use "berth api-resources"-style names: containers, images, volumes, networks, services, nodes, events');
  if (args.every((a) => a.includes('/'))) {
    return args.map((a) => {
      const [type, name] = a.split('/') as [string, string];
      const r = resolveResource(resources, type);
      return { r, ns: r.kind.namespaced ? conn.namespace : '', name };
    });
  }
  const [types, ...names] = args;
  return types!.split(',').flatMap((t) => {
    const r = resolveResource(resources, t);
    const ns = r.kind.namespaced ? conn.namespace : '';
    return names.length ? names.map((name) => ({ r, ns, name })) : [{ r, ns }];
  });
}

interface Table {
  columnDefinitions: { name: string; priority?: number }[];
  rows: { cells: unknown[] }[];
}

const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

export interface GetFlags {
  readonly output?: string;
  readonly selector?: string;
  readonly allNamespaces?: boolean;
  readonly filename?: readonly string[];
  readonly noHeaders?: boolean;
}

/** A Table as kubectl prints it: upper-case headers, priority-0 columns unless `wide`, NAMESPACE first with `-A`. */
export function renderServerTable(tables: readonly { table: Table; namespaces?: readonly string[] }[], wide: boolean, noHeaders: boolean): string {
  const rows: string[][] = [];
  let header: string[] | undefined;
  for (const { table, namespaces } of tables) {
    const cols = table.columnDefinitions.map((c, i) => ({ c, i })).filter(({ c }) => wide || !c.priority);
    header ??= [...(namespaces ? ['NAMESPACE'] : []), ...cols.map(({ c }) => c.name.toUpperCase())];
    table.rows.forEach((row, j) => rows.push([...(namespaces ? [namespaces[j] ?? ''] : []), ...cols.map(({ i }) => String(row.cells[i] ?? ''))]));
  }
  if (!header) return '';
  return renderTable(noHeaders ? rows : [header, ...rows]).replace(/ {10,}\n/g, '\n');
}

/** `get TYPE [NAME…] | TYPE/NAME… | -f FILE` with `-o wide|yaml|json|name`, `-l`, `-A`. */
export async function get(conn: Connection, args: readonly string[], flags: GetFlags, out: (s: string) => void): Promise<number> {
  const ts = await targets(conn, args, flags.filename);
  const o = flags.output;
  if (o && !['wide', 'yaml', 'json', 'name'].includes(o)) throw new FlagError(`-o ${o}: supported: wide, yaml, json, name`);
  const objects: KubeObject[] = [];
  const names: string[] = [];
  const tables: { table: Table; namespaces?: string[] }[] = [];
  let missing = 0;
  for (const t of ts) {
    const ns = flags.allNamespaces ? '' : t.ns;
    if (o === 'yaml' || o === 'json' || o === 'name') {
      if (t.name) {
        const obj = await getObject(conn, t.r, ns || conn.namespace, t.name);
        if (!obj) {
          process.stderr.write(`Error from server (NotFound): ${t.r.kind.plural}.${t.r.kind.group} "${t.name}" not found\n`);
          missing++;
          continue;
        }
        objects.push(obj);
        names.push(qualifiedName(t.r, t.name));
      } else {
        const list = await getJson<{ items: KubeObject[] }>(conn, `${collectionPath(t.r.kind, ns)}${flags.selector ? `?labelSelector=${encodeURIComponent(flags.selector)}` : ''}`);
        objects.push(...list.items);
        names.push(...list.items.map((x) => qualifiedName(t.r, x.metadata.name!)));
      }
      continue;
    }
    const path = t.name ? objectPath(t.r.kind, ns || conn.namespace, t.name) : `${collectionPath(t.r.kind, ns)}${flags.selector ? `?labelSelector=${encodeURIComponent(flags.selector)}` : ''}`;
    try {
      const table = JSON.parse(await readBody(await conn.request('GET', path, { headers: { accept: TABLE_ACCEPT } }))) as Table & { rows: { cells: unknown[]; object?: KubeObject }[] };
      const nsOf = flags.allNamespaces && t.r.kind.namespaced ? table.rows.map((r) => (r as { object?: { metadata?: { namespace?: string } } }).object?.metadata?.namespace ?? '') : undefined;
      tables.push({ table, ...(nsOf ? { namespaces: nsOf } : {}) });
    } catch (err) {
      if (!isNotFound(err) || !t.name) throw err;
      process.stderr.write(`Error from server (NotFound): ${t.r.kind.plural}.${t.r.kind.group} "${t.name}" not found\n`);
      missing++;
    }
  }
  if (o === 'name') out(names.map((n) => `${n}\n`).join(''));
  else if (o === 'yaml' || o === 'json') {
    const single = ts.length === 1 && ts[0]!.name !== undefined && objects.length === 1;
    out(single ? renderObjects(o, objects) : o === 'json' ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects, metadata: { resourceVersion: '' } }, null, 4)}\n` : stringify({ apiVersion: 'v1', kind: 'List', items: objects, metadata: { resourceVersion: '' } }));
  } else {
    const text = renderServerTable(tables, o === 'wide', flags.noHeaders ?? false);
    if (!text && !missing) process.stderr.write(`No resources found in ${flags.allNamespaces ? 'any' : conn.namespace} namespace.\n`);
    out(text);
  }
  return missing ? 1 : 0;
}

/** kubectl describe's layout of one object: metadata lines, spec and status as indented YAML, then its Events. */
export function describeText(obj: KubeObject, events: readonly { type?: string; reason?: string; lastTimestamp?: string | null; message?: string; source?: { component?: string }; reportingComponent?: string }[], nowMs: number): string {
  const kv = (m: Record<string, string> | undefined) => (m && Object.keys(m).length ? Object.entries(m).map(([k, v]) => `${k}=${v}`) : ['<none>']);
  const block = (title: string, lines: readonly string[]) => `${title.padEnd(14)}${lines[0]}\n${lines.slice(1).map((l) => `${' '.repeat(14)}${l}\n`).join('')}`;
  const yamlBlock = (title: string, v: unknown) => (v === undefined ? '' : `${title}:\n${stringify(v).trimEnd().split('\n').map((l) => `  ${l}`).join('\n')}\n`);
  const age = (t: string | null | undefined) => {
    if (!t) return '<unknown>';
    const s = Math.max(0, Math.floor((nowMs - Date.parse(t)) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
  };
  let text = block('Name:', [obj.metadata.name!]);
  if (obj.metadata.namespace) text += block('Namespace:', [obj.metadata.namespace]);
  text += block('Labels:', kv(obj.metadata.labels));
  text += block('Annotations:', kv(obj.metadata.annotations));
  text += block('API Version:', [obj.apiVersion]);
  text += block('Kind:', [obj.kind]);
  text += block('Created:', [obj.metadata.creationTimestamp ?? '<unknown>']);
  text += yamlBlock('Spec', obj.spec);
  text += yamlBlock('Status', obj.status);
  if (!events.length) return `${text}Events:       <none>\n`;
  const rows = [['Type', 'Reason', 'Age', 'From', 'Message'], ['----', '------', '----', '----', '-------'], ...events.map((e) => [e.type ?? 'Normal', e.reason ?? '', age(e.lastTimestamp), e.reportingComponent ?? e.source?.component ?? '', e.message ?? ''])];
  return `${text}Events:\n${renderTable(rows).split('\n').filter(Boolean).map((l) => `  ${l}\n`).join('')}`;
}

/** `describe TYPE [NAME…] | -f FILE`. */
export async function describe(conn: Connection, args: readonly string[], flags: { filename?: readonly string[]; selector?: string }, out: (s: string) => void): Promise<number> {
  const ts = await targets(conn, args, flags.filename);
  const objs: KubeObject[] = [];
  for (const t of ts) {
    if (t.name) {
      const o = await getObject(conn, t.r, t.ns, t.name);
      if (!o) throw new VerbError(`${t.r.kind.plural}.${t.r.kind.group} "${t.name}" not found`);
      objs.push(o);
    } else objs.push(...(await getJson<{ items: KubeObject[] }>(conn, `${collectionPath(t.r.kind, t.ns)}${flags.selector ? `?labelSelector=${encodeURIComponent(flags.selector)}` : ''}`)).items);
  }
  const texts: string[] = [];
  for (const o of objs) {
    const evs = o.metadata.namespace
      ? (await getJson<{ items: { involvedObject: { kind?: string; name?: string }; lastTimestamp?: string }[] }>(conn, `/api/v1/namespaces/${o.metadata.namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${o.metadata.name!}`)}`).catch(() => ({ items: [] }))).items
          .filter((e) => e.involvedObject.kind === o.kind && e.involvedObject.name === o.metadata.name)
          .sort((a, b) => Date.parse(a.lastTimestamp ?? '') - Date.parse(b.lastTimestamp ?? ''))
      : [];
    texts.push(describeText(o, evs, Date.now()));
  }
  out(texts.join('\n\n'));
  return 0;
}

/** `delete TYPE NAME… | TYPE/NAME… | -f FILE [--ignore-not-found] [--wait=false]`: kubectl's lines, waits until gone. */
export async function del(conn: Connection, args: readonly string[], flags: { filename?: readonly string[]; recursive?: boolean; selector?: string; ignoreNotFound?: boolean; wait?: boolean; all?: boolean }, out: (s: string) => void): Promise<number> {
  const ts = await targets(conn, args, flags.filename, flags.recursive ?? false);
  const gone: { r: ApiResource; ns: string; name: string }[] = [];
  let missing = 0;
  for (const t of ts) {
    let names: { ns: string; name: string }[];
    if (t.name) names = [{ ns: t.ns, name: t.name }];
    else {
      if (!flags.selector && !flags.all) throw new FlagError('resource(s) were provided, but no name was specified (use --all or -l)');
      const list = await getJson<{ items: KubeObject[] }>(conn, `${collectionPath(t.r.kind, t.ns)}${flags.selector ? `?labelSelector=${encodeURIComponent(flags.selector)}` : ''}`);
      names = list.items.map((o) => ({ ns: o.metadata.namespace ?? '', name: o.metadata.name! }));
    }
    for (const n of names) {
      try {
        (await conn.request('DELETE', objectPath(t.r.kind, n.ns, n.name))).resume();
        out(`${qualifiedName(t.r, n.name).replace(/\/(.*)$/, ' "$1"')} deleted\n`);
        gone.push({ r: t.r, ...n });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        if (!flags.ignoreNotFound) {
          process.stderr.write(`Error from server (NotFound): ${t.r.kind.plural}${t.r.kind.group ? `.${t.r.kind.group}` : ''} "${n.name}" not found\n`);
          missing++;
        }
      }
    }
  }
  if (flags.wait !== false) {
    await Promise.all(gone.map((g) => waitForObject({ ...conn, namespace: g.ns }, g.r.kind, g.name, (o) => o === undefined, { timeoutMs: 120_000 })));
  }
  return missing ? 1 : 0;
}

/** Fields the server sets that `diff` leaves out, as kubectl does. */
export function forDiff(obj: KubeObject | undefined): string {
  if (!obj) return '';
  const { managedFields: _m, resourceVersion: _r, generation: _g, ...meta } = obj.metadata;
  return stringify({ ...obj, metadata: meta });
}

/** `diff -f …`: the live objects against a server-side dry-run apply, through `diff -u -N`; exit 1 when they differ. */
export async function diff(conn: Connection, flags: { filename?: readonly string[]; recursive?: boolean }, out: (s: string) => void): Promise<number> {
  const manifests = await readManifests(flags.filename ?? [], flags.recursive ?? false, readStdin);
  const resources = await discover(conn);
  const dir = await mkdtemp(join(tmpdir(), 'berth-diff-'));
  try {
    await Promise.all(['LIVE', 'MERGED'].map((d) => mkdir(join(dir, d))));
    for (const m of manifests) {
      const r = byApiVersionKind(resources, m.object);
      const ns = r.kind.namespaced ? (m.object.metadata.namespace ?? conn.namespace) : '';
      const file = [r.kind.group || 'core', r.kind.version, r.kind.kind, ns, m.object.metadata.name!].filter(Boolean).join('.');
      const live = await getObject(conn, r, ns, m.object.metadata.name!);
      const merged = await applyObject(conn, r, m.object, { dryRun: true, force: true });
      await writeFile(join(dir, 'LIVE', file), forDiff(live));
      await writeFile(join(dir, 'MERGED', file), forDiff(merged));
    }
    const res = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn('diff', ['-u', '-N', '-r', join(dir, 'LIVE'), join(dir, 'MERGED')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? 2, stdout, stderr }));
    });
    if (res.code > 1) throw new VerbError(`diff failed: ${res.stderr.trim()}`);
    out(res.stdout);
    return res.code;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A `wait --for` condition: `condition=Ready[=False]`, `delete`, or `jsonpath={.status.phase}=Running`. */
export type WaitFor = { readonly kind: 'delete' } | { readonly kind: 'condition'; readonly type: string; readonly status: string } | { readonly kind: 'jsonpath'; readonly path: readonly string[]; readonly value: string | undefined };

/** Parses `--for` as kubectl takes it. */
export function parseWaitFor(v: string): WaitFor {
  if (v === 'delete') return { kind: 'delete' };
  let m = /^condition=([^=]+)(?:=(.*))?$/.exec(v);
  if (m) return { kind: 'condition', type: m[1]!, status: m[2] ?? 'True' };
  m = /^jsonpath=['"]?\{\.?([^}]*)\}['"]?(?:=(.*))?$/.exec(v);
  if (m) return { kind: 'jsonpath', path: m[1]!.split('.').filter(Boolean), value: m[2] };
  throw new FlagError(`--for ${JSON.stringify(v)}: expected delete, condition=TYPE[=STATUS] or jsonpath={.path}=VALUE`);
}

/** Whether `obj` satisfies a `wait --for` condition. */
export function waitSatisfied(obj: KubeObject | undefined, f: WaitFor): boolean {
  if (f.kind === 'delete') return obj === undefined;
  if (!obj) return false;
  if (f.kind === 'condition') {
    const conds = (obj.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
    return conds.some((c) => c.type.toLowerCase() === f.type.toLowerCase() && c.status.toLowerCase() === f.status.toLowerCase());
  }
  let v: unknown = obj;
  for (const k of f.path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return f.value === undefined ? v !== undefined && v !== null : String(v) === f.value;
}

/** Go-style durations of `--timeout`: `30s`, `2m`, `1h30m`, `500ms`; a bare number is seconds. */
export function parseTimeoutMs(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    matched = re.lastIndex;
  }
  if (!v || matched !== v.length) throw new FlagError(`--timeout ${JSON.stringify(v)}: expected a duration such as 30s or 2m`);
  return ms;
}

/** `wait --for=… TYPE/NAME… [--timeout=30s]`: kubectl's `condition met` lines; exit 1 on timeout. */
export async function waitFor(conn: Connection, args: readonly string[], flags: { for: string; timeout?: string; filename?: readonly string[] }, out: (s: string) => void): Promise<number> {
  const f = parseWaitFor(flags.for);
  const timeoutMs = parseTimeoutMs(flags.timeout ?? '30s');
  const ts = await targets(conn, args, flags.filename);
  for (const t of ts) {
    if (!t.name) throw new FlagError('wait needs TYPE/NAME or TYPE NAME');
    try {
      await waitForObject({ ...conn, namespace: t.ns }, t.r.kind, t.name, (o) => waitSatisfied(o, f), { timeoutMs });
    } catch (err) {
      if (err instanceof WaitTimeoutError) throw new VerbError(`timed out waiting for the condition on ${t.r.kind.plural}/${t.name}`);
      if (f.kind !== 'delete' && /was deleted/.test((err as Error).message)) throw new VerbError(`${t.r.kind.plural}/${t.name} was deleted`);
      throw err;
    }
    out(`${qualifiedName(t.r, t.name)} ${f.kind === 'delete' ? 'deleted' : 'condition met'}\n`);
  }
  return 0;
}

/** `-o json|yaml` of declarative verbs: one object as is, several as a `List`. */
export function renderObjects(output: 'json' | 'yaml', objects: readonly unknown[]): string {
  const doc = objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
  return output === 'json' ? `${JSON.stringify(doc, null, 4)}\n` : stringify(doc);
}

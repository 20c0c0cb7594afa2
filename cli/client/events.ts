/**
 * `berth events`: a live stream of lifecycle changes, printed as Docker prints them
 * (`2026-11-28T05:00:00Z container start <id> (image=busybox, name=web)`). The
 * changes are derived from watches of Containers, Images, Volumes and Networks (each
 * new version compared with the one before) plus the core Events the controllers
 * record; nothing is polled. `--since` replays what the objects' timestamps still
 * tell (starts, exits, creations, recorded Events); `--until` stops.
 */
import type { Container, Event as CoreEvent, Image, KubeObject, Network, Volume } from '../../api/types/index.ts';
import { isGone } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind, Event as EventKind, Image as ImageKind, Network as NetworkKind, Volume as VolumeKind, type ResourceKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from './connection.ts';
import { FlagError } from './container-spec.ts';
import { toSince } from './containers.ts';
import { renderFormat } from './format.ts';

/** One line of `berth events`. */
export interface BerthEvent {
  /** ISO time of the change (the object's own timestamp where it has one). */
  readonly time: string;
  /** `container`, `image`, `volume`, `network`, or the lower-cased kind of a core Event's object. */
  readonly type: string;
  readonly action: string;
  /** The runtime container ID, image reference, or object name. */
  readonly id: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** The object's labels, for `--filter label=`; not printed. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Seconds precision, as `2026-11-28T05:00:00Z`. */
const isoSeconds = (t: string | number | Date): string => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Docker's line: `TIME TYPE ACTION ID (k=v, …)` with the attributes sorted by key. */
export function formatEvent(e: BerthEvent): string {
  const attrs = Object.entries(e.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
  return `${isoSeconds(e.time)} ${e.type} ${e.action} ${e.id}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`;
}

/** The `--format` fields of an event, as Docker's `events --format` has them. */
export const eventFields = (e: BerthEvent): Record<string, unknown> => ({
  Type: e.type, Action: e.action, ID: e.id, Time: isoSeconds(e.time), TimeNano: Date.parse(e.time) * 1e6,
  Actor: { ID: e.id, Attributes: e.attributes }, Status: e.action, From: e.attributes.image ?? '',
});

const ctrId = (c: Container): string => c.status?.containerID ?? (c.metadata.uid ?? '').replace(/-/g, '');
const tagsOf = (i: Image): string[] => (i.spec.tags?.length ? i.spec.tags : [`${i.metadata.name!}:latest`]);

/** The lifecycle changes between two versions of a Container (`prev` undefined: first seen; `next` undefined: deleted). */
export function containerEvents(prev: Container | undefined, next: Container | undefined, nowIso: string): BerthEvent[] {
  const c = next ?? prev;
  if (!c) return [];
  const ev = (action: string, time: string | null | undefined, id = ctrId(c), extra: Record<string, string> = {}): BerthEvent => ({
    time: time ?? nowIso, type: 'container', action, id, attributes: { name: c.metadata.name!, image: c.spec.image, ...extra }, ...(c.metadata.labels ? { labels: c.metadata.labels } : {}),
  });
  const out: BerthEvent[] = [];
  if (!next) {
    if (prev?.status?.containerID) {
      if (prev.status.phase === 'Running' || prev.status.phase === 'Paused') out.push(ev('die', nowIso, prev.status.containerID, { exitCode: '137' }));
      out.push(ev('destroy', nowIso, prev.status.containerID));
    }
    return out;
  }
  const p = prev?.status ?? {};
  const s = next.status ?? {};
  if (s.containerID && s.containerID !== p.containerID) {
    if (p.containerID) out.push(ev('destroy', nowIso, p.containerID));
    out.push(ev('create', nowIso));
  }
  for (const a of next.spec.networks ?? []) {
    if (prev && !(prev.spec.networks ?? []).some((x) => x.name === a.name)) out.push({ time: nowIso, type: 'network', action: 'connect', id: a.name, attributes: { container: next.metadata.name!, name: a.name } });
  }
  for (const a of prev?.spec.networks ?? []) {
    if (!(next.spec.networks ?? []).some((x) => x.name === a.name)) out.push({ time: nowIso, type: 'network', action: 'disconnect', id: a.name, attributes: { container: next.metadata.name!, name: a.name } });
  }
  const restarted = !!s.startedAt && s.startedAt !== p.startedAt;
  if (s.phase === 'Running' && p.phase === 'Paused') out.push(ev('unpause', nowIso));
  else if (s.phase === 'Paused' && p.phase !== 'Paused') out.push(ev('pause', nowIso));
  else if ((s.phase === 'Running' && p.phase !== 'Running') || ((s.phase === 'Running' || s.phase === 'Exited') && restarted && p.startedAt)) {
    if (p.phase === 'Running' && s.phase === 'Running') out.push(ev('die', p.finishedAt ?? s.startedAt, ctrId(next)));
    out.push(ev('start', s.startedAt));
  } else if (s.phase === 'Exited' && restarted && !p.startedAt) out.push(ev('start', s.startedAt));
  if (s.phase === 'Exited' && s.reason !== 'BackOff' && (p.phase !== 'Exited' || p.finishedAt !== s.finishedAt)) out.push(ev('die', s.finishedAt, ctrId(next), { exitCode: String(s.exitCode ?? 0) }));
  return out;
}

const IMAGE_ACTIONS: Record<string, string> = { pull: 'pull', build: 'build', import: 'import', commit: 'commit' };

/** The lifecycle changes between two versions of an Image. */
export function imageEvents(prev: Image | undefined, next: Image | undefined, nowIso: string): BerthEvent[] {
  const i = next ?? prev;
  if (!i) return [];
  const ev = (action: string, id: string): BerthEvent => ({ time: nowIso, type: 'image', action, id, attributes: { name: i.metadata.name! }, ...(i.metadata.labels ? { labels: i.metadata.labels } : {}) });
  if (!next) return [ev('delete', i.status?.id ?? tagsOf(i)[0]!)];
  const out: BerthEvent[] = [];
  if (next.status?.phase === 'Ready' && prev?.status?.phase !== 'Ready' && (prev?.status?.phase ?? 'Pending') !== 'Pushing') {
    const source = Object.keys(next.spec.source ?? {}).find((k) => IMAGE_ACTIONS[k]);
    out.push(ev(IMAGE_ACTIONS[source ?? 'pull']!, tagsOf(next)[0]!));
  }
  if (prev) {
    const before = tagsOf(prev);
    const after = tagsOf(next);
    for (const t of after) if (!before.includes(t)) out.push(ev('tag', t));
    for (const t of before) if (!after.includes(t)) out.push(ev('untag', t));
  }
  for (const p of next.status?.pushed ?? []) {
    if (!(prev?.status?.pushed ?? []).some((x) => x.reference === p.reference && x.digest === p.digest)) out.push(ev('push', p.reference));
  }
  return out;
}

/** `create` / `destroy` of a Volume or Network. */
export function objectEvents(type: 'volume' | 'network', prev: KubeObject | undefined, next: KubeObject | undefined, nowIso: string): BerthEvent[] {
  const o = next ?? prev;
  if (!o || (prev && next)) return [];
  const attrs: Record<string, string> = type === 'volume' ? { driver: (o as Volume).spec?.driver ?? 'local' } : { name: o.metadata.name!, type: (o as Network).spec?.driver ?? 'bridge' };
  return [{ time: next ? (next.metadata.creationTimestamp ?? nowIso) : nowIso, type, action: next ? 'create' : 'destroy', id: o.metadata.name!, attributes: attrs, ...(o.metadata.labels ? { labels: o.metadata.labels } : {}) }];
}

/** A core Event as a line: its object's kind as the type, its reason as the action. */
export function coreEvent(e: CoreEvent): BerthEvent {
  const obj = e.involvedObject;
  return {
    time: e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? new Date().toISOString(),
    type: (obj.kind ?? 'object').toLowerCase(),
    action: e.reason ?? 'Event',
    id: obj.name ?? '',
    attributes: { type: e.type ?? 'Normal', ...(e.message ? { message: e.message } : {}), ...(e.count && e.count > 1 ? { count: String(e.count) } : {}) },
  };
}

/** What happened to each object before the stream started, from its timestamps (for `--since`). */
export function pastEvents(kind: 'container' | 'image' | 'volume' | 'network' | 'event', o: KubeObject): BerthEvent[] {
  if (kind === 'event') return [coreEvent(o as CoreEvent)];
  if (kind === 'volume' || kind === 'network') return objectEvents(kind, undefined, o, o.metadata.creationTimestamp ?? '');
  if (kind === 'image') return imageEvents(undefined, o as Image, o.metadata.creationTimestamp ?? '');
  const c = o as Container;
  const out: BerthEvent[] = [];
  const base = { type: 'container', id: ctrId(c), ...(c.metadata.labels ? { labels: c.metadata.labels } : {}) };
  const attrs = { name: c.metadata.name!, image: c.spec.image };
  if (c.metadata.creationTimestamp) out.push({ ...base, time: c.metadata.creationTimestamp, action: 'create', attributes: attrs });
  if (c.status?.startedAt) out.push({ ...base, time: c.status.startedAt, action: 'start', attributes: attrs });
  if (c.status?.finishedAt && c.status.phase === 'Exited') out.push({ ...base, time: c.status.finishedAt, action: 'die', attributes: { ...attrs, exitCode: String(c.status.exitCode ?? 0) } });
  return out;
}

/** `--filter` of `events` as a predicate: `type=`, `event=` (or `action=`), `container=`, `image=`, `volume=`, `network=`, `label=k[=v]`. */
export function eventFilter(filters: readonly string[]): (e: BerthEvent) => boolean {
  const by = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new FlagError(`--filter ${JSON.stringify(f)}: expected KEY=VALUE`);
    const key = f.slice(0, eq) === 'action' ? 'event' : f.slice(0, eq);
    if (!['type', 'event', 'container', 'image', 'volume', 'network', 'label'].includes(key)) throw new FlagError(`--filter ${key}: not supported (type, event, container, image, volume, network, label)`);
    by.set(key, [...(by.get(key) ?? []), f.slice(eq + 1)]);
  }
  const any = (key: string, test: (v: string) => boolean) => !by.has(key) || by.get(key)!.some(test);
  const names = (e: BerthEvent, type: string) => (e.type === type ? [e.id, e.attributes.name ?? ''] : type === 'container' && e.attributes.container ? [e.attributes.container] : []);
  return (e) =>
    any('type', (v) => v === e.type) &&
    any('event', (v) => v === e.action) &&
    any('container', (v) => names(e, 'container').some((n) => n === v || (n.length > 12 && n.startsWith(v)))) &&
    any('image', (v) => (e.type === 'image' ? [e.id, e.attributes.name] : [e.attributes.image]).some((n) => n === v || n === `${v}:latest`)) &&
    any('volume', (v) => names(e, 'volume').includes(v)) &&
    any('network', (v) => names(e, 'network').includes(v)) &&
    (!by.has('label') || by.get('label')!.every((l) => {
      const eq = l.indexOf('=');
      const k = eq < 0 ? l : l.slice(0, eq);
      return e.labels?.[k] !== undefined && (eq < 0 || e.labels[k] === l.slice(eq + 1));
    }));
}

export interface EventsFlags {
  readonly since?: string;
  readonly until?: string;
  readonly filter?: readonly string[];
  readonly format?: string;
}

type Kind = 'container' | 'image' | 'volume' | 'network' | 'event';
const SOURCES: readonly { readonly kind: Kind; readonly rk: ResourceKind }[] = [
  { kind: 'container', rk: ContainerKind }, { kind: 'image', rk: ImageKind }, { kind: 'volume', rk: VolumeKind }, { kind: 'network', rk: NetworkKind }, { kind: 'event', rk: EventKind },
];

function diff(kind: Kind, prev: KubeObject | undefined, next: KubeObject | undefined, nowIso: string): BerthEvent[] {
  switch (kind) {
    case 'container':
      return containerEvents(prev as Container | undefined, next as Container | undefined, nowIso);
    case 'image':
      return imageEvents(prev as Image | undefined, next as Image | undefined, nowIso);
    case 'event':
      return next && (!prev || (next as CoreEvent).count !== (prev as CoreEvent).count) ? [coreEvent(next as CoreEvent)] : [];
    default:
      return objectEvents(kind, prev, next, nowIso);
  }
}

/**
 * Follows one kind: list (its past with `--since`), then watch from the list's
 * resourceVersion, re-watching from the last version seen when a watch ends and
 * re-listing (diffing against what it knew) when that version is too old.
 */
async function follow(conn: Connection, src: (typeof SOURCES)[number], sinceMs: number | undefined, emit: (e: BerthEvent) => void, signal: AbortSignal): Promise<void> {
  const known = new Map<string, KubeObject>();
  let rv = '';
  const relist = async (first: boolean) => {
    const list = await conn.client.list(src.rk, { namespace: conn.namespace });
    const now = new Date().toISOString();
    const seen = new Set<string>();
    const past: BerthEvent[] = [];
    for (const o of list.items) {
      const name = o.metadata.name!;
      seen.add(name);
      if (first) {
        if (sinceMs !== undefined) past.push(...pastEvents(src.kind, o).filter((e) => Date.parse(e.time) >= sinceMs));
      } else diff(src.kind, known.get(name), o, now).forEach(emit);
      known.set(name, o);
    }
    for (const [name, o] of known) {
      if (!seen.has(name)) {
        diff(src.kind, o, undefined, now).forEach(emit);
        known.delete(name);
      }
    }
    past.sort((a, b) => Date.parse(a.time) - Date.parse(b.time)).forEach(emit);
    rv = list.metadata.resourceVersion ?? '';
  };
  await relist(true);
  while (!signal.aborted) {
    let stale = false;
    const stream = await conn.client.watch(src.rk, { namespace: conn.namespace, resourceVersion: rv, allowWatchBookmarks: true }, (e) => {
      const o = e.object as KubeObject;
      if (e.type === 'ERROR') {
        stale = true;
        return;
      }
      if (o?.metadata?.resourceVersion) rv = o.metadata.resourceVersion;
      if (e.type === 'BOOKMARK') return;
      const name = o.metadata.name!;
      const prev = known.get(name);
      if (e.type === 'DELETED') known.delete(name);
      else known.set(name, o);
      diff(src.kind, prev, e.type === 'DELETED' ? undefined : o, new Date().toISOString()).forEach(emit);
    });
    const onAbort = () => stream.abort();
    signal.addEventListener('abort', onAbort);
    const err = await stream.done;
    signal.removeEventListener('abort', onAbort);
    if (signal.aborted) return;
    if (stale || (err && isGone(err))) await relist(false);
    else if (err) await new Promise((r) => setTimeout(r, 500));
  }
}

/** `events [--since] [--until] [--filter] [--format]`: streams until interrupted or `--until`. */
export async function events(conn: Connection, flags: EventsFlags, out: (s: string) => void): Promise<number> {
  const now = Date.now();
  const at = (v: string) => {
    const s = toSince(v, now);
    return 'sinceSeconds' in s ? now - s.sinceSeconds * 1000 : Date.parse(s.sinceTime);
  };
  const sinceMs = flags.since ? at(flags.since) : undefined;
  const untilMs = flags.until ? at(flags.until) : undefined;
  const keep = eventFilter(flags.filter ?? []);
  const wantKinds = new Set((flags.filter ?? []).filter((f) => f.startsWith('type=')).map((f) => f.slice(5)));
  const ac = new AbortController();
  const emit = (e: BerthEvent) => {
    if (!keep(e)) return;
    if (untilMs !== undefined && Date.parse(e.time) > untilMs) return;
    out(flags.format ? renderFormat(flags.format, [eventFields(e)]) : formatEvent(e));
  };
  const timer = untilMs !== undefined ? setTimeout(() => ac.abort(), Math.max(0, untilMs - Date.now())) : undefined;
  const sources = SOURCES.filter((s) => !wantKinds.size || wantKinds.has(s.kind) || s.kind === 'event' || (s.kind === 'container' && wantKinds.has('network')));
  await Promise.all(sources.map((s) => follow(conn, s, sinceMs, emit, ac.signal).catch((err: unknown) => {
    if (!ac.signal.aborted) {
      ac.abort();
      throw err;
    }
  })));
  clearTimeout(timer);
  return 0;
}

/**
 * Merging several Compose files (`-f a.yaml -f b.yaml`, `COMPOSE_FILE`, or
 * `compose.yaml` + `compose.override.yaml`) into one document, by the rules of the
 * Compose specification's merge section (as `docker compose` applies them):
 *
 * - mappings merge key by key, recursively; a scalar (or a value of another shape)
 *   in a later file replaces the earlier one; `null` adds nothing;
 * - `command`, `entrypoint` and `healthcheck.test` are replaced, never appended;
 * - the "list or mapping" attributes (`environment`, `labels`, `build.args`,
 *   `sysctls`, `annotations`, network and volume `labels`) merge by variable name,
 *   whichever form each file uses; `depends_on` and a service's `networks` merge by
 *   name (a list means defaults); `build: DIR` means `build: {context: DIR}`;
 * - `ports` (by host IP, published port, target and protocol) and `volumes` (by
 *   target) append the later entries and replace an earlier entry with the same key;
 *   `env_file`, `tmpfs`, `dns`, `expose` append what is new; other lists append;
 * - `!reset` drops the value (and what earlier files said), `!override` replaces it
 *   without merging.
 *
 * Pure: works on interpolated documents; markers are `Tagged` values.
 */
import { Tagged } from './interpolate.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tagged);

/** `services.*.ports`-style patterns: `*` matches one key. */
const matches = (path: readonly string[], pattern: string): boolean => {
  const p = pattern.split('.');
  return p.length === path.length && p.every((k, i) => k === '*' || k === path[i]);
};
const anyOf = (path: readonly string[], patterns: readonly string[]): boolean => patterns.some((p) => matches(path, p));

const REPLACED = ['services.*.command', 'services.*.entrypoint', 'services.*.healthcheck.test'];
const LIST_OR_MAPPING = [
  'services.*.environment', 'services.*.labels', 'services.*.annotations', 'services.*.sysctls', 'services.*.build.args',
  'services.*.build.labels', 'services.*.deploy.labels', 'networks.*.labels', 'volumes.*.labels',
];
const NAMED_LIST = ['services.*.depends_on', 'services.*.networks'];
const APPEND_NEW = ['services.*.env_file', 'services.*.tmpfs', 'services.*.dns', 'services.*.dns_search', 'services.*.expose'];

/** `environment`-style list (`K=V`, `K`) or mapping → mapping (`K` alone → null, looked up later). */
function listToMapping(v: unknown): Obj {
  if (isObj(v)) return v;
  const out: Obj = {};
  for (const item of Array.isArray(v) ? v : []) {
    const s = String(item);
    const eq = s.indexOf('=');
    if (eq < 0) out[s] = null;
    else out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** `depends_on` / service `networks` list → mapping with the defaults of each entry. */
function namedListToMapping(v: unknown, path: readonly string[]): Obj {
  if (isObj(v)) return v;
  const dependsOn = path[path.length - 1] === 'depends_on';
  return Object.fromEntries((Array.isArray(v) ? v : []).map((n) => [String(n), dependsOn ? { condition: 'service_started' } : null]));
}

const PORT = /^(?:(?:(\[[^\]]+\]|[^:]*):)?(\d*):)?(\d+)(?:\/(tcp|udp))?$/i;

/** The uniqueness key of a `ports` entry: host IP, published port, target, protocol. */
export function portKey(p: unknown): string {
  if (isObj(p)) return [p.host_ip ?? '', p.published ?? '', p.target ?? '', String(p.protocol ?? 'tcp').toLowerCase()].map(String).join('|');
  const m = PORT.exec(String(p).trim());
  if (!m) return String(p);
  return [(m[1] ?? '').replace(/^\[|\]$/g, ''), m[2] ?? '', m[3], (m[4] ?? 'tcp').toLowerCase()].join('|');
}

/** The uniqueness key of a service `volumes` entry: its target path. */
export function volumeKey(v: unknown): string {
  if (isObj(v)) return String(v.target ?? '');
  const parts = String(v).split(':');
  return parts.length === 1 ? parts[0]! : parts[1]!;
}

const envFileKey = (v: unknown): string => (isObj(v) ? String(v.path ?? '') : String(v));
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

/** Appends `over` to `base`; an entry whose key is already there replaces it in place (or is dropped with `keepFirst`). */
function appendUnique(base: readonly unknown[], over: readonly unknown[], key: (v: unknown) => string, keepFirst = false): unknown[] {
  const out = [...base];
  for (const item of over) {
    const i = out.findIndex((x) => key(x) === key(item));
    if (i < 0) out.push(item);
    else if (!keepFirst) out[i] = item;
  }
  return out;
}

/** Resolves the markers of a value that has nothing to merge with: `!reset` → absent, `!override` → its value. */
function resolveTags(v: unknown): unknown {
  if (v instanceof Tagged) return v.tag === '!reset' ? undefined : resolveTags(v.value);
  if (Array.isArray(v)) return v.map(resolveTags).filter((x) => x !== undefined);
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      const r = resolveTags(x);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return v;
}

/** Merges the value `over` (later file) into `base` (earlier files) at `path`; `undefined` means "absent". */
function mergeAt(path: readonly string[], base: unknown, over: unknown): unknown {
  if (over instanceof Tagged) return over.tag === '!reset' ? undefined : resolveTags(over.value);
  if (base === undefined) return resolveTags(over);
  if (over === null || over === undefined) return base;
  if (anyOf(path, REPLACED)) return resolveTags(over);
  if (anyOf(path, LIST_OR_MAPPING)) return assignMapping(listToMapping(base), listToMapping(over));
  if (anyOf(path, NAMED_LIST)) return mergeMaps(path, namedListToMapping(base, path), namedListToMapping(over, path));
  if (matches(path, 'services.*.build')) {
    const ctx = (v: unknown) => (isObj(v) ? v : { context: v });
    return mergeMaps(path, ctx(base), ctx(over));
  }
  if (anyOf(path, APPEND_NEW)) return appendUnique(asList(base), asList(resolveTags(over)), path[2] === 'env_file' ? envFileKey : String, true);
  if (matches(path, 'services.*.ports') && Array.isArray(base) && Array.isArray(over)) return appendUnique(base, resolveTags(over) as unknown[], portKey);
  if (matches(path, 'services.*.volumes') && Array.isArray(base) && Array.isArray(over)) return appendUnique(base, resolveTags(over) as unknown[], volumeKey);
  if (matches(path, 'networks.*.ipam.config') && Array.isArray(base) && Array.isArray(over)) return appendUnique(base, resolveTags(over) as unknown[], (c) => (isObj(c) ? String(c.subnet ?? '') : String(c)));
  if (isObj(base) && isObj(over)) return mergeMaps(path, base, over);
  if (Array.isArray(base) && Array.isArray(over)) return [...base, ...(resolveTags(over) as unknown[])];
  return resolveTags(over);
}

/** `environment`-style merge: each name of `over` wins, even with no value (`K`: taken from the environment later). */
function assignMapping(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const r = resolveTags(v);
    if (r === undefined) delete out[k];
    else out[k] = r;
  }
  return out;
}

function mergeMaps(path: readonly string[], base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const merged = mergeAt([...path, k], base[k], v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/**
 * Merges Compose documents in order, each later one over the earlier ones (see the
 * module comment). With one document, only its `!reset`/`!override` markers are
 * resolved. Returns a new document; the inputs are not mutated.
 */
export function mergeComposeDocs(docs: readonly Record<string, unknown>[]): Record<string, unknown> {
  return docs.reduce<Obj>((acc, d) => mergeMaps([], acc, d), {});
}

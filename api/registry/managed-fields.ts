/**
 * Field ownership and server-side apply, after Kubernetes' structured-merge-diff
 * (simplified: no schema, so objects are always granular maps and lists are atomic
 * unless a `listMapKeys` hint says they are keyed). It computes
 * `metadata.managedFields` for every write, merges apply configurations into live
 * objects, removes fields an applier stopped applying, and reports ownership
 * conflicts with kube-apiserver's messages. Pure: no I/O, inputs never mutated.
 *
 * Field sets use the `FieldsV1` encoding: `{"f:spec":{"f:image":{}}}`; a keyed list
 * item is `k:{"name":"A"}`; `".": {}` marks a path that is itself a member and has
 * members below it.
 */
import { isDeepStrictEqual } from 'node:util';
import { ApiError, badRequest, type StatusCause } from '../errors.ts';

/** One `metadata.managedFields` entry, as kube-apiserver writes it. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  /** RFC 3339, UTC, whole seconds. */
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: object;
  subresource?: string;
}

/**
 * Says which lists are keyed ("map lists"): given the field names from the root to a
 * list (list items are not named, e.g. `['spec', 'env']`), returns the key fields of
 * its items (`['name']`), or `undefined` for an atomic list, owned as a whole.
 */
export type ListMapKeys = (path: readonly string[]) => readonly string[] | undefined;

/**
 * The schema defaults of a keyed list's key fields, by the same path as `ListMapKeys`: an
 * item that leaves a key field out is keyed with its default (`protocol: TCP`), as
 * structured-merge-diff does, so it matches the stored, defaulted item.
 */
export type ListMapKeyDefaults = (path: readonly string[]) => Readonly<Record<string, string | number | boolean>> | undefined;

/** Options shared by `serverSideApply` and `recordUpdate`. */
export interface OwnershipOptions {
  /** The field manager (`fieldManager`, or the name derived from the User-Agent). */
  readonly manager: string;
  /** `group/version` of the request, recorded in the entry. */
  readonly apiVersion: string;
  /** Time of the write, RFC 3339; fractions of a second are dropped. */
  readonly now: string;
  /** `status` for writes to the status subresource; recorded in the entry. */
  readonly subresource?: string;
  readonly listMapKeys?: ListMapKeys;
  readonly listMapKeyDefaults?: ListMapKeyDefaults;
  /**
   * Top-level fields nobody owns through this endpoint and that the write does not
   * change: default `['status']` for the main resource, `['spec']` for `status`.
   */
  readonly ignoreTopLevel?: readonly string[];
}

export interface ServerSideApplyOptions extends OwnershipOptions {
  /** The stored object, or `undefined` when the apply creates it. */
  readonly live: object | undefined;
  /** The apply configuration (the PATCH body), already parsed. */
  readonly applied: object;
  /** `force=true`: take conflicting fields from their other managers. */
  readonly force: boolean;
}

export interface RecordUpdateOptions extends OwnershipOptions {
  /** The stored object before the write, or `undefined` for a create. */
  readonly live: object | undefined;
  /** The object about to be stored (after patching, defaulting, resets). */
  readonly updated: object;
}

/** The annotation client-side `kubectl apply` keeps its last configuration in. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
const clone = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

function setOwn(o: JsonObject, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------
// Field sets: a tree of path elements (`f:name`, `k:{...}`), each node a member or not.

interface FieldNode {
  member: boolean;
  children: Map<string, FieldNode>;
}

const newNode = (member = false): FieldNode => ({ member, children: new Map() });
const isEmptySet = (n: FieldNode): boolean => !n.member && n.children.size === 0;

function child(n: FieldNode, pe: string): FieldNode {
  let c = n.children.get(pe);
  if (!c) n.children.set(pe, (c = newNode()));
  return c;
}

function insertPath(root: FieldNode, pes: readonly string[]): void {
  let n = root;
  for (const pe of pes) n = child(n, pe);
  n.member = true;
}

/** Drops nodes that are neither members nor lead to one. Mutates `n`. */
function pruneEmpty(n: FieldNode): FieldNode {
  for (const [k, c] of n.children) if (isEmptySet(pruneEmpty(c))) n.children.delete(k);
  return n;
}

function combine(a: FieldNode | undefined, b: FieldNode | undefined, member: (a: boolean, b: boolean) => boolean): FieldNode {
  const out = newNode(member(a?.member ?? false, b?.member ?? false));
  const keys = new Set([...(a?.children.keys() ?? []), ...(b?.children.keys() ?? [])]);
  for (const k of keys) {
    const c = combine(a?.children.get(k), b?.children.get(k), member);
    if (!isEmptySet(c)) out.children.set(k, c);
  }
  return out;
}

const union = (a: FieldNode, b: FieldNode): FieldNode => combine(a, b, (x, y) => x || y);
const difference = (a: FieldNode, b: FieldNode): FieldNode => combine(a, b, (x, y) => x && !y);
const intersection = (a: FieldNode, b: FieldNode): FieldNode => combine(a, b, (x, y) => x && y);

/** `a` without every path that is, or lies below, a member of `roots`. */
function removeBelow(a: FieldNode, roots: FieldNode): FieldNode {
  if (roots.member) return newNode();
  const out = newNode(a.member);
  for (const [k, c] of a.children) {
    const r = roots.children.get(k);
    const kept = r ? removeBelow(c, r) : c;
    if (!isEmptySet(kept)) out.children.set(k, kept);
  }
  return out;
}

function equalSets(a: FieldNode, b: FieldNode): boolean {
  if (a.member !== b.member || a.children.size !== b.children.size) return false;
  for (const [k, c] of a.children) {
    const d = b.children.get(k);
    if (!d || !equalSets(c, d)) return false;
  }
  return true;
}

/** Path-element order of structured-merge-diff: field names before keys, each sorted. */
function comparePe(a: string, b: string): number {
  const rank = (pe: string) => 'fkvi'.indexOf(pe[0]!);
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

const sortedChildren = (n: FieldNode): [string, FieldNode][] => [...n.children].sort(([a], [b]) => comparePe(a, b));

/** Member paths in structured-merge-diff's iteration order: a node's members, then its subtrees. */
function memberPaths(n: FieldNode, prefix: string[] = [], out: string[][] = []): string[][] {
  const kids = sortedChildren(n);
  for (const [pe, c] of kids) if (c.member) out.push([...prefix, pe]);
  for (const [pe, c] of kids) if (c.children.size) memberPaths(c, [...prefix, pe], out);
  return out;
}

// Path elements start with `f:`, `k:`, `v:` or `i:`, so they are never `__proto__`: plain assignment is safe.
function toFieldsV1(root: FieldNode): object {
  const enc = (n: FieldNode): JsonObject => {
    const o: JsonObject = {};
    if (n.member && n.children.size) o['.'] = {};
    for (const [pe, c] of sortedChildren(n)) o[pe] = enc(c);
    return o;
  };
  const out: JsonObject = {};
  for (const [pe, c] of sortedChildren(root)) out[pe] = enc(c);
  return out;
}

/** Parses `FieldsV1`; `undefined` when it is not a well-formed field set. */
function fromFieldsV1(v: unknown): FieldNode | undefined {
  const dec = (o: unknown, top: boolean): FieldNode | undefined => {
    if (!isObject(o)) return undefined;
    const keys = Object.keys(o);
    const n = newNode(!top && (keys.length === 0 || keys.includes('.')));
    for (const k of keys) {
      if (k === '.') {
        if (top || !isObject(o[k])) return undefined;
        continue;
      }
      if (!/^[fkvi]:/.test(k)) return undefined;
      const c = dec(o[k], false);
      if (!c) return undefined;
      n.children.set(k, c);
    }
    return n;
  };
  return dec(v ?? {}, true);
}

/** The key fields of a `k:{...}` path element; `undefined` when it is not valid JSON. */
function parseKey(pe: string): JsonObject | undefined {
  try {
    const v: unknown = JSON.parse(pe.slice(2));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Go's `value.ToString` for a key value: strings quoted, the rest as JSON. */
const keyValueText = (v: unknown): string => JSON.stringify(v);

/** A path as kube prints it in conflicts: `.spec.env[name="A"].value`. */
function pathText(pes: readonly string[]): string {
  return pes
    .map((pe) => {
      const body = pe.slice(2);
      switch (pe[0]) {
        case 'f':
          return `.${body}`;
        case 'k': {
          const key = parseKey(pe);
          if (!key) return `[${body}]`;
          return `[${Object.entries(key)
            .map(([k, v]) => `${k}=${keyValueText(v)}`)
            .join(',')}]`;
        }
        case 'v':
          return `[=${body}]`;
        default:
          return `[${body}]`;
      }
    })
    .join('');
}

// ---------------------------------------------------------------------------
// Walking values: objects are granular, hinted lists keyed, everything else a leaf.

interface Loc {
  /** Path elements from the root, for field sets. */
  readonly pes: readonly string[];
  /** Field names only, for the `listMapKeys` hint. */
  readonly names: readonly string[];
}

const ROOT: Loc = { pes: [], names: [] };
const fieldLoc = (l: Loc, k: string): Loc => ({ pes: [...l.pes, `f:${k}`], names: [...l.names, k] });
const itemLoc = (l: Loc, key: string): Loc => ({ pes: [...l.pes, key], names: l.names });

interface Ctx {
  readonly listMapKeys?: ListMapKeys | undefined;
  readonly listMapKeyDefaults?: ListMapKeyDefaults | undefined;
}

interface IndexedList {
  /** Item keys (`k:{...}`) in list order. */
  readonly order: string[];
  readonly items: Map<string, JsonObject>;
}

const invalidApply = (pes: readonly string[], detail: string): ApiError => {
  const field = pathText(pes);
  const message = `failed to create typed patch object: ${field}: ${detail}`;
  return new ApiError('Invalid', 422, message, { causes: [{ reason: 'FieldValueInvalid', message: detail, field }] });
};

/**
 * Indexes a keyed list by its items' key fields (`k:{"name":"A"}`, key fields sorted;
 * a key field an item lacks takes its default, else is left out of its key). Returns `undefined` for an atomic
 * list: no hint, or (when not `strict`) items that cannot be keyed or repeat a key.
 * @throws ApiError 422 in `strict` mode (apply configurations) for unkeyable items or duplicate keys.
 */
function indexList(list: readonly unknown[], loc: Loc, ctx: Ctx, strict: boolean): IndexedList | undefined {
  const keyFields = ctx.listMapKeys?.(loc.names);
  if (!keyFields || keyFields.length === 0) return undefined;
  const defaults = ctx.listMapKeyDefaults?.(loc.names);
  const keyValue = (item: JsonObject, k: string): unknown => item[k] ?? defaults?.[k];
  const order: string[] = [];
  const items = new Map<string, JsonObject>();
  for (const item of list) {
    if (!isObject(item)) {
      if (strict) throw invalidApply(loc.pes, `expected an object with key fields ${keyFields.join(', ')}, got ${JSON.stringify(item)}`);
      return undefined;
    }
    let key: string;
    const only = keyFields.length === 1 ? keyValue(item, keyFields[0]!) : undefined;
    if (typeof only === 'string' || typeof only === 'number' || typeof only === 'boolean') {
      // The common case, one key field: the JSON text of the one-member object, directly.
      key = `k:{${JSON.stringify(keyFields[0])}:${JSON.stringify(only)}}`;
    } else {
      const present = [...keyFields].filter((k) => ['string', 'number', 'boolean'].includes(typeof keyValue(item, k))).sort();
      if (present.length === 0) {
        if (strict) throw invalidApply(loc.pes, `associative list with keys has an element that omits all key fields ${JSON.stringify(keyFields)}`);
        return undefined;
      }
      key = `k:${JSON.stringify(Object.fromEntries(present.map((k) => [k, keyValue(item, k)])))}`;
    }
    if (items.has(key)) {
      if (strict) throw invalidApply(loc.pes, `duplicate entries for key ${pathText([key])}`);
      return undefined;
    }
    order.push(key);
    items.set(key, item);
  }
  return { order, items };
}

/**
 * Adds the field paths of `v` (at `loc`) below `n`. `apply` mode is structured-merge-diff's
 * `ToFieldSet`: leaves and list items. `added` mode also makes non-empty objects and keyed
 * lists members, as its `Compare` reports a newly added map.
 */
function addPaths(v: unknown, loc: Loc, ctx: Ctx, n: FieldNode, mode: 'apply' | 'added', strict: boolean): void {
  if (isObject(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (mode === 'added' && entries.length) n.member = true;
    for (const [k, x] of entries) addPaths(x, fieldLoc(loc, k), ctx, child(n, `f:${k}`), mode, strict);
    return;
  }
  const idx = Array.isArray(v) ? indexList(v, loc, ctx, strict) : undefined;
  if (idx) {
    if (mode === 'added' && idx.order.length) n.member = true;
    for (const key of idx.order) {
      const c = child(n, key);
      c.member = true;
      addPaths(idx.items.get(key), itemLoc(loc, key), ctx, c, mode, strict);
    }
    return;
  }
  n.member = true;
}

/** Merges an apply configuration into a live value: objects by key, keyed lists by item, the rest replaced. */
function merge(l: unknown, r: unknown, loc: Loc, ctx: Ctx): unknown {
  if (isObject(l) && isObject(r)) {
    const out = clone(l);
    for (const [k, v] of Object.entries(r)) setOwn(out, k, hasOwn(l, k) ? merge(l[k], v, fieldLoc(loc, k), ctx) : clone(v));
    return out;
  }
  if (Array.isArray(l) && Array.isArray(r)) {
    const li = indexList(l, loc, ctx, false);
    const ri = li && indexList(r, loc, ctx, false);
    if (li && ri) return mergeKeyedLists(li, ri, loc, ctx);
  }
  return clone(r);
}

/** structured-merge-diff's ordering: live order, with applied items placed in applied order. */
function mergeKeyedLists(lhs: IndexedList, rhs: IndexedList, loc: Loc, ctx: Ctx): unknown[] {
  const out: unknown[] = [];
  const mergeItem = (key: string) => {
    const l = lhs.items.get(key);
    const r = rhs.items.get(key)!;
    out.push(l ? merge(l, r, itemLoc(loc, key), ctx) : clone(r));
  };
  const shared = rhs.order.filter((k) => lhs.items.has(k));
  let nextShared = shared.shift();
  const merged = new Set<string>();
  let lI = 0;
  let rI = 0;
  while (lI < lhs.order.length || rI < rhs.order.length) {
    if (lI < lhs.order.length && rI < rhs.order.length) {
      const pe = lhs.order[lI]!;
      if (pe === rhs.order[rI]) {
        merged.add(pe);
        mergeItem(pe);
        lI++;
        rI++;
        nextShared = shared.shift();
        continue;
      }
      if (rhs.items.has(pe) && nextShared !== undefined && nextShared !== pe) {
        lI++;
        continue;
      }
    }
    if (lI < lhs.order.length) {
      const pe = lhs.order[lI]!;
      if (!rhs.items.has(pe)) {
        out.push(clone(lhs.items.get(pe)));
        lI++;
        continue;
      }
      if (merged.has(pe)) {
        lI++;
        continue;
      }
    }
    if (rI < rhs.order.length) {
      const pe = rhs.order[rI]!;
      merged.add(pe);
      mergeItem(pe);
      rI++;
      if (nextShared === pe) nextShared = shared.shift();
    }
  }
  return out;
}

interface Comparison {
  readonly added: FieldNode;
  readonly modified: FieldNode;
  /** Roots of removed subtrees. */
  readonly removed: FieldNode;
}

/** What changed from `l` to `r` (both present at `loc`), as structured-merge-diff's `Compare`. */
function compareValues(l: unknown, r: unknown, loc: Loc, ctx: Ctx, acc: Comparison): void {
  if (isObject(l) && isObject(r)) {
    for (const k of new Set([...Object.keys(l), ...Object.keys(r)])) {
      const lh = hasOwn(l, k) && l[k] !== undefined;
      const rh = hasOwn(r, k) && r[k] !== undefined;
      const c = fieldLoc(loc, k);
      if (lh && rh) compareValues(l[k], r[k], c, ctx, acc);
      else if (rh) addPaths(r[k], c, ctx, nodeAt(acc.added, c.pes), 'added', false);
      else if (lh) insertPath(acc.removed, c.pes);
    }
    return;
  }
  const li = Array.isArray(l) ? indexList(l, loc, ctx, false) : undefined;
  const ri = Array.isArray(r) ? indexList(r, loc, ctx, false) : undefined;
  if (li && ri) {
    for (const key of new Set([...li.order, ...ri.order])) {
      const c = itemLoc(loc, key);
      const a = li.items.get(key);
      const b = ri.items.get(key);
      if (a && b) compareValues(a, b, c, ctx, acc);
      else if (b) addPaths(b, c, ctx, nodeAt(acc.added, c.pes), 'added', false);
      else insertPath(acc.removed, c.pes);
    }
    return;
  }
  if (l === r || ((typeof l === 'object' || typeof r === 'object') && isDeepStrictEqual(l, r))) return;
  insertPath(acc.modified, loc.pes);
  // A change of shape: the old structure's fields are gone, the new one's are added.
  if (isObject(l)) for (const k of Object.keys(l)) insertPath(acc.removed, fieldLoc(loc, k).pes);
  if (li) for (const key of li.order) insertPath(acc.removed, itemLoc(loc, key).pes);
  if (isObject(r) || ri) addPaths(r, loc, ctx, nodeAt(acc.added, loc.pes), 'added', false);
}

function nodeAt(root: FieldNode, pes: readonly string[]): FieldNode {
  let n = root;
  for (const pe of pes) n = child(n, pe);
  return n;
}

function compareObjects(l: JsonObject, r: JsonObject, ctx: Ctx): Comparison {
  const acc: Comparison = { added: newNode(), modified: newNode(), removed: newNode() };
  compareValues(l, r, ROOT, ctx, acc);
  return { added: pruneEmpty(acc.added), modified: pruneEmpty(acc.modified), removed: pruneEmpty(acc.removed) };
}

/**
 * Removes from `v` (in place) what the applier owned last time (`last`) and owns no
 * more, unless someone else, or the new configuration, still owns it (`keep`).
 * A path is owned when it, or a path below it, is a member.
 */
function pruneValue(v: unknown, last: FieldNode, keep: FieldNode, loc: Loc, ctx: Ctx): void {
  if (isObject(v)) {
    for (const k of Object.keys(v)) {
      const l = last.children.get(`f:${k}`);
      if (!l) continue;
      const kp = keep.children.get(`f:${k}`);
      if (!kp) delete v[k];
      else pruneValue(v[k], l, kp, fieldLoc(loc, k), ctx);
    }
    return;
  }
  if (!Array.isArray(v)) return;
  const idx = indexList(v, loc, ctx, false);
  if (!idx) return;
  const out: unknown[] = [];
  for (const key of idx.order) {
    const item = idx.items.get(key)!;
    const l = last.children.get(key);
    const kp = keep.children.get(key);
    if (l && !kp) continue;
    if (l && kp) pruneValue(item, l, kp, itemLoc(loc, key), ctx);
    out.push(item);
  }
  v.splice(0, v.length, ...out);
}

/** The value at a field-set path, if there is one. */
function valueAt(v: unknown, pes: readonly string[]): { found: boolean; value?: unknown } {
  let cur = v;
  for (const pe of pes) {
    if (pe.startsWith('f:')) {
      const k = pe.slice(2);
      if (!isObject(cur) || !hasOwn(cur, k)) return { found: false };
      cur = cur[k];
    } else if (pe.startsWith('k:') && Array.isArray(cur)) {
      const key = parseKey(pe);
      if (!key) return { found: false };
      const item: unknown = cur.find((it) => isObject(it) && Object.entries(key).every(([k, x]) => it[k] === x));
      if (item === undefined) return { found: false };
      cur = item;
    } else return { found: false };
  }
  return { found: true, value: cur };
}

// ---------------------------------------------------------------------------
// Ignored fields and managers.

const META_IGNORED = [
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
];

const defaultIgnored = (subresource: string | undefined): readonly string[] => (subresource === 'status' ? ['spec'] : ['status']);

/** Roots of the paths no manager owns: type meta, server-set metadata, the ignored top-level fields. */
function ignoredRoots(top: readonly string[]): FieldNode {
  const n = newNode();
  for (const f of ['apiVersion', 'kind', ...top]) insertPath(n, [`f:${f}`]);
  for (const f of META_IGNORED) insertPath(n, ['f:metadata', `f:${f}`]);
  return n;
}

/** `s` without ignored paths, and without `metadata` itself as a member (kube's stripMeta). */
function stripIgnored(s: FieldNode, roots: FieldNode): FieldNode {
  const out = removeBelow(s, roots);
  const meta = out.children.get('f:metadata');
  if (meta?.member) {
    const m = { member: false, children: meta.children };
    if (isEmptySet(m)) out.children.delete('f:metadata');
    else out.children.set('f:metadata', m);
  }
  return out;
}

interface Manager {
  readonly manager: string;
  readonly operation: 'Apply' | 'Update';
  readonly apiVersion: string;
  readonly subresource: string | undefined;
  time: string | undefined;
  set: FieldNode;
  /** The entry as read, reused while the set is unchanged. */
  original: JsonObject | undefined;
}

/** Managers are told apart as kube does: name, operation, subresource, and apiVersion for Update. */
const sameManager = (m: Manager, manager: string, operation: 'Apply' | 'Update', subresource: string | undefined, apiVersion: string): boolean =>
  m.manager === manager && m.operation === operation && (m.subresource ?? '') === (subresource ?? '') && (operation === 'Apply' || m.apiVersion === apiVersion);

/** Reads `managedFields`; `undefined` when it is not a list of valid entries. Empty entries are dropped. */
function decodeManaged(v: unknown): Manager[] | undefined {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return undefined;
  const out: Manager[] = [];
  for (const e of v) {
    if (!isObject(e)) return undefined;
    if (e.fieldsType !== undefined && e.fieldsType !== 'FieldsV1') return undefined;
    const set = fromFieldsV1(e.fieldsV1);
    if (!set) return undefined;
    pruneEmpty(set);
    if (isEmptySet(set)) continue;
    if (e.operation !== 'Apply' && e.operation !== 'Update') return undefined;
    const m: Manager = {
      manager: typeof e.manager === 'string' ? e.manager : '',
      operation: e.operation,
      apiVersion: typeof e.apiVersion === 'string' ? e.apiVersion : '',
      subresource: typeof e.subresource === 'string' && e.subresource ? e.subresource : undefined,
      time: typeof e.time === 'string' ? e.time : undefined,
      set,
      original: e,
    };
    const dup = out.find((o) => sameManager(o, m.manager, m.operation, m.subresource, m.apiVersion));
    if (dup) {
      dup.set = union(dup.set, set);
      dup.original = undefined;
    } else out.push(m);
  }
  return out;
}

/** Writes entries in kube's order: Apply before Update, then oldest first, then by name. */
function encodeManaged(ms: readonly Manager[]): ManagedFieldsEntry[] {
  const seconds = (t: string | undefined) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return ms
    .filter((m) => !isEmptySet(m.set))
    .sort(
      (a, b) =>
        cmp(a.operation, b.operation) ||
        seconds(a.time) - seconds(b.time) ||
        cmp(a.manager, b.manager) ||
        cmp(a.apiVersion, b.apiVersion) ||
        cmp(a.subresource ?? '', b.subresource ?? ''),
    )
    .map((m): ManagedFieldsEntry => {
      if (m.original) return clone(m.original) as unknown as ManagedFieldsEntry;
      const e: ManagedFieldsEntry = {
        manager: m.manager,
        operation: m.operation,
        apiVersion: m.apiVersion,
        time: m.time ?? '',
        fieldsType: 'FieldsV1',
        fieldsV1: toFieldsV1(m.set),
      };
      if (m.subresource) e.subresource = m.subresource;
      return e;
    });
}

/** Replaces a manager's set, forgetting the entry as read when the set changed. */
function setManagerSet(m: Manager, set: FieldNode): void {
  if (!equalSets(m.set, set)) {
    m.set = set;
    m.original = undefined;
  }
}

/** kube's `printManager`: `"x"` for appliers, `"x" using v1` for updaters, with the subresource if any. */
function printManager(m: Manager): string {
  let s = JSON.stringify(m.manager);
  if (m.subresource) s += ` with subresource ${JSON.stringify(m.subresource)}`;
  if (m.operation === 'Update') s += ` using ${m.apiVersion}`;
  return s;
}

interface Conflict {
  readonly owner: Manager;
  readonly pes: readonly string[];
}

/** kube's `NewConflictError`: one line for one conflict, grouped by manager otherwise. */
function conflictError(conflicts: readonly Conflict[]): ApiError {
  const causes: StatusCause[] = conflicts.map((c) => ({
    type: 'FieldManagerConflict',
    message: `conflict with ${printManager(c.owner)}`,
    field: pathText(c.pes),
  }));
  let message: string;
  if (conflicts.length === 1) message = `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0]!.owner)}: ${pathText(conflicts[0]!.pes)}`;
  else {
    const lines: string[] = [];
    let prev: Manager | undefined;
    for (const c of conflicts) {
      if (c.owner !== prev) lines.push(`conflicts with ${printManager(c.owner)}:`);
      prev = c.owner;
      lines.push(`- ${pathText(c.pes)}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError('Conflict', 409, message, { causes });
}

/** RFC 3339 in UTC without fractions; text that is not a date is kept as is. */
function rfc3339(t: string): string {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The object without `metadata.managedFields`: a shallow copy (and of `metadata`) that
 * shares everything else with `o`, so callers must not mutate it below the top level.
 */
function bare(o: object | undefined): JsonObject {
  if (!isObject(o)) return {};
  if (!isObject(o.metadata) || !hasOwn(o.metadata, 'managedFields')) return o;
  const { managedFields: _, ...metadata } = o.metadata;
  return { ...o, metadata };
}

/** Drops `null` members of objects: in an apply configuration, `null` means "not applied". */
function dropNulls(v: unknown): unknown {
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) setOwn(out, k, dropNulls(x));
  return out;
}

/** JSON with object keys sorted, as Go encodes maps. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

const byManager = (a: Conflict, b: Conflict): number => {
  const ka = [a.owner.manager, a.owner.operation, a.owner.apiVersion, a.owner.subresource ?? ''];
  const kb = [b.owner.manager, b.owner.operation, b.owner.apiVersion, b.owner.subresource ?? ''];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return 0;
};

// ---------------------------------------------------------------------------
// Creates: the fields of a new object, straight to FieldsV1.

/**
 * `FieldsV1` of the node at `loc` holding `v`, as `addPaths(v, …, 'added')` then
 * `toFieldsV1` would make it (`member` forces membership, as for keyed list items), or
 * undefined when that node would be empty and pruned.
 */
function addedFieldsV1(v: unknown, loc: Loc, ctx: Ctx, member: boolean): JsonObject | undefined {
  if (v === null || typeof v !== 'object') return {}; // a leaf: a member without members
  let children: JsonObject | undefined;
  let count = 0;
  if (!Array.isArray(v)) {
    const o = v as JsonObject;
    const keys: string[] = [];
    for (const k of Object.keys(o)) if (o[k] !== undefined) keys.push(k);
    if (keys.length) member = true;
    // Every path element here is `f:<name>`, so plain string order is `comparePe`'s order.
    keys.sort();
    for (const k of keys) {
      const x = o[k];
      const c = x !== null && typeof x === 'object' ? addedFieldsV1(x, fieldLoc(loc, k), ctx, false) : {};
      if (!c) continue;
      (children ??= {})[`f:${k}`] = c;
      count++;
    }
  } else {
    const idx = indexList(v, loc, ctx, false);
    if (idx) {
      if (idx.order.length) member = true;
      for (const key of [...idx.order].sort()) {
        (children ??= {})[key] = addedFieldsV1(idx.items.get(key), itemLoc(loc, key), ctx, true)!;
        count++;
      }
    } else member = true;
  }
  if (!member && count === 0) return undefined;
  return member && count ? { '.': {}, ...children } : (children ?? {});
}

/**
 * What `recordUpdate` gives the creator of `obj` (no live object, no managedFields):
 * every field it set, without type meta, server-set metadata and the `top` fields;
 * undefined when that leaves nothing.
 */
function createdFieldsV1(obj: object, ctx: Ctx, top: readonly string[]): JsonObject | undefined {
  if (!isObject(obj)) return undefined;
  const out: JsonObject = {};
  let count = 0;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined && k !== 'apiVersion' && k !== 'kind' && !top.includes(k));
  for (const k of keys.sort()) {
    let c: JsonObject | undefined;
    const v = obj[k];
    if (k === 'metadata') {
      // Server-set metadata is nobody's, and metadata itself is no member (kube's stripMeta).
      if (!isObject(v)) continue;
      const kept: JsonObject = {};
      for (const mk of Object.keys(v)) if (v[mk] !== undefined && !META_IGNORED.includes(mk)) setOwn(kept, mk, v[mk]);
      const m = addedFieldsV1(kept, fieldLoc(ROOT, k), ctx, false);
      if (!m) continue;
      delete m['.'];
      if (Object.keys(m).length === 0) continue;
      c = m;
    } else c = addedFieldsV1(v, fieldLoc(ROOT, k), ctx, false);
    if (!c) continue;
    out[`f:${k}`] = c;
    count++;
  }
  return count ? out : undefined;
}

// ---------------------------------------------------------------------------
// The two operations.

/**
 * Server-side apply (`PATCH` with `application/apply-patch+yaml`), as kube-apiserver's
 * field manager does it, and returns the new object with its `metadata.managedFields`:
 *
 * - the configuration is merged into the live object (objects by key, keyed lists by
 *   item, other lists and scalars replaced); `null` members of the configuration are
 *   treated as absent;
 * - the manager's Apply entry becomes exactly the configuration's fields; fields it
 *   applied last time and omits now are removed from the object unless another
 *   manager owns them (or something below them);
 * - a field another manager owns whose value this apply changes is a conflict; with
 *   `force` the applier takes it, otherwise nothing is written. Applying the value it
 *   already has is no conflict: the field is then shared;
 * - CSA→SSA: for manager `kubectl`, conflicts on fields whose live value equals the
 *   value in the live `last-applied-configuration` annotation are forced; and when the
 *   result carries that annotation, it is rewritten to the applied configuration
 *   (sorted JSON + "\n", without the annotation itself);
 * - the `ignoreTopLevel` fields (default `status`, or `spec` for the status subresource)
 *   are owned by nobody here and keep their live value (absent on create).
 *
 * The entry's time changes only when the object or the applier's fields change, so a
 * repeated apply returns the live object unchanged.
 *
 * @throws ApiError 409 Conflict `Apply failed with 1 conflict: conflict with "x" using v1: .spec.image`,
 *   with one `FieldManagerConflict` cause per field.
 * @throws ApiError 400 when the configuration carries `metadata.managedFields` or another apiVersion.
 * @throws ApiError 422 when a keyed list in the configuration repeats a key or has unkeyable items.
 */
export function serverSideApply(opts: ServerSideApplyOptions): object {
  const ctx: Ctx = { listMapKeys: opts.listMapKeys, listMapKeyDefaults: opts.listMapKeyDefaults };
  const applied = opts.applied as JsonObject;
  if (!isObject(applied)) throw badRequest('the apply configuration must be an object');
  const appliedMeta = applied.metadata;
  if (isObject(appliedMeta) && appliedMeta.managedFields !== undefined && appliedMeta.managedFields !== null)
    throw badRequest('metadata.managedFields must be nil in an apply configuration');
  if (typeof applied.apiVersion === 'string' && applied.apiVersion !== opts.apiVersion)
    throw badRequest(`Incorrect version specified in apply patch. Specified patch version: ${applied.apiVersion}, expected: ${opts.apiVersion}`);

  const top = opts.ignoreTopLevel ?? defaultIgnored(opts.subresource);
  const roots = ignoredRoots(top);
  const now = rfc3339(opts.now);
  const live = bare(opts.live);
  const config = dropNulls(applied) as JsonObject;

  const newSet = newNode();
  addPaths(config, ROOT, ctx, newSet, 'apply', true);
  const applierSet = stripIgnored(pruneEmpty(newSet), roots);

  const managers = opts.live ? (decodeManaged((opts.live as JsonObject & { metadata?: JsonObject }).metadata?.managedFields) ?? []) : [];
  let self = managers.find((m) => sameManager(m, opts.manager, 'Apply', opts.subresource, opts.apiVersion));
  const others = managers.filter((m) => m !== self);

  // Merge, then prune what this applier dropped from its configuration.
  const result = merge(live, config, ROOT, ctx) as JsonObject;
  if (self) {
    let keep = union(applierSet, roots);
    for (const m of others) keep = union(keep, m.set);
    pruneValue(result, self.set, keep, ROOT, ctx);
  }
  for (const f of top) {
    if (hasOwn(live, f)) setOwn(result, f, clone(live[f]));
    else delete result[f];
  }

  // Conflicts: fields of other managers whose value changes.
  const cmp = compareObjects(live, result, ctx);
  const changed = removeBelow(union(cmp.added, cmp.modified), roots);
  const removed = removeBelow(cmp.removed, roots);
  let conflicts: Conflict[] = [];
  for (const m of others) for (const pes of memberPaths(intersection(m.set, changed))) conflicts.push({ owner: m, pes });
  conflicts.sort(byManager);
  let force = opts.force;
  if (conflicts.length && !force && opts.manager === 'kubectl') {
    const lastApplied = parseLastApplied(live);
    if (lastApplied) {
      conflicts = conflicts.filter((c) => {
        const a = valueAt(lastApplied, c.pes);
        const b = valueAt(live, c.pes);
        return !(a.found && b.found && isDeepStrictEqual(a.value, b.value));
      });
      force = conflicts.length === 0;
    }
  }
  if (conflicts.length && !force) throw conflictError(conflicts);

  for (const m of others) setManagerSet(m, removeBelow(difference(m.set, changed), removed));
  const objectChanged = !isDeepStrictEqual(live, result);
  if (!self) {
    self = { manager: opts.manager, operation: 'Apply', apiVersion: opts.apiVersion, subresource: opts.subresource || undefined, time: now, set: applierSet, original: undefined };
  } else if (objectChanged || !equalSets(self.set, applierSet) || self.apiVersion !== opts.apiVersion) {
    self = { ...self, apiVersion: opts.apiVersion, time: now, set: applierSet, original: undefined };
  }
  const entries = encodeManaged([self, ...others]);
  const meta = isObject(result.metadata) ? result.metadata : (result.metadata = {});
  if (entries.length) meta.managedFields = entries;
  else delete meta.managedFields;

  if (opts.manager === 'kubectl') {
    const annotations = meta.annotations;
    if (isObject(annotations) && typeof annotations[LAST_APPLIED_ANNOTATION] === 'string' && annotations[LAST_APPLIED_ANNOTATION] !== '') {
      const cfg = clone(applied);
      const cfgAnnotations = isObject(cfg.metadata) ? cfg.metadata.annotations : undefined;
      if (isObject(cfgAnnotations)) delete cfgAnnotations[LAST_APPLIED_ANNOTATION];
      annotations[LAST_APPLIED_ANNOTATION] = `${sortedJson(cfg)}\n`;
    }
  }
  return result;
}

function parseLastApplied(live: JsonObject): JsonObject | undefined {
  const meta = live.metadata;
  const text = isObject(meta) && isObject(meta.annotations) ? meta.annotations[LAST_APPLIED_ANNOTATION] : undefined;
  if (typeof text !== 'string' || text === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Ownership after a create, update (PUT), merge patch or JSON patch by `manager`
 * (operation `Update`), and returns the new `managedFields` (possibly empty):
 * every field whose value was added or changed moves to the manager's Update entry and
 * leaves every other entry; removed fields leave every entry; entries left empty are
 * dropped. The manager's entry gets time `now` only if it took fields.
 *
 * As kube does, when `updated` carries a non-empty, well-formed `metadata.managedFields`
 * that is used as the starting point instead of the live one (a client may rewrite or,
 * with `[{}]`, reset ownership), except on subresources.
 */
export function recordUpdate(opts: RecordUpdateOptions): ManagedFieldsEntry[] {
  const ctx: Ctx = { listMapKeys: opts.listMapKeys, listMapKeyDefaults: opts.listMapKeyDefaults };
  const top = opts.ignoreTopLevel ?? defaultIgnored(opts.subresource);
  const roots = ignoredRoots(top);
  const metaOf = (o: object | undefined): JsonObject | undefined => (isObject(o) && isObject(o.metadata) ? o.metadata : undefined);

  const sent = metaOf(opts.updated)?.managedFields;
  let managers = !opts.subresource && Array.isArray(sent) && sent.length ? decodeManaged(sent) : undefined;
  managers ??= decodeManaged(metaOf(opts.live)?.managedFields) ?? [];

  if (opts.live === undefined && managers.length === 0) {
    // A create without managedFields: the creator owns every field it set. Same result
    // as the general path below, computed in one walk without building field sets.
    const fieldsV1 = createdFieldsV1(opts.updated, ctx, top);
    if (!fieldsV1) return [];
    const e: ManagedFieldsEntry = { manager: opts.manager, operation: 'Update', apiVersion: opts.apiVersion, time: rfc3339(opts.now), fieldsType: 'FieldsV1', fieldsV1 };
    if (opts.subresource) e.subresource = opts.subresource;
    return [e];
  }

  const cmp = compareObjects(bare(opts.live), bare(opts.updated), ctx);
  const changed = stripIgnored(union(cmp.added, cmp.modified), roots);
  const removed = removeBelow(cmp.removed, roots);

  const self = managers.find((m) => sameManager(m, opts.manager, 'Update', opts.subresource, opts.apiVersion));
  for (const m of managers) setManagerSet(m, removeBelow(m === self ? m.set : difference(m.set, changed), removed));
  if (!isEmptySet(changed)) {
    if (self) {
      setManagerSet(self, union(self.set, changed));
      self.time = rfc3339(opts.now);
      self.original = undefined;
    } else {
      managers.push({
        manager: opts.manager,
        operation: 'Update',
        apiVersion: opts.apiVersion,
        subresource: opts.subresource || undefined,
        time: rfc3339(opts.now),
        set: changed,
        original: undefined,
      });
    }
  }
  return encodeManaged(managers);
}

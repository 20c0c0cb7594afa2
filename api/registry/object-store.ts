/**
 * The generic registry: Kubernetes object semantics on top of the revision log, for
 * every resource alike (apiserver's `genericregistry.Store`). It decodes and encodes
 * stored objects, assigns uid / resourceVersion / generation / timestamps, keeps spec
 * and status apart, validates against the schemas, records managedFields, and runs
 * deletion with finalizers. It knows nothing of HTTP: callers pass parsed objects and
 * options, and get objects back or an `ApiError`.
 */
import { randomUUID, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  notFound,
  type FieldError,
} from '../errors.ts';
import { isStoreError, type KeyValue, type RevisionLog, type WatchEvent } from '../../store/revision-log.ts';
import { apiVersionOf, findResource, RESOURCES, type KubeObjectLike, type ResourceInfo } from './resources.ts';
import { namespacePrefix, objectKey, resourcePrefix } from './keys.ts';
import { validateObjectMeta } from '../validation/object-meta.ts';
import { schemaValidator } from '../validation/schema-validator.ts';
import { applyJsonPatch, applyMergePatch } from './patch.ts';
import { recordUpdate, serverSideApply, type ListMapKeyDefaults, type ListMapKeys } from './managed-fields.ts';
import type { FieldSelector, LabelSelector } from './selectors.ts';
import { prepareSecret, type SecretLike } from './secrets.ts';
import { bindMountErrors } from './bind-mounts.ts';

/** How unknown fields in a write are treated (`fieldValidation` query parameter). */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** Options common to every write. */
export interface WriteOptions {
  /** `dryRun=All`: run everything, store nothing, emit no event. */
  readonly dryRun?: boolean;
  readonly fieldManager?: string;
  readonly fieldValidation?: FieldValidation;
  /** Used to name the field manager when `fieldManager` is absent, as kube-apiserver does. */
  readonly userAgent?: string;
  /** `status` for writes to the status subresource. */
  readonly subresource?: 'status';
}

/** The result of a write: the object as stored (or as it would be, for a dry run). */
export interface WriteResult {
  readonly object: KubeObjectLike;
  /** `object` as JSON text, when the write had it at hand (it stored it); saves encoding it again. */
  readonly json?: string;
  /** Texts for `Warning: 299 - "<text>"` headers. */
  readonly warnings: readonly string[];
}

/** Internal: managedFields were already computed (server-side apply). */
interface InternalWriteOptions extends WriteOptions {
  readonly managedFieldsDone?: boolean;
}

export type PatchType = 'merge' | 'json' | 'apply';

export interface PatchOptions extends WriteOptions {
  readonly type: PatchType;
  /** Server-side apply: take ownership of conflicting fields. */
  readonly force?: boolean;
}

export interface DeleteOptions {
  readonly dryRun?: boolean;
  readonly propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  readonly gracePeriodSeconds?: number;
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

/** The outcome of a delete: gone now, or marked and waiting for finalizers. */
export interface DeleteResult {
  readonly deleted: boolean;
  readonly object: KubeObjectLike;
}

export interface ListOptions {
  readonly labelSelector?: LabelSelector;
  readonly fieldSelector?: FieldSelector;
  readonly limit?: number;
  readonly continue?: string;
  /** With `resourceVersionMatch=Exact`, read at this revision; otherwise the latest. */
  readonly resourceVersion?: string;
  readonly resourceVersionMatch?: 'Exact' | 'NotOlderThan';
}

export interface ListResultOf<T> {
  readonly items: T[];
  readonly resourceVersion: string;
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

export type ListResult = ListResultOf<KubeObjectLike>;

/** A change to one object, decoded; `prev` is the object before the change. */
export interface ObjectEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObjectLike;
  readonly prev?: KubeObjectLike;
  readonly revision: number;
}

/** A change to one object, with the object as JSON text. */
export interface ObjectEventJson {
  readonly type: ObjectEvent['type'];
  readonly json: string;
  readonly revision: number;
}

/** JSON text of the values of store events, shared by the watchers that get the same event. */
const eventJson = new WeakMap<KeyValue, string>();

/** Finalizers the API server itself acts on (GC). */
export const FINALIZER_ORPHAN = 'orphan';
export const FINALIZER_FOREGROUND = 'foregroundDeletion';
/** The namespace finalizer in `spec.finalizers`, removed by the namespace controller. */
export const NAMESPACE_FINALIZER = 'kubernetes';

/**
 * The keyed lists of `r` for managed fields and server-side apply: those its schema marks
 * `x-kubernetes-list-type: map` (`keyed-lists.ts`), merged by key instead of replaced.
 */
function keyedListHints(r: ResourceInfo): { listMapKeys: ListMapKeys; listMapKeyDefaults: ListMapKeyDefaults } {
  const lists = schemaValidator().keyedLists(r.schema);
  return {
    listMapKeys: (path) => lists.get(path.join('.'))?.keys,
    listMapKeyDefaults: (path) => lists.get(path.join('.'))?.keyDefaults,
  };
}

const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

const NAMESPACE_RESOURCE = RESOURCES.find((x) => x.kind === 'Namespace')!;
const NAMESPACE_KEY_PREFIX = resourcePrefix(NAMESPACE_RESOURCE);

/** RFC 3339 in UTC without fractions, as Kubernetes writes timestamps. */
export const nowRfc3339 = (d: Date = new Date()): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

const clone = <T>(v: T): T => structuredClone(v);

/** Kubernetes' default field manager name: the User-Agent up to the first `/`. */
const managerFrom = (opts: WriteOptions): string => {
  if (opts.fieldManager) return opts.fieldManager;
  const ua = opts.userAgent ?? '';
  return ua.split('/')[0] || 'unknown';
};

/** A continue token: the revision of the first page and the key to start from. */
interface ContinueToken {
  readonly rv: number;
  readonly start: string;
}
const encodeContinue = (t: ContinueToken): string => Buffer.from(JSON.stringify(t)).toString('base64url');
const decodeContinue = (s: string): ContinueToken => {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as ContinueToken;
    if (typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('shape');
    return t;
  } catch {
    throw badRequest('continue key is not valid: illegal base64 data or JSON');
  }
};

export interface ObjectStoreDeps {
  readonly log: RevisionLog;
  readonly now?: () => Date;
  /** Host paths Containers may bind-mount (`bind-mounts.ts`); default none: every `bindMounts` entry is rejected with 422. */
  readonly allowedBindMountPaths?: readonly string[];
}

/** Kubernetes object semantics for every served resource over one revision log. */
export class ObjectStore {
  private readonly log: RevisionLog;
  private readonly now: () => Date;
  /** Whether each namespace read since the last namespace write is terminating. */
  private readonly namespaceStates = new Map<string, boolean>();
  /** Counts namespace writes, so that a read they overtook is not remembered. */
  private namespaceEpoch = 0;

  private readonly allowedBindMountPaths: readonly string[];

  constructor(deps: ObjectStoreDeps) {
    this.log = deps.log;
    this.now = deps.now ?? (() => new Date());
    this.allowedBindMountPaths = deps.allowedBindMountPaths ?? [];
  }

  /** The revision log underneath (for stats and the watch fan-out). */
  get revisionLog(): RevisionLog {
    return this.log;
  }

  /** Decodes a stored value; `resourceVersion` is the key's modRevision. */
  decode(kv: KeyValue): KubeObjectLike {
    const obj = JSON.parse(kv.value) as KubeObjectLike;
    (obj.metadata ??= {}).resourceVersion = String(kv.modRevision);
    return obj;
  }

  /**
   * A stored value as the JSON text of the object, with `resourceVersion` (the key's
   * modRevision): the text of `decode(kv)` up to key order and without re-encoding it.
   */
  json(kv: KeyValue): string {
    return withResourceVersion(kv.value, kv.modRevision) ?? JSON.stringify(this.decode(kv));
  }

  /** The stored form: no resourceVersion, and apiVersion, kind and metadata first (see `withResourceVersion`). */
  private encode(obj: KubeObjectLike): string {
    const { resourceVersion: _rv, ...metadata } = obj.metadata ?? {};
    const { apiVersion, kind, metadata: _m, ...rest } = obj;
    return JSON.stringify({ apiVersion, kind, metadata, ...rest });
  }

  private gr(r: ResourceInfo) {
    return { group: r.group, resource: r.plural };
  }

  /** Reads one object; 404 if absent. */
  async get(r: ResourceInfo, namespace: string, name: string): Promise<KubeObjectLike> {
    const kv = await this.log.get(objectKey(r, namespace, name));
    if (!kv) throw notFound(this.gr(r), name);
    return this.decode(kv);
  }

  /** Reads one object as JSON text (see `json`); 404 if absent. */
  async getJson(r: ResourceInfo, namespace: string, name: string): Promise<string> {
    const kv = await this.log.get(objectKey(r, namespace, name));
    if (!kv) throw notFound(this.gr(r), name);
    return this.json(kv);
  }

  /** Reads one object, or undefined. */
  async tryGet(r: ResourceInfo, namespace: string, name: string): Promise<KubeObjectLike | undefined> {
    const kv = await this.log.get(objectKey(r, namespace, name));
    return kv ? this.decode(kv) : undefined;
  }

  /** Lists objects of one resource in one namespace ('' = all), filtered and paged. */
  async list(r: ResourceInfo, namespace: string, opts: ListOptions = {}): Promise<ListResult> {
    const { labelSelector: ls, fieldSelector: fs } = opts;
    return this.scan(r, namespace, opts, (kv) => {
      const obj = this.decode(kv);
      if (ls && !ls.matches(obj.metadata?.labels)) return undefined;
      if (fs && !fs.matches(obj)) return undefined;
      return obj;
    });
  }

  /** `list`, with each item as JSON text (see `json`): no decoding unless a selector needs it. */
  async listJson(r: ResourceInfo, namespace: string, opts: ListOptions = {}): Promise<ListResultOf<string>> {
    const ls = opts.labelSelector && !opts.labelSelector.empty ? opts.labelSelector : undefined;
    const fs = opts.fieldSelector && !opts.fieldSelector.empty ? opts.fieldSelector : undefined;
    return this.scan(r, namespace, opts, (kv) => {
      if (ls || fs) {
        const obj = this.decode(kv);
        if (ls && !ls.matches(obj.metadata?.labels)) return undefined;
        if (fs && !fs.matches(obj)) return undefined;
      }
      return this.json(kv);
    });
  }

  /** Pages through the log for `list`; `item` maps a stored value to an item, or undefined to leave it out. */
  private async scan<T>(r: ResourceInfo, namespace: string, opts: ListOptions, item: (kv: KeyValue) => T | undefined): Promise<ListResultOf<T>> {
    const prefix = r.namespaced && namespace ? namespacePrefix(r, namespace) : resourcePrefix(r);
    const token = opts.continue ? decodeContinue(opts.continue) : undefined;
    let revision = token?.rv ?? 0;
    if (!token && opts.resourceVersion && opts.resourceVersionMatch === 'Exact') {
      revision = Number(opts.resourceVersion);
      if (!Number.isSafeInteger(revision) || revision <= 0) throw badRequest(`invalid resourceVersion: ${opts.resourceVersion}`);
    }
    const filtered = !!(opts.labelSelector && !opts.labelSelector.empty) || !!(opts.fieldSelector && !opts.fieldSelector.empty);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const items: T[] = [];
    let start = token?.start;
    let more = false;
    let remaining = 0;
    for (;;) {
      const chunk = limit ? Math.max(limit - items.length, filtered ? 500 : 0) : 0;
      const res = await this.list0(prefix, { revision, limit: chunk, startKey: start });
      revision = res.revision;
      let lastKey: string | undefined;
      let cut = false;
      for (const kv of res.items) {
        lastKey = kv.key;
        const obj = item(kv);
        if (obj === undefined) continue;
        items.push(obj);
        if (limit && items.length >= limit && kv !== res.items[res.items.length - 1]) {
          cut = true;
          break;
        }
      }
      if (cut) {
        more = true;
        start = `${lastKey}\u0000`;
        break;
      }
      if (!res.more) break;
      start = `${lastKey}\u0000`;
      if (limit && items.length >= limit) {
        more = true;
        remaining = res.remaining;
        break;
      }
    }
    const out: { -readonly [K in keyof ListResultOf<T>]: ListResultOf<T>[K] } = { items, resourceVersion: String(revision) };
    if (more && start) {
      out.continue = encodeContinue({ rv: revision, start });
      if (!filtered && remaining > 0) out.remainingItemCount = remaining;
    }
    return out;
  }

  private async list0(prefix: string, opts: { revision: number; limit: number; startKey: string | undefined }) {
    try {
      return await this.log.list(prefix, {
        ...(opts.revision ? { revision: opts.revision } : {}),
        ...(opts.limit ? { limit: opts.limit } : {}),
        ...(opts.startKey ? { startKey: opts.startKey } : {}),
      });
    } catch (e) {
      if (isStoreError(e, 'Compacted'))
        throw new ApiError('Expired', 410, `The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.`);
      throw e;
    }
  }

  /**
   * Creates an object; `body` is the decoded request body. The store takes `body` over:
   * it becomes the result object, so the caller must not use it afterwards.
   */
  async create(r: ResourceInfo, namespace: string, body: KubeObjectLike, opts: InternalWriteOptions = {}): Promise<WriteResult> {
    const obj = body;
    this.checkTypeMeta(r, obj);
    const meta = (obj.metadata ??= {});
    if (r.namespaced) {
      if (meta.namespace && meta.namespace !== namespace)
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = namespace;
    } else delete meta.namespace;
    if (!meta.name && !meta.generateName)
      throw invalid(r.group, r.kind, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    if (r.namespaced) await this.checkNamespaceWritable(namespace);

    const now = nowRfc3339(this.now());
    for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'selfLink'])
      delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = now;
    if (r.generationFrom) meta.generation = 1;
    if (r.hasStatus && r.kind !== 'Namespace') delete obj.status;
    if (r.kind === 'Namespace') {
      obj.spec = { ...(obj.spec ?? {}), finalizers: [NAMESPACE_FINALIZER] };
      obj.status = { phase: 'Active' };
    }
    if (r.kind === 'Secret') {
      const errs = prepareSecret(obj as SecretLike);
      if (errs.length) throw invalid(r.group, r.kind, meta.name ?? meta.generateName ?? '', errs);
    }
    schemaValidator().applyDefaults(r.schema, obj);
    const warnings = this.validate(r, obj, meta.name ?? meta.generateName ?? '', opts);
    this.admitBindMounts(r, obj, undefined, meta.name ?? meta.generateName ?? '');
    if (!opts.managedFieldsDone)
      meta.managedFields = recordUpdate({ live: undefined, updated: obj, manager: managerFrom(opts), apiVersion: apiVersionOf(r), now, ...keyedListHints(r), ...(opts.subresource ? { subresource: opts.subresource } : {}) });
    if (!meta.managedFields?.length) delete meta.managedFields;

    const generated = !meta.name;
    for (let attempt = 0; ; attempt++) {
      if (generated) meta.name = meta.generateName + Array.from({ length: 5 }, () => GENERATE_CHARS[randomInt(GENERATE_CHARS.length)]).join('');
      if (generated && attempt === 0) {
        const nameErrs = validateObjectMeta(meta, { nameRule: r.kind === 'Namespace' ? 'label' : 'subdomain', namespaced: r.namespaced });
        if (nameErrs.length) throw invalid(r.group, r.kind, meta.name, nameErrs);
      }
      const key = objectKey(r, namespace, meta.name);
      if (opts.dryRun) {
        if (await this.log.get(key)) throw alreadyExists(this.gr(r), meta.name);
        return { object: obj, warnings };
      }
      try {
        const value = this.encode(obj);
        const kv = await this.logWrite(key, () => this.log.create(key, value));
        meta.resourceVersion = String(kv.modRevision);
        return { object: obj, warnings, ...jsonOf(value, kv.modRevision) };
      } catch (e) {
        if (isStoreError(e, 'KeyExists')) {
          if (generated && attempt < 8) continue;
          throw alreadyExists(this.gr(r), meta.name);
        }
        throw e;
      }
    }
  }

  /**
   * Replaces an object (PUT). The body's resourceVersion is a precondition and is required.
   * As with `create`, the store takes `body` over.
   */
  async update(r: ResourceInfo, namespace: string, name: string, body: KubeObjectLike, opts: WriteOptions = {}): Promise<WriteResult> {
    this.checkTypeMeta(r, body);
    this.checkNameMatches(r, namespace, name, body);
    const rv = body.metadata?.resourceVersion;
    if (!rv)
      throw invalid(r.group, r.kind, name, [
        { reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' },
      ]);
    const kv = await this.log.get(objectKey(r, namespace, name));
    if (!kv) throw notFound(this.gr(r), name);
    if (String(kv.modRevision) !== String(rv)) throw conflict(this.gr(r), name);
    return this.write(r, kv, body, opts);
  }

  /** Patches an object; retries internally on conflicts unless the patch carries a resourceVersion. */
  async patch(r: ResourceInfo, namespace: string, name: string, patch: unknown, opts: PatchOptions): Promise<WriteResult & { created: boolean }> {
    const key = objectKey(r, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.log.get(key);
      try {
        if (!kv) {
          if (opts.type !== 'apply') throw notFound(this.gr(r), name);
          const obj = this.apply(r, namespace, name, undefined, patch, opts);
          (obj.metadata ??= {}).name = name;
          const res = await this.create(r, namespace, obj, { ...opts, fieldManager: managerFrom(opts), managedFieldsDone: true });
          return { ...res, created: true };
        }
        const live = this.decode(kv);
        let next: KubeObjectLike;
        if (opts.type === 'merge') next = applyMergePatch(live, patch) as KubeObjectLike;
        else if (opts.type === 'json') next = applyJsonPatch(live, patch) as KubeObjectLike;
        else next = this.apply(r, namespace, name, live, patch, opts);
        if (next === null || typeof next !== 'object' || Array.isArray(next)) throw badRequest('the patch did not result in an object');
        const wantRv = next.metadata?.resourceVersion;
        if (opts.type !== 'apply' && wantRv !== undefined && String(wantRv) !== String(kv.modRevision)) throw conflict(this.gr(r), name);
        (next.metadata ??= {}).resourceVersion = String(kv.modRevision);
        const res = await this.write(r, kv, next, { ...opts, managedFieldsDone: opts.type === 'apply' });
        return { ...res, created: false };
      } catch (e) {
        const stale = isStoreError(e, 'RevisionMismatch') || isStoreError(e, 'NotFound') || isStoreError(e, 'KeyExists');
        if (stale && attempt < 8) continue;
        if (stale) throw conflict(this.gr(r), name);
        throw e;
      }
    }
  }

  /** Server-side apply of `patch` (the applied configuration) onto `live` (undefined: create). */
  private apply(r: ResourceInfo, namespace: string, name: string, live: KubeObjectLike | undefined, patch: unknown, opts: PatchOptions): KubeObjectLike {
    const applied = patch as KubeObjectLike;
    this.checkTypeMeta(r, applied);
    this.checkNameMatches(r, namespace, name, applied);
    return serverSideApply({
      live,
      applied: applied as object,
      manager: managerFrom(opts),
      force: !!opts.force,
      apiVersion: apiVersionOf(r),
      now: nowRfc3339(this.now()),
      ...keyedListHints(r),
      ignoreTopLevel: opts.subresource === 'status' ? ['spec'] : r.hasStatus ? ['status'] : [],
      ...(opts.subresource ? { subresource: opts.subresource } : {}),
    }) as KubeObjectLike;
  }

  /**
   * The common path of update and patch: keeps what clients may not change, bumps
   * generation on spec changes, validates, records managedFields, skips no-ops, and
   * completes a deletion when the last finalizer goes.
   */
  private async write(r: ResourceInfo, kv: KeyValue, body: KubeObjectLike, opts: InternalWriteOptions): Promise<WriteResult> {
    const old = this.decode(kv);
    const next = body;
    const oldMeta = old.metadata ?? {};
    const meta = (next.metadata ??= {});
    next.apiVersion = old.apiVersion;
    next.kind = old.kind;
    for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'])
      if (oldMeta[k] === undefined) delete meta[k];
      else meta[k] = oldMeta[k];
    if (opts.subresource === 'status') {
      // The status subresource changes status only (and ownership of it).
      const status = next.status;
      const managedFields = meta.managedFields;
      Object.assign(next, clone(old), { status });
      next.metadata = { ...clone(oldMeta), managedFields };
      if (status === undefined) delete next.status;
    } else if (r.hasStatus) {
      if (old.status === undefined) delete next.status;
      else next.status = clone(old.status);
    }
    const nm = next.metadata!;
    if (r.kind === 'Namespace' && opts.subresource !== 'status') {
      // spec.finalizers is only removed through finalize by the namespace controller; keep it.
      next.spec = { ...(next.spec ?? {}), finalizers: old.spec?.finalizers ?? [] };
    }
    if (oldMeta.deletionTimestamp) {
      const added = ((nm.finalizers ?? []) as string[]).filter((f) => !((oldMeta.finalizers ?? []) as string[]).includes(f));
      if (added.length)
        throw invalid(r.group, r.kind, oldMeta.name, [
          { reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: 'Forbidden: no new finalizers can be added if the object is being deleted' },
        ]);
    }
    // Defaults first (as kube-apiserver decodes), so an update that leaves out a defaulted field changes nothing.
    if (opts.subresource !== 'status') schemaValidator().applyDefaults(r.schema, next);
    if (r.generationFrom === 'spec' && !isDeepStrictEqual(old.spec, next.spec)) nm.generation = (oldMeta.generation ?? 0) + 1;

    if (r.kind === 'Secret') {
      const errs = prepareSecret(next as SecretLike, old as SecretLike);
      if (errs.length) throw invalid(r.group, r.kind, oldMeta.name, errs);
    }
    const warnings = this.validate(r, next, oldMeta.name, opts);
    this.admitBindMounts(r, next, old, oldMeta.name);
    if (!opts.managedFieldsDone) {
      nm.managedFields = recordUpdate({
        live: old,
        updated: next,
        manager: managerFrom(opts),
        apiVersion: apiVersionOf(r),
        now: nowRfc3339(this.now()),
        ...keyedListHints(r),
        ...(opts.subresource ? { subresource: opts.subresource } : {}),
      });
    }
    if (!nm.managedFields || nm.managedFields.length === 0) delete nm.managedFields;

    const strip = (o: KubeObjectLike) => ({ ...o, metadata: { ...o.metadata, managedFields: undefined, resourceVersion: undefined } });
    if (isDeepStrictEqual(strip(old), strip(next))) return { object: old, warnings };

    const key = kv.key;
    const finalizing = !!nm.deletionTimestamp && ((nm.finalizers ?? []) as string[]).length === 0 && !(r.kind === 'Namespace' && (next.spec?.finalizers ?? []).length > 0);
    if (opts.dryRun) return { object: next, warnings };
    if (finalizing) {
      const gone = await this.logWrite(key, () => this.log.delete(key, kv.modRevision));
      return { object: { ...next, metadata: { ...nm, resourceVersion: String(gone.modRevision) } }, warnings };
    }
    const value = this.encode(next);
    const stored = await this.logWrite(key, () => this.log.update(key, value, kv.modRevision));
    nm.resourceVersion = String(stored.modRevision);
    return { object: next, warnings, ...jsonOf(value, stored.modRevision) };
  }

  /** Deletes an object: now, or by marking it and waiting for its finalizers. */
  async delete(r: ResourceInfo, namespace: string, name: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const key = objectKey(r, namespace, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.log.get(key);
      if (!kv) throw notFound(this.gr(r), name);
      const obj = this.decode(kv);
      const meta = obj.metadata!;
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== meta.uid)
        throw conflict(this.gr(r), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${meta.uid}`);
      if (pre?.resourceVersion && pre.resourceVersion !== meta.resourceVersion)
        throw conflict(this.gr(r), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`);

      const finalizers = [...((meta.finalizers ?? []) as string[])];
      const policy = opts.propagationPolicy;
      if (policy === 'Orphan' && !finalizers.includes(FINALIZER_ORPHAN)) finalizers.push(FINALIZER_ORPHAN);
      if (policy === 'Foreground' && !finalizers.includes(FINALIZER_FOREGROUND)) finalizers.push(FINALIZER_FOREGROUND);
      const nsPending = r.kind === 'Namespace' && (obj.spec?.finalizers ?? []).length > 0;

      try {
        if (finalizers.length === 0 && !nsPending) {
          if (opts.dryRun) return { deleted: true, object: obj };
          const gone = await this.logWrite(key, () => this.log.delete(key, kv.modRevision));
          return { deleted: true, object: this.decode(gone) };
        }
        const next = clone(obj);
        const nm = next.metadata!;
        nm.finalizers = finalizers;
        if (!nm.deletionTimestamp) {
          nm.deletionTimestamp = nowRfc3339(this.now());
          const grace = opts.gracePeriodSeconds ?? specGrace(obj);
          if (grace !== undefined) nm.deletionGracePeriodSeconds = grace;
        } else if (opts.gracePeriodSeconds !== undefined && (nm.deletionGracePeriodSeconds === undefined || opts.gracePeriodSeconds < nm.deletionGracePeriodSeconds)) {
          // as Kubernetes: a later delete may shorten the grace period (`kubectl delete --grace-period=0 --force`), never lengthen it
          nm.deletionGracePeriodSeconds = opts.gracePeriodSeconds;
        }
        if (r.kind === 'Namespace') next.status = { ...(next.status ?? {}), phase: 'Terminating' };
        if (isDeepStrictEqual(next, obj) || opts.dryRun) return { deleted: false, object: next };
        const stored = await this.logWrite(key, () => this.log.update(key, this.encode(next), kv.modRevision));
        nm.resourceVersion = String(stored.modRevision);
        return { deleted: false, object: next };
      } catch (e) {
        if ((isStoreError(e, 'RevisionMismatch') || isStoreError(e, 'NotFound')) && attempt < 8) continue;
        if (isStoreError(e, 'NotFound')) throw notFound(this.gr(r), name);
        throw e;
      }
    }
  }

  /**
   * Changes of one resource (in one namespace, or all when ''), after `afterRevision`.
   * Throws `StoreError('Compacted')` (the caller answers 410) when that is too old.
   */
  async *watch(r: ResourceInfo, namespace: string, afterRevision: number, signal: AbortSignal): AsyncIterable<ObjectEvent> {
    const prefix = r.namespaced && namespace ? namespacePrefix(r, namespace) : resourcePrefix(r);
    for await (const ev of this.log.watch(prefix, { afterRevision, signal })) yield this.toObjectEvent(ev);
  }

  /**
   * `watch` for clients that take objects as they are: each event with the object as
   * JSON text (see `json`), made once per store event however many watchers get it.
   */
  async *watchJson(r: ResourceInfo, namespace: string, afterRevision: number, signal: AbortSignal): AsyncIterable<ObjectEventJson> {
    const prefix = r.namespaced && namespace ? namespacePrefix(r, namespace) : resourcePrefix(r);
    for await (const ev of this.log.watch(prefix, { afterRevision, signal })) {
      let json = eventJson.get(ev.kv);
      if (json === undefined) eventJson.set(ev.kv, (json = this.json(ev.kv)));
      yield { type: ev.type === 'delete' ? 'DELETED' : ev.prevKv ? 'MODIFIED' : 'ADDED', json, revision: ev.kv.modRevision };
    }
  }

  /** Decodes a store event into an object event. */
  toObjectEvent(ev: WatchEvent): ObjectEvent {
    const object = this.decode(ev.kv);
    const prev = ev.prevKv ? this.decode(ev.prevKv) : undefined;
    const type = ev.type === 'delete' ? 'DELETED' : ev.prevKv ? 'MODIFIED' : 'ADDED';
    return prev ? { type, object, prev, revision: ev.kv.modRevision } : { type, object, revision: ev.kv.modRevision };
  }

  /**
   * Clears a terminating namespace's `spec.finalizers` (the namespace controller calls
   * this once the namespace is empty); the namespace then goes if nothing else holds it.
   */
  async finalizeNamespace(name: string): Promise<void> {
    const r = RESOURCES.find((x) => x.kind === 'Namespace')!;
    const key = objectKey(r, '', name);
    const kv = await this.log.get(key);
    if (!kv) return;
    const ns = this.decode(kv);
    if (!ns.metadata?.deletionTimestamp) return;
    if ((ns.metadata.finalizers ?? []).length === 0) {
      await this.logWrite(key, () => this.log.delete(key, kv.modRevision));
      return;
    }
    ns.spec = { ...(ns.spec ?? {}), finalizers: [] };
    await this.logWrite(key, () => this.log.update(key, this.encode(ns), kv.modRevision));
  }

  /** Creates the namespace if it does not exist (used at startup for `default`). */
  async ensureNamespace(name: string): Promise<void> {
    const ns = findResource('', 'v1', 'namespaces')!;
    if (await this.tryGet(ns, '', name)) return;
    try {
      await this.create(ns, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, { fieldManager: 'berth-apiserver' });
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e;
    }
  }

  /**
   * Writes `key` through `write`. Every write of the log goes through here, so that what
   * `checkNamespaceWritable` remembers of namespaces is forgotten when one is written.
   */
  private async logWrite<T>(key: string, write: () => Promise<T>): Promise<T> {
    if (!key.startsWith(NAMESPACE_KEY_PREFIX)) return write();
    this.forgetNamespaces();
    try {
      return await write();
    } finally {
      this.forgetNamespaces();
    }
  }

  private forgetNamespaces(): void {
    this.namespaceStates.clear();
    this.namespaceEpoch++;
  }

  /**
   * 404 if the namespace does not exist, 403 if it is terminating. What it read is
   * remembered until a namespace is written (see `logWrite`): namespaces change rarely,
   * objects in them are created often, and a read of the log costs more than the rest
   * of the check. A read that a namespace write overtook is not remembered.
   */
  private async checkNamespaceWritable(namespace: string): Promise<void> {
    let terminating = this.namespaceStates.get(namespace);
    if (terminating === undefined) {
      const epoch = this.namespaceEpoch;
      const ns = await this.tryGet(NAMESPACE_RESOURCE, '', namespace);
      if (!ns) throw notFound({ group: '', resource: 'namespaces' }, namespace);
      terminating = !!ns.metadata?.deletionTimestamp;
      if (epoch === this.namespaceEpoch) this.namespaceStates.set(namespace, terminating);
    }
    if (terminating) throw forbidden(`unable to create new content in namespace ${namespace} because it is being terminated`);
  }

  private checkTypeMeta(r: ResourceInfo, obj: KubeObjectLike): void {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw badRequest('the body of the request must be a JSON or YAML object');
    const av = apiVersionOf(r);
    if (obj.apiVersion === undefined && obj.kind === undefined) {
      obj.apiVersion = av;
      obj.kind = r.kind;
      return;
    }
    if (obj.kind !== r.kind || obj.apiVersion !== av)
      throw badRequest(`the API version in the data (${obj.apiVersion ?? ''}) and kind (${obj.kind ?? ''}) do not match the resource ${av}, Kind=${r.kind}`);
    if (obj.metadata !== undefined && (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata)))
      throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: metadata must be an object`);
  }

  private checkNameMatches(r: ResourceInfo, namespace: string, name: string, obj: KubeObjectLike): void {
    const bodyName = obj.metadata?.name;
    if (bodyName !== undefined && bodyName !== name) throw badRequest('the name of the object (' + bodyName + ') does not match the name on the URL (' + name + ')');
    const bodyNs = obj.metadata?.namespace;
    if (r.namespaced && bodyNs !== undefined && bodyNs !== namespace)
      throw badRequest('the namespace of the object (' + bodyNs + ') does not match the namespace on the request (' + namespace + ')');
  }

  /** Rejects (422) host paths of `bindMounts` the server does not allow; see `bindMountErrors`. */
  private admitBindMounts(r: ResourceInfo, obj: KubeObjectLike, old: KubeObjectLike | undefined, name: string): void {
    const errs = bindMountErrors(r.kind, obj, old, this.allowedBindMountPaths);
    if (errs.length) throw invalid(r.group, r.kind, name, errs);
  }

  /** Schema + metadata validation. Returns warnings; throws 400 (strict unknown fields) or 422. */
  private validate(r: ResourceInfo, obj: KubeObjectLike, name: string, opts: WriteOptions): string[] {
    const mode = opts.fieldValidation ?? 'Warn';
    const v = schemaValidator();
    const { errors, unknownFields } = v.validate(r.schema, obj, { unknownFields: mode });
    const warnings: string[] = [];
    if (unknownFields.length) {
      if (mode === 'Strict')
        throw badRequest(
          `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: strict decoding error: ${unknownFields.map((f) => `unknown field "${f}"`).join(', ')}`,
        );
      if (mode === 'Warn') warnings.push(...unknownFields.map((f) => `unknown field "${f}"`));
      v.prune(r.schema, obj);
    }
    const all: FieldError[] = [
      ...validateObjectMeta(obj.metadata ?? {}, { nameRule: r.kind === 'Namespace' ? 'label' : 'subdomain', namespaced: r.namespaced }),
      ...errors,
    ];
    if (all.length) throw invalid(r.group, r.kind, name, all);
    return warnings;
  }
}

const jsonOf = (value: string, revision: number): { json?: string } => {
  const json = withResourceVersion(value, revision);
  return json === undefined ? {} : { json };
};

/** `{"apiVersion":"…","kind":"…","metadata":{`: how every value `ObjectStore` stores begins. */
const STORED_HEAD = /^\{"apiVersion":"(?:[^"\\]|\\.)*","kind":"(?:[^"\\]|\\.)*","metadata":\{/;

/**
 * The stored JSON text of an object (which has no resourceVersion) with
 * `metadata.resourceVersion` = `revision` spliced in as the first member of its
 * metadata, or undefined when `value` does not begin as `ObjectStore` writes values.
 * The object's own metadata is the first `"metadata":{` after the two leading string
 * members, so this never touches a nested `metadata` (a template's).
 */
export function withResourceVersion(value: string, revision: number): string | undefined {
  const head = STORED_HEAD.exec(value);
  if (!head) return undefined;
  const at = head[0].length;
  return `${value.slice(0, at)}"resourceVersion":"${revision}"${value[at] === '}' ? '' : ','}${value.slice(at)}`;
}

/**
 * The grace period of a delete that names none: the object's own `spec.stopGracePeriodSeconds`
 * (a Container's, as a Pod's `terminationGracePeriodSeconds`); undefined when it has none
 * (the controller then stops with the schema's default).
 */
function specGrace(obj: KubeObjectLike): number | undefined {
  const g = (obj as { spec?: { stopGracePeriodSeconds?: unknown } }).spec?.stopGracePeriodSeconds;
  return typeof g === 'number' && Number.isInteger(g) && g >= 0 ? g : undefined;
}

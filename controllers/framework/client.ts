/**
 * `ApiClient`: the typed client controllers write through. It speaks Kubernetes REST
 * to the API server named by a kubeconfig (berth's, or any Kubernetes API server with
 * berth's CRDs), maps error responses to `ApiStatusError`, and records each write's
 * resourceVersion in `writes` for the controller's read-your-writes wait.
 */
import type { IncomingMessage } from 'node:http';
import type { DeleteOptions, KubeList, KubeObject } from '../../api/types/index.ts';
import { KubeTransport, type RawWatchEvent, type StreamRequest, type WatchStream } from './internal/transport.ts';

export type { StreamRequest } from './internal/transport.ts';
import { deepEqual } from './internal/deep-equal.ts';
import {
  apiVersionOf,
  collectionPath,
  KNOWN_KINDS,
  objectPath,
  type ResourceKind,
} from './resource-kind.ts';
import { WriteTracker } from './write-tracker.ts';
import type { ClusterAccess } from './cluster-access.ts';

export interface ApiClientOptions {
  /** Where and as whom to connect: client-node's `KubeConfig` or any `ClusterAccess`. */
  readonly kubeConfig: ClusterAccess;
  /** `fieldManager` of apply and of every write. Default `berth-controllers`. */
  readonly fieldManager?: string;
  /** Kinds beyond `KNOWN_KINDS` that object-taking calls may be given. */
  readonly kinds?: readonly ResourceKind[];
  /** Per-request timeout. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /**
   * A Unix socket serving the same API (`berth server`'s `<dataDir>/api.sock`) to send
   * requests to instead of the server URL, in plain HTTP with the same credentials.
   * Default: the one `kubeConfig.localSocketPath()` names, if any.
   */
  readonly socketPath?: string;
}

/** Options every call accepts. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export interface ListOptions extends CallOptions {
  /** Empty or absent: all namespaces (or a cluster-scoped kind). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly limit?: number;
  readonly continue?: string;
  readonly resourceVersion?: string;
}

export interface WriteOptions extends CallOptions {
  /** `All` validates and answers without storing. */
  readonly dryRun?: 'All';
}

export interface ApplyOptions extends WriteOptions {
  /** Take over fields other managers own. Default false: conflicts reject with 409. */
  readonly force?: boolean;
  /** Overrides the client's field manager for this call. */
  readonly fieldManager?: string;
  /** Apply to `status` instead of the main resource. */
  readonly subresource?: 'status';
}

export interface PatchOptions extends WriteOptions {
  readonly subresource?: 'status';
}

export interface DeleteCallOptions extends CallOptions {
  readonly propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  readonly gracePeriodSeconds?: number;
  /** Deletes only if the object still has this uid / resourceVersion. */
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

export interface WatchOptions {
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly timeoutSeconds?: number;
  readonly allowWatchBookmarks?: boolean;
}

const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const APPLY_PATCH = 'application/apply-patch+yaml';

/**
 * A thin typed client over the Kubernetes REST API.
 *
 * Every call rejects with `ApiStatusError` when the server answers with an error
 * (`isNotFound`, `isConflict`, … classify it) and with Node's network errors when it
 * cannot be reached. Calls taking an object find its kind from `apiVersion` + `kind`
 * and never mutate the object passed in. Safe to share between controllers.
 */
export class ApiClient {
  /** The resourceVersion of this client's last write per object. */
  readonly writes: WriteTracker;
  readonly fieldManager: string;
  private readonly transport: KubeTransport;
  private readonly kinds: readonly ResourceKind[];
  private readonly timeoutMs: number | undefined;

  constructor(opts: ApiClientOptions) {
    this.transport = new KubeTransport(opts.kubeConfig, opts.socketPath ?? opts.kubeConfig.localSocketPath?.());
    this.fieldManager = opts.fieldManager ?? 'berth-controllers';
    this.kinds = [...KNOWN_KINDS, ...(opts.kinds ?? [])];
    this.timeoutMs = opts.requestTimeoutMs;
    this.writes = new WriteTracker();
  }

  /** Where and as whom this client connects. */
  get kubeConfig(): ClusterAccess {
    return this.transport.kubeConfig;
  }

  /** How requests travel, for messages: `unix:<socket>` or the server's origin. */
  get via(): string {
    return this.transport.via;
  }

  /**
   * One raw request (logs, uploads, downloads) with this client's credentials and
   * connection; resolves once the response headers arrive. HTTP ≥ 400 rejects with
   * `ApiStatusError`.
   */
  stream(method: string, path: string, req: StreamRequest = {}): Promise<IncomingMessage> {
    return this.transport.stream(method, path, req);
  }

  /** Reads one object. Rejects with NotFound when it does not exist. */
  async get<T extends KubeObject>(kind: ResourceKind<T>, namespace: string, name: string, opts: CallOptions = {}): Promise<T> {
    return this.send<T>('GET', objectPath(kind, namespace, name), opts);
  }

  /** Lists objects (one page when `limit` is set; follow `metadata.continue`). */
  async list<T extends KubeObject>(kind: ResourceKind<T>, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.send<KubeList<T>>('GET', collectionPath(kind, opts.namespace), opts, {
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
    });
  }

  /** Creates `obj`. Rejects with AlreadyExists when the name is taken. */
  async create<T extends KubeObject>(obj: T, opts: WriteOptions = {}): Promise<T> {
    const kind = this.kindOf(obj);
    const out = await this.send<T>('POST', collectionPath(kind, this.namespaceOf(kind, obj)), opts, {
      body: obj,
      query: this.writeQuery(opts),
    });
    this.writes.record(kind, out);
    return out;
  }

  /**
   * Replaces `obj` (PUT). Its `metadata.resourceVersion` makes the write conditional:
   * Conflict if the object changed since it was read. Status is kept as stored.
   */
  async update<T extends KubeObject>(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(obj, undefined, opts);
  }

  /** Replaces the `status` of `obj` (PUT …/status), conditional on its resourceVersion like `update`. */
  async updateStatus<T extends KubeObject>(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(obj, 'status', opts);
  }

  /** JSON merge patch (RFC 7386). Unconditional unless the patch carries `metadata.resourceVersion`. */
  async patch<T extends KubeObject>(kind: ResourceKind<T>, namespace: string, name: string, patch: object, opts: PatchOptions = {}): Promise<T> {
    const out = await this.send<T>('PATCH', objectPath(kind, namespace, name, opts.subresource), opts, {
      body: patch,
      contentType: MERGE_PATCH,
      query: this.writeQuery(opts),
    });
    this.writes.record(kind, out);
    return out;
  }

  /**
   * Server-side apply of `obj` as this client's field manager: creates or updates the
   * fields it names and removes fields this manager applied before and now omits.
   */
  async apply<T extends KubeObject>(obj: T, opts: ApplyOptions = {}): Promise<T> {
    const kind = this.kindOf(obj);
    const out = await this.send<T>('PATCH', objectPath(kind, this.namespaceOf(kind, obj), obj.metadata.name ?? '', opts.subresource), opts, {
      body: obj,
      contentType: APPLY_PATCH,
      query: { fieldManager: opts.fieldManager ?? this.fieldManager, force: opts.force ? true : undefined, dryRun: opts.dryRun },
    });
    this.writes.record(kind, out);
    return out;
  }

  /** Deletes one object. Rejects with NotFound when it is already gone. */
  async delete(kind: ResourceKind, namespace: string, name: string, opts: DeleteCallOptions = {}): Promise<void> {
    const body: DeleteOptions = { apiVersion: 'v1', kind: 'DeleteOptions' } as DeleteOptions;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = { ...opts.preconditions };
    const out = await this.send<KubeObject>('DELETE', objectPath(kind, namespace, name), opts, { body });
    if (out && out.kind !== 'Status') this.writes.record(kind, out);
  }

  /**
   * Adds finalizer `f` to `obj` unless it is there already (then no request is made).
   * A JSON patch of `metadata.finalizers` alone, conditional on the finalizers `obj`
   * has (and on its uid): a concurrent write of status or spec does not make it
   * conflict, a concurrent change of the finalizers does (422, the `test` failing).
   * Resolves with the object as stored.
   */
  async ensureFinalizer<T extends KubeObject>(obj: T, f: string, opts: WriteOptions = {}): Promise<T> {
    const have = obj.metadata.finalizers ?? [];
    if (have.includes(f)) return obj;
    const guard = have.length > 0 ? { op: 'test', path: '/metadata/finalizers', value: have } : { op: 'test', path: '/metadata/uid', value: obj.metadata.uid };
    return this.patchFinalizers(obj, [guard, { op: 'add', path: '/metadata/finalizers', value: [...have, f] }], opts);
  }

  /** Removes finalizer `f` from `obj` if present (otherwise no request). Conditional like `ensureFinalizer`. */
  async removeFinalizer<T extends KubeObject>(obj: T, f: string, opts: WriteOptions = {}): Promise<T> {
    const have = obj.metadata.finalizers ?? [];
    if (!have.includes(f)) return obj;
    return this.patchFinalizers(obj, [{ op: 'test', path: '/metadata/finalizers', value: have }, { op: 'replace', path: '/metadata/finalizers', value: have.filter((x) => x !== f) }], opts);
  }

  private async patchFinalizers<T extends KubeObject>(obj: T, ops: readonly object[], opts: WriteOptions): Promise<T> {
    const kind = this.kindOf(obj);
    const out = await this.send<T>('PATCH', objectPath(kind, this.namespaceOf(kind, obj), obj.metadata.name ?? ''), opts, {
      body: ops,
      contentType: JSON_PATCH,
      query: this.writeQuery(opts),
    });
    this.writes.record(kind, out);
    return out;
  }

  /**
   * Writes `status` as the status of `obj` unless it deep-equals `obj.status` (then no
   * request is made and `obj` is returned). Conditional on `obj`'s resourceVersion.
   */
  async updateStatusIfChanged<T extends KubeObject>(obj: T, status: NonNullable<T['status']>, opts: WriteOptions = {}): Promise<T> {
    if (deepEqual(obj.status, status)) return obj;
    return this.updateStatus({ ...obj, status }, opts);
  }

  /**
   * Opens a watch. `onEvent` receives events in order; `done` of the result settles
   * when the stream ends (`null`: ended by the server). Used by `SharedInformer`.
   */
  async watch(kind: ResourceKind, opts: WatchOptions, onEvent: (e: RawWatchEvent) => void): Promise<WatchStream> {
    return this.transport.watch(
      collectionPath(kind, opts.namespace),
      {
        resourceVersion: opts.resourceVersion,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        timeoutSeconds: opts.timeoutSeconds,
        allowWatchBookmarks: opts.allowWatchBookmarks,
      },
      onEvent,
    );
  }

  /** The kind of an object, from its apiVersion and kind. Throws `TypeError` for kinds this client was not given. */
  kindOf(obj: KubeObject): ResourceKind {
    const k = this.kinds.find((x) => x.kind === obj.kind && apiVersionOf(x) === obj.apiVersion);
    if (!k) throw new TypeError(`unknown kind ${obj.apiVersion}/${obj.kind}: pass it in ApiClientOptions.kinds`);
    return k;
  }

  /** Releases idle connections. */
  close(): void {
    this.transport.close();
  }

  private async put<T extends KubeObject>(obj: T, subresource: 'status' | undefined, opts: WriteOptions): Promise<T> {
    const kind = this.kindOf(obj);
    const out = await this.send<T>('PUT', objectPath(kind, this.namespaceOf(kind, obj), obj.metadata.name ?? '', subresource), opts, {
      body: obj,
      query: this.writeQuery(opts),
    });
    this.writes.record(kind, out);
    return out;
  }

  private writeQuery(opts: WriteOptions) {
    return { fieldManager: this.fieldManager, dryRun: opts.dryRun };
  }

  private namespaceOf(kind: ResourceKind, obj: KubeObject): string {
    if (!kind.namespaced) return '';
    const ns = obj.metadata.namespace;
    if (!ns) throw new TypeError(`${kind.kind} ${JSON.stringify(obj.metadata.name)}: metadata.namespace is required`);
    return ns;
  }

  private send<T>(
    method: string,
    path: string,
    call: CallOptions,
    req: { query?: Record<string, string | number | boolean | undefined>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    return this.transport.request<T>(method, path, {
      ...req,
      ...(call.signal ? { signal: call.signal } : {}),
      ...(this.timeoutMs ? { timeoutMs: this.timeoutMs } : {}),
    });
  }
}

/**
 * The API server's built-in garbage collector and namespace finalizer (the parts of
 * kube-controller-manager that object semantics depend on):
 * - dependents whose owners (`ownerReferences`) are all gone are deleted (background cascade);
 * - an owner deleted with `propagationPolicy: Foreground` keeps its `foregroundDeletion`
 *   finalizer until its dependents are gone; with `Orphan`, its dependents lose the
 *   owner reference and the owner its `orphan` finalizer;
 * - a terminating namespace has its content deleted, then its `kubernetes` finalizer removed;
 * - core Events older than `eventTtlMs` are deleted.
 *
 * It reads one watch over the whole store, so owners are always seen before their
 * dependents, and keeps an index of uids and owner references. Work is level-based:
 * each item re-reads the object before acting, so repeating it is harmless.
 */
import type { Logger } from 'pino';
import { isNotFound, isConflict } from '../errors.ts';
import { isStoreError } from '../../store/revision-log.ts';
import { RESOURCES, type KubeObjectLike, type ResourceInfo } from '../registry/resources.ts';
import { resourcePrefix } from '../registry/keys.ts';
import { FINALIZER_FOREGROUND, FINALIZER_ORPHAN, type ObjectStore } from '../registry/object-store.ts';

interface Entry {
  readonly r: ResourceInfo;
  readonly namespace: string;
  readonly name: string;
  readonly owners: readonly string[];
}

export interface GarbageCollectorDeps {
  readonly store: ObjectStore;
  readonly logger: Logger;
  /** Events older than this are deleted (kube-apiserver's default TTL is one hour). */
  readonly eventTtlMs?: number;
  readonly sweepIntervalMs?: number;
}

const resourceOfKey = (key: string): ResourceInfo | undefined => RESOURCES.find((r) => key.startsWith(resourcePrefix(r)));

/** Runs garbage collection and namespace finalization until `stop()`. */
export class GarbageCollector {
  private readonly byUid = new Map<string, Entry>();
  private readonly dependents = new Map<string, Set<string>>();
  private readonly pending = new Set<string>();
  private readonly terminatingNamespaces = new Set<string>();
  private readonly ctl = new AbortController();
  private running: Promise<void> | undefined;
  private draining = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Resolves once the initial list has been indexed. */
  ready: Promise<void> = Promise.resolve();

  constructor(private readonly deps: GarbageCollectorDeps) {}

  start(): void {
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    this.running = this.run(markReady).catch((e) => {
      if (!this.ctl.signal.aborted) this.deps.logger.error({ err: e }, 'garbage collector stopped');
    });
    this.sweepTimer = setInterval(() => void this.sweepEvents(), this.deps.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    this.ctl.abort();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.running;
  }

  private async run(markReady: () => void): Promise<void> {
    const log = this.deps.store.revisionLog;
    for (;;) {
      try {
        this.byUid.clear();
        this.dependents.clear();
        const revision = await this.index();
        markReady();
        this.kick();
        for await (const ev of log.watch('/', { afterRevision: revision, signal: this.ctl.signal })) {
          const obj = this.deps.store.decode(ev.kv);
          this.observe(obj, ev.kv.key, ev.type === 'delete');
        }
        return;
      } catch (e) {
        if (this.ctl.signal.aborted) return;
        if (!isStoreError(e, 'Compacted')) throw e;
        // fell behind the log: re-list and carry on
      }
    }
  }

  /** Indexes every object, a page at a time (so the whole store is never in memory), at one revision. */
  private async index(): Promise<number> {
    const log = this.deps.store.revisionLog;
    let revision = 0;
    let startKey: string | undefined;
    for (;;) {
      const page = await log.list('/', { limit: 500, ...(revision ? { revision } : {}), ...(startKey ? { startKey } : {}) });
      revision = page.revision;
      for (const kv of page.items) this.observe(this.deps.store.decode(kv), kv.key, false);
      if (!page.more || page.items.length === 0) return revision;
      startKey = `${page.items[page.items.length - 1]!.key}\u0000`;
    }
  }

  private observe(obj: KubeObjectLike, key: string, deleted: boolean): void {
    const r = resourceOfKey(key);
    const meta = obj.metadata ?? {};
    const uid: string | undefined = meta.uid;
    if (!r || !uid) return;
    const old = this.byUid.get(uid);
    if (old)
      for (const o of old.owners) {
        this.dependents.get(o)?.delete(uid);
        // An owner waiting in foreground deletion re-checks when a dependent changes or goes.
        if (deleted) this.pending.add(o);
      }
    if (deleted) {
      this.byUid.delete(uid);
      for (const d of this.dependents.get(uid) ?? []) this.pending.add(d);
      if (r.kind === 'Namespace') this.terminatingNamespaces.delete(meta.name);
    } else {
      const owners = ((meta.ownerReferences ?? []) as { uid: string }[]).map((o) => o.uid);
      this.byUid.set(uid, { r, namespace: meta.namespace ?? '', name: meta.name, owners });
      for (const o of owners) {
        let s = this.dependents.get(o);
        if (!s) this.dependents.set(o, (s = new Set()));
        s.add(uid);
      }
      if (owners.length) this.pending.add(uid);
      if (meta.deletionTimestamp) this.pending.add(uid);
      if (r.kind === 'Namespace' && meta.deletionTimestamp) this.terminatingNamespaces.add(meta.name);
    }
    // Content of a terminating namespace changed: re-check the namespace.
    if (r.namespaced && this.terminatingNamespaces.has(meta.namespace)) {
      const ns = [...this.byUid.entries()].find(([, e]) => e.r.kind === 'Namespace' && e.name === meta.namespace);
      if (ns) this.pending.add(ns[0]);
    }
    this.kick();
  }

  private kick(): void {
    if (this.draining || this.pending.size === 0 || this.ctl.signal.aborted) return;
    this.draining = true;
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.size > 0 && !this.ctl.signal.aborted) {
        const uid = this.pending.values().next().value as string;
        this.pending.delete(uid);
        try {
          await this.process(uid);
        } catch (e) {
          if (isConflict(e) || isStoreError(e, 'RevisionMismatch')) {
            this.pending.add(uid);
            continue;
          }
          if (!isNotFound(e) && !isStoreError(e, 'NotFound')) this.deps.logger.warn({ err: e, uid }, 'garbage collection step failed');
        }
      }
    } finally {
      this.draining = false;
      if (this.pending.size > 0) setTimeout(() => this.kick(), 100).unref();
    }
  }

  private async process(uid: string): Promise<void> {
    const e = this.byUid.get(uid);
    if (!e) return;
    const { store } = this.deps;
    const obj = await store.tryGet(e.r, e.namespace, e.name);
    if (!obj || obj.metadata?.uid !== uid) return;
    const meta = obj.metadata;
    const finalizers = (meta.finalizers ?? []) as string[];

    // 1. Dependents whose owners are all gone are deleted.
    const owners = (meta.ownerReferences ?? []) as { uid: string }[];
    if (owners.length > 0 && !meta.deletionTimestamp && owners.every((o) => !this.byUid.has(o.uid))) {
      this.deps.logger.info({ resource: e.r.plural, namespace: e.namespace, name: e.name }, 'deleting object whose owners are gone');
      await store.delete(e.r, e.namespace, e.name, { propagationPolicy: 'Background', preconditions: { uid } });
      return;
    }
    if (!meta.deletionTimestamp) return;

    const deps = [...(this.dependents.get(uid) ?? [])].map((d) => [d, this.byUid.get(d)] as const).filter(([, d]) => d);
    // 2. Orphan: drop our owner reference from dependents, then the finalizer.
    if (finalizers.includes(FINALIZER_ORPHAN)) {
      for (const [, d] of deps) {
        const dep = await store.tryGet(d!.r, d!.namespace, d!.name);
        if (!dep) continue;
        const refs = ((dep.metadata?.ownerReferences ?? []) as { uid: string }[]).filter((o) => o.uid !== uid);
        await store.patch(d!.r, d!.namespace, d!.name, { metadata: { ownerReferences: refs.length ? refs : null, resourceVersion: dep.metadata!.resourceVersion } }, { type: 'merge', fieldManager: 'berth-garbage-collector' });
      }
      await this.removeFinalizer(e.r, obj, FINALIZER_ORPHAN);
      return;
    }
    // 3. Foreground: delete dependents, and remove the finalizer once none is left.
    if (finalizers.includes(FINALIZER_FOREGROUND)) {
      if (deps.length === 0) {
        await this.removeFinalizer(e.r, obj, FINALIZER_FOREGROUND);
        return;
      }
      for (const [, d] of deps) {
        try {
          await store.delete(d!.r, d!.namespace, d!.name, { propagationPolicy: 'Foreground' });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return;
    }
    // 4. A terminating namespace: delete its content; when empty, finalize it.
    if (e.r.kind === 'Namespace') {
      let left = 0;
      for (const r of RESOURCES.filter((x) => x.namespaced)) {
        const list = await store.list(r, e.name);
        for (const o of list.items) {
          left++;
          if (o.metadata?.deletionTimestamp) continue;
          try {
            await store.delete(r, e.name, o.metadata!.name, { propagationPolicy: 'Background' });
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
      }
      if (left === 0) await store.finalizeNamespace(e.name);
    }
  }

  private async removeFinalizer(r: ResourceInfo, obj: KubeObjectLike, finalizer: string): Promise<void> {
    const meta = obj.metadata!;
    const finalizers = ((meta.finalizers ?? []) as string[]).filter((f) => f !== finalizer);
    await this.deps.store.patch(r, meta.namespace ?? '', meta.name, { metadata: { finalizers, resourceVersion: meta.resourceVersion } }, { type: 'merge', fieldManager: 'berth-garbage-collector' });
  }

  private async sweepEvents(): Promise<void> {
    const ttl = this.deps.eventTtlMs ?? 3_600_000;
    const events = RESOURCES.find((r) => r.kind === 'Event')!;
    const cutoff = Date.now() - ttl;
    try {
      const list = await this.deps.store.list(events, '');
      for (const ev of list.items) {
        const t = Date.parse(ev.lastTimestamp ?? ev.eventTime ?? ev.metadata?.creationTimestamp ?? '');
        if (Number.isFinite(t) && t < cutoff) {
          await this.deps.store.delete(events, ev.metadata!.namespace, ev.metadata!.name).catch((err) => {
            if (!isNotFound(err)) throw err;
          });
        }
      }
    } catch (e) {
      if (!this.ctl.signal.aborted) this.deps.logger.warn({ err: e }, 'event sweep failed');
    }
  }
}

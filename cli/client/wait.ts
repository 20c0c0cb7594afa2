/**
 * Waiting for an object's status through a watch (no polling): the verbs edit an
 * object and then wait here until its status says the edit took effect.
 */
import type { KubeObject } from '../../api/types/index.ts';
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import type { ResourceKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from './connection.ts';

export interface WaitOptions<T> {
  /** Gives up with a `WaitTimeoutError` after this long; default: never. */
  readonly timeoutMs?: number;
  /** Called with each version of the object seen (for progress output). */
  readonly onUpdate?: (obj: T) => void;
  readonly signal?: AbortSignal;
}

/** The wait gave up; the message says what was awaited. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

interface Waiter<T> {
  readonly done: (obj: T | undefined) => boolean;
  readonly onUpdate?: (obj: T) => void;
  readonly resolve: (obj: T | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * One object followed through one watch for as long as a verb needs it (a `run`:
 * started, exited, deleted), re-read and re-watched when the server ends the
 * watch. `until` waits for a state of it; `last` is the newest version seen — after
 * a deletion, the version the DELETED event carried (the final status).
 */
export class ObjectWatch<T extends KubeObject> {
  /** The newest version seen (kept after a deletion). */
  last: T | undefined;
  /** True once the object was seen deleted (or not found). */
  gone = false;
  private readonly waiters = new Set<Waiter<T>>();
  private stream: { abort(): void } | undefined;
  private closed = false;
  private failure: unknown;

  private constructor(
    private readonly conn: Connection,
    private readonly kind: ResourceKind<T>,
    readonly name: string,
  ) {}

  /**
   * Starts following `name`: from `from` (e.g. the object a create returned: no read
   * needed), else from a read of it.
   */
  static async open<T extends KubeObject>(conn: Connection, kind: ResourceKind<T>, name: string, from?: T): Promise<ObjectWatch<T>> {
    const w = new ObjectWatch(conn, kind, name);
    if (from) w.last = from;
    else await w.read();
    void w.follow();
    return w;
  }

  /**
   * Resolves with the first version (the current one included) for which `done` holds;
   * `done(undefined)` is asked once the object is deleted — when it is false, the wait
   * rejects with a clear error. An exception in `done` rejects the wait with it.
   */
  until(done: (obj: T | undefined) => boolean, opts: WaitOptions<T> = {}): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter<T> = {
        done,
        ...(opts.onUpdate ? { onUpdate: opts.onUpdate } : {}),
        resolve: (obj) => (finish(), resolve(obj)),
        reject: (err) => (finish(), reject(err)),
      };
      const onAbort = () => waiter.reject(opts.signal?.reason ?? new Error('aborted'));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => waiter.reject(new WaitTimeoutError(`timed out waiting for ${this.kind.kind.toLowerCase()} ${this.name}`)), opts.timeoutMs);
      this.waiters.add(waiter);
      if (this.failure) return waiter.reject(this.failure);
      this.offer(waiter);
    });
  }

  /** Stops the watch; pending waits reject. */
  close(): void {
    this.closed = true;
    this.stream?.abort();
    for (const w of this.waiters) w.reject(new Error(`stopped watching ${this.kind.kind.toLowerCase()} ${this.name}`));
  }

  /** Asks one waiter about the current state. */
  private offer(w: Waiter<T>): void {
    try {
      if (this.gone) {
        if (w.done(undefined)) w.resolve(undefined);
        else w.reject(new Error(`${this.kind.kind.toLowerCase()} ${this.name} was deleted`));
      } else if (this.last) {
        w.onUpdate?.(this.last);
        if (w.done(this.last)) w.resolve(this.last);
      }
    } catch (err) {
      w.reject(err);
    }
  }

  private changed(): void {
    for (const w of [...this.waiters]) this.offer(w);
  }

  private async read(): Promise<void> {
    try {
      this.last = await this.conn.client.get(this.kind, this.conn.namespace, this.name);
      this.gone = false;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.gone = true;
    }
  }

  /** Watches until closed or deleted; after the server ends a watch, reads the object again and watches on. */
  private async follow(): Promise<void> {
    let reread = false;
    try {
      while (!this.closed && !this.gone) {
        if (reread) {
          await this.read();
          this.changed();
          if (this.gone) break;
        }
        reread = true;
        const rv = this.last?.metadata.resourceVersion;
        const stream = await this.conn.client.watch(
          this.kind,
          { namespace: this.conn.namespace, fieldSelector: `metadata.name=${this.name}`, ...(rv ? { resourceVersion: rv } : {}), allowWatchBookmarks: true },
          (e) => {
            if (e.type === 'DELETED') {
              this.last = e.object as T;
              this.gone = true;
              this.stream?.abort();
            } else if (e.type === 'ADDED' || e.type === 'MODIFIED') {
              this.last = e.object as T;
            } else return; // BOOKMARK; ERROR (e.g. 410 Expired) ends the stream and we re-read
            this.changed();
          },
        );
        this.stream = stream;
        if (this.closed) stream.abort();
        const err = await stream.done;
        if (err && !isExpired(err)) throw err;
      }
    } catch (err) {
      if (this.closed) return;
      this.failure = err;
      for (const w of [...this.waiters]) w.reject(err);
    }
  }
}

const isExpired = (err: unknown): boolean => (err as { code?: number }).code === 410;

/**
 * Resolves with the object once `done(obj)` is true, or with `undefined` once
 * `done(undefined)` is true after the object is deleted (otherwise deletion rejects
 * with a clear error). Re-reads and re-watches when a watch ends.
 */
export async function waitForObject<T extends KubeObject>(
  conn: Connection,
  kind: ResourceKind<T>,
  name: string,
  done: (obj: T | undefined) => boolean,
  opts: WaitOptions<T> = {},
): Promise<T | undefined> {
  const w = await ObjectWatch.open(conn, kind, name);
  try {
    return await w.until(done, opts);
  } finally {
    w.close();
  }
}

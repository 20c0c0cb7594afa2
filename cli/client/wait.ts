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
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const gone = () => {
    if (done(undefined)) return true;
    throw new Error(`${kind.kind.toLowerCase()} ${name} was deleted`);
  };
  for (;;) {
    let obj: T | undefined;
    try {
      obj = await conn.client.get(kind, conn.namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!obj) {
      if (gone()) return undefined;
    } else {
      opts.onUpdate?.(obj);
      if (done(obj)) return obj;
    }
    let result: { obj: T | undefined } | undefined;
    let failure: unknown;
    let finish!: () => void;
    const settled = new Promise<void>((r) => (finish = r));
    const stream = await conn.client.watch(
      kind,
      { namespace: conn.namespace, fieldSelector: `metadata.name=${name}`, ...(obj?.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}), allowWatchBookmarks: true },
      (e) => {
        if (result || failure) return;
        try {
          if (e.type === 'DELETED') {
            if (gone()) result = { obj: undefined };
          } else if (e.type === 'ADDED' || e.type === 'MODIFIED') {
            const o = e.object as T;
            opts.onUpdate?.(o);
            if (done(o)) result = { obj: o };
          }
        } catch (err) {
          failure = err;
        }
        if (result || failure) finish();
      },
    );
    const timer = Number.isFinite(deadline) ? setTimeout(finish, Math.max(0, deadline - Date.now())) : undefined;
    const onAbort = () => finish();
    opts.signal?.addEventListener('abort', onAbort);
    await Promise.race([settled, stream.done]);
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    stream.abort();
    if (failure) throw failure;
    if (result) return result.obj;
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    if (Date.now() >= deadline) throw new WaitTimeoutError(`timed out waiting for ${kind.kind.toLowerCase()} ${name}`);
  }
}

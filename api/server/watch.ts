/**
 * Watch streaming: `?watch=true` from a resourceVersion, one JSON event per line,
 * flushed per event, with selectors applied to both the old and the new object so
 * that objects moving in and out of a selection appear as ADDED / DELETED, bookmarks,
 * `sendInitialEvents`, server-side timeouts, and a 410 `ERROR` event when the
 * requested revision was compacted or the client fell too far behind.
 */
import type { Request, Response } from 'express';
import { ApiError, badRequest } from '../errors.ts';
import { isStoreError } from '../../store/revision-log.ts';
import { apiVersionOf, type KubeObjectLike, type ResourceInfo } from '../registry/resources.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import type { FieldSelector, LabelSelector } from '../registry/selectors.ts';
import { shapeObject, toTable, type IncludeObject, type ResponseShape } from './table.ts';

export interface WatchRequest {
  readonly resource: ResourceInfo;
  readonly namespace: string;
  readonly resourceVersion?: string;
  readonly labelSelector?: LabelSelector;
  readonly fieldSelector?: FieldSelector;
  readonly allowBookmarks: boolean;
  readonly sendInitialEvents: boolean;
  readonly timeoutSeconds?: number;
  readonly shape: ResponseShape;
  readonly includeObject?: IncludeObject;
}

/** Hooks for metrics: called once when a watch starts and ends, and per event sent. */
export interface WatchHooks {
  onStart?(r: ResourceInfo): void;
  onEnd?(r: ResourceInfo): void;
  onEvent?(r: ResourceInfo): void;
}

export interface WatchServeOptions {
  readonly store: ObjectStore;
  readonly hooks?: WatchHooks;
  /** Bookmark period when the client allows bookmarks. */
  readonly bookmarkIntervalMs?: number;
  /** Watches without `timeoutSeconds` end after a random time in [min, 2·min) so clients re-watch (and rebalance). */
  readonly minWatchTimeoutMs?: number;
}

const expiredStatus = (message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason: 'Expired',
  code: 410,
});

/** Serves one watch request until the timeout, the client leaving or server shutdown (`shutdown` aborting). */
export async function serveWatch(req: Request, res: Response, w: WatchRequest, opts: WatchServeOptions, shutdown: AbortSignal): Promise<void> {
  const { store } = opts;
  const r = w.resource;
  const initial = w.sendInitialEvents || !w.resourceVersion || w.resourceVersion === '0';
  let after = 0;
  if (!initial) {
    after = Number(w.resourceVersion);
    if (!Number.isSafeInteger(after) || after < 0) throw badRequest(`invalid resourceVersion: ${w.resourceVersion}`);
  }
  const matches = (o: KubeObjectLike | undefined): boolean =>
    !!o && (!w.labelSelector || w.labelSelector.matches(o.metadata?.labels)) && (!w.fieldSelector || w.fieldSelector.matches(o));

  const ctl = new AbortController();
  const abort = () => ctl.abort();
  shutdown.addEventListener('abort', abort, { once: true });
  res.on('close', abort);
  const timeoutMs = w.timeoutSeconds !== undefined ? w.timeoutSeconds * 1000 : (opts.minWatchTimeoutMs ?? 300_000) * (1 + Math.random());
  const timer = setTimeout(abort, timeoutMs);
  timer.unref();

  opts.hooks?.onStart?.(r);
  let sentColumns = false;
  let lastRv = after;
  const write = (type: string, obj: unknown): Promise<void> => writeLine(`${JSON.stringify({ type, object: obj })}\n`);
  const writeLine = async (line: string): Promise<void> => {
    if (ctl.signal.aborted) return;
    const ok = res.write(line);
    opts.hooks?.onEvent?.(r);
    if (!ok && !ctl.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          ctl.signal.removeEventListener('abort', done);
          resolve();
        };
        res.on('drain', done);
        ctl.signal.addEventListener('abort', done, { once: true });
      });
    }
  };
  const shape = (o: KubeObjectLike) => {
    if (w.shape !== 'table') return shapeObject(r, o, w.shape);
    const t = toTable(r, [o], { resourceVersion: o.metadata?.resourceVersion, withColumns: !sentColumns, ...(w.includeObject ? { includeObject: w.includeObject } : {}) });
    sentColumns = true;
    return t;
  };
  const bookmark = (extra?: Record<string, string>) => ({
    kind: r.kind,
    apiVersion: apiVersionOf(r),
    metadata: { resourceVersion: String(lastRv), ...(extra ? { annotations: extra } : {}) },
  });
  let bookmarkTimer: NodeJS.Timeout | undefined;

  try {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-cache, private');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.flushHeaders();

    if (initial) {
      const list = await store.list(r, w.namespace, {
        ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
        ...(w.fieldSelector ? { fieldSelector: w.fieldSelector } : {}),
      });
      lastRv = after = Number(list.resourceVersion);
      for (const o of list.items) await write('ADDED', shape(o));
      if (w.sendInitialEvents) await write('BOOKMARK', bookmark({ 'k8s.io/initial-events-end': 'true' }));
    }
    if (w.allowBookmarks) {
      bookmarkTimer = setInterval(() => void write('BOOKMARK', bookmark()), opts.bookmarkIntervalMs ?? 60_000);
      bookmarkTimer.unref();
    }
    if (!w.labelSelector && !w.fieldSelector && w.shape === 'object') {
      // Objects as stored, neither decoded nor encoded again, for each watcher.
      for await (const ev of store.watchJson(r, w.namespace, after, ctl.signal)) {
        lastRv = ev.revision;
        await writeLine(`{"type":"${ev.type}","object":${ev.json}}\n`);
      }
    } else {
      for await (const ev of store.watch(r, w.namespace, after, ctl.signal)) {
        lastRv = ev.revision;
        const now = matches(ev.object);
        const before = ev.type === 'MODIFIED' && matches(ev.prev);
        let type: string | undefined;
        if (ev.type === 'DELETED') type = now ? 'DELETED' : undefined;
        else if (ev.type === 'ADDED') type = now ? 'ADDED' : undefined;
        else if (now) type = before ? 'MODIFIED' : 'ADDED';
        else if (before) type = 'DELETED';
        if (type) await write(type, shape(ev.object));
      }
    }
  } catch (e) {
    if (isStoreError(e, 'Compacted')) {
      await write('ERROR', expiredStatus(`too old resource version: ${after} (${e.message})`));
    } else if (e instanceof ApiError) {
      await write('ERROR', e.toStatus());
    } else if (!ctl.signal.aborted) {
      await write('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'internal error while watching', reason: 'InternalError', code: 500 });
      throw e;
    }
  } finally {
    clearTimeout(timer);
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    shutdown.removeEventListener('abort', abort);
    res.off('close', abort);
    opts.hooks?.onEnd?.(r);
    if (!res.writableEnded) res.end();
  }
}

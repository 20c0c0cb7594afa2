/**
 * One watch of the Containers in the benchmark namespace, as a user sees them change:
 * waits for a Container to reach a phase or to be gone, and keeps, per Container, the
 * time each event was read (for the per-phase breakdown).
 */
import { ApiClient, containersPath } from './api-client.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';

/** One watch event of one Container, as read by the benchmark. */
export interface SeenEvent {
  readonly type: string;
  /** `performance.timeOrigin + performance.now()` when the event was read: comparable with the server's log times. */
  readonly atAbsMs: number;
  readonly phase?: string;
  readonly nodeName?: string;
  readonly finalizers: number;
}

interface Waiter {
  readonly cancel: () => void;
  readonly test: (e: SeenEvent) => boolean;
  readonly resolve: (atAbsMs: number) => void;
}

interface WatchObject {
  metadata?: { name?: string; finalizers?: string[] };
  spec?: { nodeName?: string };
  status?: { phase?: string };
}

/** A watch of `…/namespaces/default/containers`, open until `close()`. */
export class ContainerWatch {
  private readonly history = new Map<string, SeenEvent[]>();
  /** Pending waiters by Container name. */
  private readonly waiters = new Map<string, Set<Waiter>>();
  private close_: (() => void) | undefined;

  private constructor(private readonly keepHistory: boolean) {}

  /** Lists once for the current resourceVersion and watches from it. */
  static async open(client: ApiClient, opts: { keepHistory?: boolean } = {}): Promise<ContainerWatch> {
    const w = new ContainerWatch(opts.keepHistory ?? true);
    const collection = containersPath(BENCH_NAMESPACE);
    const rv = (JSON.parse((await client.expectOk('GET', `${collection}?limit=1`)).body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const handle = await client.watch(`${collection}?watch=true&resourceVersion=${rv}&timeoutSeconds=3600`, (ev, receivedAt) => {
      const o = ev.object as WatchObject;
      const name = o.metadata?.name;
      if (!name) return;
      const seen: SeenEvent = {
        type: ev.type,
        atAbsMs: performance.timeOrigin + receivedAt,
        ...(o.status?.phase ? { phase: o.status.phase } : {}),
        ...(o.spec?.nodeName ? { nodeName: o.spec.nodeName } : {}),
        finalizers: o.metadata?.finalizers?.length ?? 0,
      };
      w.record(name, seen);
    });
    w.close_ = handle.close;
    return w;
  }

  private record(name: string, e: SeenEvent): void {
    if (this.keepHistory) {
      const h = this.history.get(name);
      if (h) h.push(e);
      else this.history.set(name, [e]);
    }
    const mine = this.waiters.get(name);
    if (!mine) return;
    for (const w of mine) {
      if (w.test(e)) {
        mine.delete(w);
        w.resolve(e.atAbsMs);
      }
    }
    if (mine.size === 0) this.waiters.delete(name);
  }

  /**
   * Resolves with the time (absolute ms) of the first event from now on for `name`
   * that passes `test`; rejects after `timeoutMs`.
   */
  until(name: string, test: (e: SeenEvent) => boolean, timeoutMs: number, what = 'event'): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.get(name)?.delete(waiter);
        const last = this.history.get(name)?.at(-1);
        reject(new Error(`container ${name}: no ${what} within ${timeoutMs} ms (last seen: ${last ? JSON.stringify(last) : 'nothing'})`));
      }, timeoutMs);
      const waiter: Waiter = {
        cancel: () => {
          clearTimeout(timer);
          reject(new Error(`container ${name}: the watch was closed while waiting for ${what}`));
        },
        test,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      const mine = this.waiters.get(name);
      if (mine) mine.add(waiter);
      else this.waiters.set(name, new Set([waiter]));
    });
  }

  /** `until` the Container's `status.phase` is `phase`. */
  untilPhase(name: string, phase: string, timeoutMs: number): Promise<number> {
    return this.until(name, (e) => e.type !== 'DELETED' && e.phase === phase, timeoutMs, `phase ${phase}`);
  }

  /** `until` the Container is gone (a `DELETED` event). */
  untilDeleted(name: string, timeoutMs: number): Promise<number> {
    return this.until(name, (e) => e.type === 'DELETED', timeoutMs, 'DELETED event');
  }

  /** The events seen for `name` so far, oldest first. */
  events(name: string): readonly SeenEvent[] {
    return this.history.get(name) ?? [];
  }

  close(): void {
    this.close_?.();
    for (const set of this.waiters.values()) for (const w of set) w.cancel();
    this.waiters.clear();
  }
}

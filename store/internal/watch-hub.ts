import { StoreError, type WatchEvent, type WatchOptions } from '../revision-log.ts';

/** Where a watch replays history from: the backend's log. */
export interface HistorySource {
  /**
   * Events for keys starting with `prefix` with revision > `afterRevision`, in revision
   * order, at most `limit`. Must be synchronous so that replay and the switch to live
   * events happen with no `publish` in between. It may return committed events that
   * are not published yet, as long as they are published later.
   */
  readHistory(prefix: string, afterRevision: number, limit: number): WatchEvent[];
  /** The latest committed revision. */
  currentRevision(): number;
  /** The oldest revision a watch may start after. */
  compactRevision(): number;
}

export interface WatchHubOptions {
  /** Events read from the log per replay step. Default 1000. */
  readonly replayChunk?: number;
}

const DEFAULT_MAX_BACKLOG = 10_000;

/**
 * Fans committed events out to watchers, each with its own queue.
 *
 * A new watcher first replays the log in chunks, then, in the same synchronous step
 * as its last replay read, switches to live events: no gap and no duplicate. Callers
 * must `publish` every committed event, in revision order, synchronously after commit.
 */
export class WatchHub {
  private readonly streams = new Set<WatchStream>();
  private readonly replayChunk: number;

  constructor(
    private readonly source: HistorySource,
    options: WatchHubOptions = {},
  ) {
    this.replayChunk = options.replayChunk ?? 1000;
  }

  /** How many watches are open. */
  get size(): number {
    return this.streams.size;
  }

  /** The watch of `RevisionLog.watch`; starts when iteration starts. */
  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchEvent> {
    return {
      [Symbol.asyncIterator]: () => {
        const stream = new WatchStream(this, prefix, opts);
        if (!stream.finished) this.streams.add(stream);
        return stream;
      },
    };
  }

  /** Delivers committed events (ascending revisions) to live watchers. */
  publish(events: readonly WatchEvent[]): void {
    if (events.length === 0) return;
    for (const s of this.streams) s.offer(events);
  }

  /** Ends every watch; their iterators complete. */
  closeAll(): void {
    for (const s of [...this.streams]) s.end();
  }

  /** @internal */
  readChunk(prefix: string, afterRevision: number): { events: WatchEvent[]; upTo: number; caughtUp: boolean } {
    const compacted = this.source.compactRevision();
    if (afterRevision < compacted) {
      throw new StoreError('Compacted', `watch from revision ${afterRevision}: compacted to ${compacted}`);
    }
    const events = this.source.readHistory(prefix, afterRevision, this.replayChunk);
    if (events.length < this.replayChunk) {
      // The log may hold events not yet published (a writer thread committed them):
      // they were replayed now, so live delivery must skip them.
      const last = events.length ? events[events.length - 1]!.kv.modRevision : 0;
      return { events, upTo: Math.max(afterRevision, this.source.currentRevision(), last), caughtUp: true };
    }
    return { events, upTo: events[events.length - 1]!.kv.modRevision, caughtUp: false };
  }

  /** @internal */
  forget(stream: WatchStream): void {
    this.streams.delete(stream);
  }
}

class WatchStream implements AsyncIterator<WatchEvent> {
  private queue: WatchEvent[] = [];
  private head = 0;
  private phase: 'replay' | 'live' | 'done' = 'replay';
  private error: unknown;
  private cursor: number;
  private waiters: Array<() => void> = [];
  private readonly maxBacklog: number;
  private readonly onAbort = (): void => this.end();

  constructor(
    private readonly hub: WatchHub,
    private readonly prefix: string,
    private readonly opts: WatchOptions,
  ) {
    this.cursor = opts.afterRevision;
    this.maxBacklog = opts.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    if (opts.signal?.aborted) this.phase = 'done';
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get finished(): boolean {
    return this.phase === 'done';
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      if (this.head < this.queue.length) {
        const value = this.queue[this.head]!;
        this.queue[this.head++] = undefined as never;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        return { value, done: false };
      }
      if (this.error !== undefined) {
        const err = this.error;
        this.error = undefined;
        throw err;
      }
      if (this.phase === 'done') return { value: undefined, done: true };
      if (this.phase === 'replay') {
        this.replayStep();
        continue;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.end();
    return { value: undefined, done: true };
  }

  /** Called by the hub with newly committed events. */
  offer(events: readonly WatchEvent[]): void {
    if (this.phase !== 'live') return;
    let added = false;
    for (const ev of events) {
      const rev = ev.kv.modRevision;
      if (rev <= this.cursor) continue;
      this.cursor = rev;
      if (!ev.kv.key.startsWith(this.prefix)) continue;
      this.queue.push(ev);
      added = true;
    }
    if (!added) return;
    if (this.queue.length - this.head > this.maxBacklog) {
      this.fail(
        new StoreError('Compacted', `watch fell more than ${this.maxBacklog} events behind at revision ${this.cursor}`),
      );
      return;
    }
    this.wake();
  }

  /** Completes the iterator, dropping undelivered events. */
  end(): void {
    if (this.phase === 'done') return;
    this.queue = [];
    this.head = 0;
    this.finish();
  }

  private replayStep(): void {
    try {
      const { events, upTo, caughtUp } = this.hub.readChunk(this.prefix, this.cursor);
      for (const ev of events) this.queue.push(ev);
      this.cursor = upTo;
      if (caughtUp) this.phase = 'live';
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.queue = [];
    this.head = 0;
    this.error = err;
    this.finish();
  }

  private finish(): void {
    this.phase = 'done';
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.hub.forget(this);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** A watch whose iteration rejects with `err`, for watches on a closed store. */
export function failedWatch(err: Error): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(err),
    }),
  };
}

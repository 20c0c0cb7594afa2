import type { CallOptions, ContainerEvent } from '../cri/types.ts';
import type { ServerContext } from './context.ts';

/**
 * Fans container events out to subscribers. A subscription starts when
 * `subscribe` is called (not on first `next()`), buffers without bound until
 * read, gets nothing from before it started, and ends when its signal aborts or
 * the hub closes.
 */
export class EventHub {
  private readonly subscribers = new Set<Subscription>();

  publish(event: ContainerEvent): void {
    for (const s of this.subscribers) s.push(event);
  }

  subscribe(opts?: CallOptions): AsyncIterableIterator<ContainerEvent> {
    const sub = new Subscription(() => this.subscribers.delete(sub));
    if (opts?.signal?.aborted) {
      sub.end();
      return sub;
    }
    this.subscribers.add(sub);
    opts?.signal?.addEventListener('abort', () => sub.end(), { once: true });
    return sub;
  }

  /** Ends every subscription. */
  close(): void {
    for (const s of [...this.subscribers]) s.end();
  }
}

class Subscription implements AsyncIterableIterator<ContainerEvent> {
  private readonly queue: ContainerEvent[] = [];
  private waiter: ((r: IteratorResult<ContainerEvent>) => void) | undefined;
  private ended = false;

  constructor(private readonly onEnd: () => void) {}

  push(e: ContainerEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: e, done: false });
    } else this.queue.push(e);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ContainerEvent>> {
    const e = this.queue.shift();
    if (e) return Promise.resolve({ value: e, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  return(): Promise<IteratorResult<ContainerEvent>> {
    this.queue.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ContainerEvent> {
    return this;
  }
}

/** The `events` verb: state changes of every container from now on. */
export function events(ctx: ServerContext, opts?: CallOptions): AsyncIterable<ContainerEvent> {
  return ctx.hub.subscribe(opts);
}

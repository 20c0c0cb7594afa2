/**
 * `EventRecorder`: writes core v1 Events about objects, as client-go's event recorder
 * does, so `kubectl describe` and `kubectl get events` show what controllers did.
 */
import { randomBytes } from 'node:crypto';
import type { KubeObject } from '../../api/types/index.ts';
import type { ApiClient } from './client.ts';
import { isNotFound } from './api-status-error.ts';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { errorInfo } from './informer.ts';
import { silentLogger, type Logger } from './logger.ts';
import { Event } from './resource-kind.ts';

/** Event types Kubernetes defines. */
export const EVENT_NORMAL = 'Normal';
export const EVENT_WARNING = 'Warning';
export type EventType = typeof EVENT_NORMAL | typeof EVENT_WARNING;

export interface EventRecorderOptions {
  readonly client: ApiClient;
  /** `source.component` and `reportingComponent`, e.g. `berth-agent`. */
  readonly component: string;
  /** `source.host` and `reportingInstance`, e.g. the node name. */
  readonly host?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Distinct (object, type, reason, message) series remembered for aggregation. Default 4096. */
  readonly cacheSize?: number;
  /**
   * Event writes per second, after a burst of `burst` (kubelet's `--event-qps` and
   * `--event-burst`, 50 and 100): Events are best effort, and must not take the API
   * server from the work they describe. `Infinity` disables the limit. Default 50.
   */
  readonly qps?: number;
  /** Writes allowed at once before `qps` applies. Default 100. */
  readonly burst?: number;
  /**
   * Events waiting for the rate limit beyond this many are dropped (logged, counted in
   * `dropped`), as client-go's broadcaster drops beyond its 1,000 queued. Default 1,000.
   */
  readonly maxQueued?: number;
  /**
   * Each write waits this long first, so that Events (best effort) do not compete with
   * the writes of the reconcile that records them — on a one-process server they share
   * the API server's event loop. Default 25 ms.
   */
  readonly delayMs?: number;
}

interface Series {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

const MAX_MESSAGE = 1024;

/**
 * Records Events. Repeats of the same (object, type, reason, message) within this
 * process become one Event whose `count` and `lastTimestamp` are patched, instead of
 * a new object each time. Cluster-scoped objects get their Events in `default`.
 *
 * Best effort: `event` never rejects; failures are logged. Calls for one series are
 * written in order. Writes are rate limited (`qps`, `burst`); beyond `maxQueued`
 * waiting writes, new Events are dropped, so a burst of thousands of objects costs the
 * API server a bounded number of Event writes.
 */
export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly cacheSize: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly maxQueued: number;
  private tokens: number;
  private refilledAtMs: number;
  /** Writes waiting for a token, oldest first. */
  private readonly waiting: (() => void)[] = [];
  private refillTimer: TimerHandle | undefined;
  private droppedCount = 0;

  constructor(private readonly opts: EventRecorderOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = (opts.log ?? silentLogger).child({ component: 'event-recorder' });
    this.cacheSize = opts.cacheSize ?? 4096;
    this.qps = opts.qps ?? 50;
    if (!(this.qps > 0)) throw new RangeError(`EventRecorder: qps must be > 0 (Infinity for no limit), not ${this.qps}`);
    this.burst = Math.max(1, opts.burst ?? 100);
    this.maxQueued = Math.max(0, opts.maxQueued ?? 1_000);
    this.tokens = this.burst;
    this.refilledAtMs = this.clock.nowMs();
  }

  /** Events dropped so far because more than `maxQueued` were waiting for the rate limit. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Records that `reason` happened to `obj`. Resolves once written (or given up). */
  event(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const msg = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const key = [obj.apiVersion, obj.kind, obj.metadata.namespace ?? '', obj.metadata.name, obj.metadata.uid ?? '', type, reason, msg].join('\u0000');
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.write(key, obj, type, reason, msg));
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  /** `event` of type Warning. */
  warning(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.event(obj, EVENT_WARNING, reason, message);
  }

  /** `event` of type Normal. */
  normal(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.event(obj, EVENT_NORMAL, reason, message);
  }

  private async write(key: string, obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const delayMs = this.opts.delayMs ?? 25;
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (!(await this.acquire())) {
      if (this.droppedCount++ % 1000 === 0) this.log.warn({ dropped: this.droppedCount, reason, object: `${obj.kind}/${obj.metadata.name}` }, 'dropping events: more are waiting than maxQueued');
      return;
    }
    const now = new Date(this.clock.nowMs()).toISOString();
    const seen = this.series.get(key);
    try {
      if (seen) {
        try {
          await this.opts.client.patch(Event, seen.namespace, seen.name, { count: seen.count + 1, lastTimestamp: now });
          seen.count++;
          this.touch(key, seen);
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          this.series.delete(key); // the Event was deleted (or expired): start a new one
        }
      }
      const namespace = obj.metadata.namespace || 'default';
      const name = `${obj.metadata.name}.${(BigInt(this.clock.nowMs()) * 1_000_000n + BigInt(randomBytes(2).readUInt16BE(0))).toString(16)}`;
      await this.opts.client.create<Event>({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
          ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
          ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
        },
        reason,
        message,
        type,
        source: { component: this.opts.component, ...(this.opts.host ? { host: this.opts.host } : {}) },
        reportingComponent: this.opts.component,
        ...(this.opts.host ? { reportingInstance: this.opts.host } : {}),
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
      });
      this.touch(key, { name, namespace, count: 1, firstTimestamp: now });
    } catch (err) {
      this.log.warn({ err: errorInfo(err), reason, object: `${obj.kind}/${obj.metadata.name}` }, 'could not record event');
    }
  }

  /** Resolves true when a write may go (a token taken), false when it is dropped. */
  private acquire(): Promise<boolean> {
    this.refill();
    if (this.waiting.length === 0 && this.tokens >= 1) {
      this.tokens--;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting.push(() => resolve(true));
      this.scheduleRefill();
    });
  }

  private refill(): void {
    const now = this.clock.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAtMs) * this.qps) / 1000);
    this.refilledAtMs = now;
  }

  private scheduleRefill(): void {
    if (this.refillTimer || this.waiting.length === 0) return;
    const delayMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.qps));
    this.refillTimer = this.clock.setTimer(() => {
      this.refillTimer = undefined;
      this.refill();
      while (this.waiting.length > 0 && this.tokens >= 1) {
        this.tokens--;
        this.waiting.shift()!();
      }
      this.scheduleRefill();
    }, delayMs);
  }

  /** Keeps the series most recently used; forgets the oldest beyond the cache size. */
  private touch(key: string, s: Series): void {
    this.series.delete(key);
    this.series.set(key, s);
    while (this.series.size > this.cacheSize) this.series.delete(this.series.keys().next().value!);
  }
}

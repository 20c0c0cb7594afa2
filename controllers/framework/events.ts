/**
 * `EventRecorder`: writes core v1 Events about objects, as client-go's event recorder
 * does, so `kubectl describe` and `kubectl get events` show what controllers did.
 */
import { randomBytes } from 'node:crypto';
import type { KubeObject } from '../../api/types/index.ts';
import type { ApiClient } from './client.ts';
import { isNotFound } from './api-status-error.ts';
import { realClock, type Clock } from './clock.ts';
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
 * written in order.
 */
export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly cacheSize: number;

  constructor(private readonly opts: EventRecorderOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = (opts.log ?? silentLogger).child({ component: 'event-recorder' });
    this.cacheSize = opts.cacheSize ?? 4096;
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

  /** Keeps the series most recently used; forgets the oldest beyond the cache size. */
  private touch(key: string, s: Series): void {
    this.series.delete(key);
    this.series.set(key, s);
    while (this.series.size > this.cacheSize) this.series.delete(this.series.keys().next().value!);
  }
}

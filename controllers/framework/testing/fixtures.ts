/**
 * Objects and helpers shared by the framework's tests.
 */
import type { Container, Volume } from '../resource-kind.ts';

/** A minimal valid Volume in `namespace`. */
export function volumeFixture(name: string, opts: { namespace?: string; labels?: Record<string, string> } = {}): Volume {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Volume',
    metadata: { name, namespace: opts.namespace ?? 'default', ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: { driver: 'local' },
  };
}

/** A minimal valid Container, optionally bound to a node. */
export function containerFixture(name: string, opts: { nodeName?: string; labels?: Record<string, string> } = {}): Container {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name, namespace: 'default', ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: { image: 'busybox', command: ['sleep', '3600'], ...(opts.nodeName ? { nodeName: opts.nodeName } : {}) },
  };
}

/** Sum of a counter's values whose labels include `labels`. */
export async function metricValue(registry: { getSingleMetric(name: string): unknown }, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name) as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> } | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

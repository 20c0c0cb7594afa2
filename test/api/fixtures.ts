/** Objects used across API tests. */
export const CTR = '/apis/berth.dev/v1/namespaces/default/containers';
export const NODES = '/apis/berth.dev/v1/nodes';
export const NAMESPACES = '/api/v1/namespaces';

/** A minimal valid Container. */
export function container(name: string, extra: { labels?: Record<string, string>; spec?: Record<string, unknown>; metadata?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name, ...(extra.labels ? { labels: extra.labels } : {}), ...(extra.metadata ?? {}) },
    spec: { image: 'busybox', command: ['sleep', '3600'], ...(extra.spec ?? {}) },
  };
}

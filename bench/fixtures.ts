/**
 * The objects the benchmarks write, and helpers to create many of them.
 */
import { ApiClient, containersPath } from './api-client.ts';
import { closedLoop } from './stats.ts';

/** The namespace every benchmark writes to (it exists from the first start). */
export const BENCH_NAMESPACE = 'default';

/**
 * A Container of about 1 KB as JSON: a command, ten environment variables and a
 * few labels and annotations, the size of a small real workload.
 */
export function containerObject(name: string): Record<string, unknown> {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: {
      name,
      labels: { app: 'bench', tier: 'backend', shard: String(name.length % 4) },
      annotations: { 'bench.berth.dev/purpose': 'throughput benchmark object of about one kilobyte' },
    },
    spec: {
      image: 'busybox:1.36',
      command: ['sh', '-c', 'while true; do echo "$(date) serving"; sleep 5; done'],
      env: Array.from({ length: 10 }, (_, i) => ({ name: `BENCH_VAR_${i}`, value: `value-${i}-${'x'.repeat(24)}` })),
      workingDir: '/srv',
      restartPolicy: 'Always',
    },
  };
}

/** The JSON body that creates `containerObject(name)`. */
export const containerBody = (name: string): string => JSON.stringify(containerObject(name));

/**
 * Creates `count` containers named `${prefix}${i}` with `clients` concurrent clients.
 * Rejects on the first failed create.
 */
export async function createContainers(client: ApiClient, prefix: string, count: number, clients = 16): Promise<{ seconds: number }> {
  const collection = containersPath(BENCH_NAMESPACE);
  const r = await closedLoop({
    clients,
    total: count,
    op: async (i) => {
      await client.expectOk('POST', collection, { body: containerBody(`${prefix}${i}`) });
    },
  });
  return { seconds: r.seconds };
}

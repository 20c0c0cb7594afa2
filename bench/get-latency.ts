/**
 * Benchmark 2: GET latency under 16 concurrent closed-loop clients over 1,000 existing
 * Containers (issue 2 target: p99 ≤ 2 ms). Latency is measured in the load generator
 * from sending the request to reading the whole response, over keep-alive HTTPS: 16
 * connections of the lean client (`lean-get.ts`, as `wrk` or a Go client would load
 * the server), and for comparison the same with Node's `https` client, which costs
 * the generator about as much CPU as the server spends and so measures itself on two
 * cores. With 16 requests always in flight, the mean latency is 16 / rate (Little's
 * law), so the rate bounds the latency; 5,000 GETs from a single client are measured
 * beside it to show the latency of one request on an otherwise idle server.
 */
import { containersPath } from './api-client.ts';
import { fmtInt, fmtMs, loadNote, scaled, withCpu, withServer, type Benchmark } from './benchmark.ts';
import { BENCH_NAMESPACE, createContainers } from './fixtures.ts';
import { LeanGetConnection } from './lean-get.ts';
import { closedLoop, summarize } from './stats.ts';

const TARGET_P99_MS = 2;

export const getLatencyBenchmark: Benchmark = {
  name: 'get',
  title: 'GET latency, 16 clients',
  budgetMs: 60_000,
  async run(ctx) {
    const objects = scaled(ctx, 1000);
    const requests = scaled(ctx, 100_000);
    return withServer(ctx, 'get', async (server, client) => {
      ctx.log(`get: creating ${objects} containers`);
      await createContainers(client, 'g-', objects, 16);
      const collection = containersPath(BENCH_NAMESPACE);
      // A fixed stride visits every object in a scattered order, the same in every run.
      const pathOf = (i: number) => `${collection}/g-${(i * 7919) % objects}`;
      const conns = await Promise.all(Array.from({ length: 16 }, () => LeanGetConnection.open(server)));
      try {
        /** A closed loop of `clients` lean connections, each with its own request in flight. */
        const lean = (clients: number, total: number) => {
          const free = conns.slice(0, clients);
          return closedLoop({
            clients,
            total,
            op: async (i) => {
              const c = free.pop()!;
              try {
                const status = await c.get(pathOf(i));
                if (status !== 200) throw new Error(`GET ${pathOf(i)}: HTTP ${status}`);
              } finally {
                free.push(c);
              }
            },
          });
        };
        await lean(16, Math.min(2000, requests));
        ctx.log(`get: ${requests} GETs, 16 clients`);
        const { value: r, cpu } = await withCpu(server, () => lean(16, requests));
        const latency = summarize(r.latenciesMs);
        ctx.log(`get: ${requests / 5} GETs, 16 clients of Node's https client`);
        const { value: nodeHttps, cpu: nodeCpu } = await withCpu(server, () =>
          closedLoop({ clients: 16, total: requests / 5, op: async (i) => void (await client.expectOk('GET', pathOf(i))) }),
        );
        const nodeLatency = summarize(nodeHttps.latenciesMs);
        ctx.log('get: 5000 GETs, 1 client');
        const single = await lean(1, scaled(ctx, 5000));
        const singleLatency = summarize(single.latenciesMs);
        return {
          summary: {
            objects, requests, clients: 16, perSecond: Math.round(r.opsPerSecond), seconds: Math.round(r.seconds * 100) / 100, latency, cpu,
            nodeHttpsClient: { perSecond: Math.round(nodeHttps.opsPerSecond), latency: nodeLatency, cpu: nodeCpu },
            oneClient: { perSecond: Math.round(single.opsPerSecond), latency: singleLatency },
          },
          rows: [
            { metric: 'GET p50, 16 clients', value: fmtMs(latency.p50Ms) },
            { metric: `GET p99, 16 clients${loadNote(cpu)}`, value: fmtMs(latency.p99Ms), target: `≤ ${TARGET_P99_MS} ms`, met: latency.p99Ms <= TARGET_P99_MS },
            { metric: 'GET rate, 16 clients', value: `${fmtInt(r.opsPerSecond)} /s` },
            { metric: `GET p99, 16 clients of Node's https client (p50 ${fmtMs(nodeLatency.p50Ms)}, ${fmtInt(nodeHttps.opsPerSecond)} /s)${loadNote(nodeCpu)}`, value: fmtMs(nodeLatency.p99Ms) },
            { metric: `GET p99, 1 client (p50 ${fmtMs(singleLatency.p50Ms)}, ${fmtInt(single.opsPerSecond)} /s)`, value: fmtMs(singleLatency.p99Ms) },
          ],
        };
      } finally {
        for (const c of conns) c.close();
      }
    });
  },
};

/**
 * Benchmark 3: one full list of 10,000 Containers (no `limit`), as JSON and as a
 * server-side `Table` (what `kubectl get` asks for); the median of 5 of each. Time is
 * from sending the request to reading the whole body in the load generator.
 */
import { ACCEPT_TABLE, containersPath } from './api-client.ts';
import { fmtMB, fmtMs, scaled, toMB, withServer, type Benchmark } from './benchmark.ts';
import { BENCH_NAMESPACE, createContainers } from './fixtures.ts';
import { median } from './stats.ts';

const REPEATS = 5;

export const listBenchmark: Benchmark = {
  name: 'list',
  title: 'List of 10,000 objects',
  budgetMs: 90_000,
  async run(ctx) {
    const objects = scaled(ctx, 10_000);
    return withServer(ctx, 'list', async (_server, client) => {
      ctx.log(`list: creating ${objects} containers`);
      await createContainers(client, 'l-', objects, 16);
      const path = containersPath(BENCH_NAMESPACE);
      const measure = async (accept: string) => {
        const times: number[] = [];
        let bytes = 0;
        let items = 0;
        for (let i = 0; i < REPEATS; i++) {
          const t0 = performance.now();
          const res = await client.expectOk('GET', path, { accept });
          times.push(performance.now() - t0);
          bytes = Buffer.byteLength(res.body);
          if (i === 0) {
            const parsed = JSON.parse(res.body) as { items?: unknown[]; rows?: unknown[] };
            items = (parsed.items ?? parsed.rows ?? []).length;
          }
        }
        return { medianMs: Math.round(median(times) * 10) / 10, minMs: Math.round(Math.min(...times) * 10) / 10, bodyMB: toMB(bytes), items, bytes };
      };
      ctx.log(`list: ${REPEATS} JSON lists and ${REPEATS} Table lists`);
      const json = await measure('application/json');
      const table = await measure(ACCEPT_TABLE);
      for (const [what, r] of [['JSON', json], ['Table', table]] as const) {
        if (r.items !== objects) throw new Error(`list (${what}) returned ${r.items} items, want ${objects}`);
      }
      return {
        summary: { objects, repeats: REPEATS, json, table },
        rows: [
          { metric: `List ${objects.toLocaleString('en-US')} containers, JSON (${fmtMB(json.bytes)}), median of ${REPEATS}`, value: fmtMs(json.medianMs) },
          { metric: `List ${objects.toLocaleString('en-US')} containers, Table (${fmtMB(table.bytes)}), median of ${REPEATS}`, value: fmtMs(table.medianMs) },
        ],
      };
    });
  },
};

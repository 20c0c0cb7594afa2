/**
 * Benchmark 6: database size under churn. 1,000 Containers, then 100,000 merge patches
 * to them through the API (16 closed-loop clients, round robin over the objects), with
 * the server's default compaction. The size of `berth.db` + `berth.db-wal` is sampled
 * (each) every 250 ms during the run and read at the end, and compared with the size of the
 * live data (the 1,000 objects as JSON). "Bounded" is checked as: the largest size of
 * the database file in the second half of the run is at most 10% above the largest in
 * the first half, that is, it stopped growing although the updates went on. The WAL is
 * reported beside it: it swells while a compaction runs and is truncated afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { containersPath } from './api-client.ts';
import { cpuMeter, fmtInt, loadNote, fmtMB, scaled, toMB, withServer, type Benchmark } from './benchmark.ts';
import { BENCH_NAMESPACE, createContainers } from './fixtures.ts';
import { closedLoop, summarize } from './stats.ts';

/** Sizes of `berth.db` and `berth.db-wal` in a data directory (a missing file counts as 0). */
export function fileBytes(dataDir: string): { db: number; wal: number } {
  const size = (f: string) => {
    try {
      return fs.statSync(path.join(dataDir, f)).size;
    } catch {
      return 0; // not there (yet)
    }
  };
  return { db: size('berth.db'), wal: size('berth.db-wal') };
}

export interface DbSizeOptions {
  readonly objects: number;
  readonly updates: number;
}

/** The churn benchmark with the given sizes (scaled by `--scale`). */
export function makeDbSizeBenchmark(sizes: DbSizeOptions): Benchmark {
  return {
    name: 'db-size',
    title: `Database size after ${fmtInt(sizes.updates)} updates of ${fmtInt(sizes.objects)} objects`,
    budgetMs: Math.max(60_000, sizes.updates * 2.4),
    async run(ctx) {
      const objects = scaled(ctx, sizes.objects);
      const updates = scaled(ctx, sizes.updates);
      const r = await withServer(ctx, 'db-size', async (server, client) => {
        const dataDir = server.dataDir;
        const collection = containersPath(BENCH_NAMESPACE);
        ctx.log(`db-size: creating ${objects} containers`);
        await createContainers(client, 'd-', objects, 16);
        const start = fileBytes(dataDir);
        let done = 0;
        // [updates done, db bytes, wal bytes]
        const samples: [number, number, number][] = [[0, start.db, start.wal]];
        const sampler = setInterval(() => {
          const b = fileBytes(dataDir);
          samples.push([done, b.db, b.wal]);
        }, 250);
        ctx.log(`db-size: ${updates} merge patches, 16 clients`);
        let loop;
        const meter = cpuMeter(server.pid);
        try {
          loop = await closedLoop({
            clients: 16,
            total: updates,
            op: async (i) => {
              await client.expectOk('PATCH', `${collection}/d-${i % objects}`, {
                body: JSON.stringify({ metadata: { annotations: { 'bench.berth.dev/seq': String(i) } } }),
                contentType: 'application/merge-patch+json',
              });
              done++;
            },
          });
        } finally {
          clearInterval(sampler);
        }
        const cpu = meter.done();
        const end = fileBytes(dataDir);
        samples.push([updates, end.db, end.wal]);
        const list = JSON.parse((await client.expectOk('GET', collection)).body) as { items: unknown[] };
        const liveBytes = list.items.reduce<number>((n, o) => n + Buffer.byteLength(JSON.stringify(o)), 0);
        return { loop, cpu, end: end.db + end.wal, liveBytes, samples };
      });

      const total = (x: [number, number, number]) => x[1] + x[2];
      const maxOf = (xs: [number, number, number][], f: (x: [number, number, number]) => number) => xs.reduce((m, x) => Math.max(m, f(x)), 0);
      const dbFile = (x: [number, number, number]) => x[1];
      const firstHalfMax = maxOf(r.samples.filter(([n]) => n <= updates / 2), dbFile);
      const secondHalfMax = maxOf(r.samples.filter(([n]) => n > updates / 2), dbFile);
      const bounded = secondHalfMax <= 1.1 * firstHalfMax;
      const max = maxOf(r.samples, total);
      const walMax = maxOf(r.samples, (x) => x[2]);
      // The largest sample in each tenth of the run: the shape without flooding the output.
      const byTenth = Array.from({ length: 10 }, (_, t) => {
        const xs = r.samples.filter(([n]) => n > (t * updates) / 10 && n <= ((t + 1) * updates) / 10);
        const top = xs.reduce<[number, number, number] | undefined>((m, x) => (!m || total(x) > total(m) ? x : m), undefined);
        return top ? { upTo: ((t + 1) * updates) / 10, dbMB: toMB(top[1]), walMB: toMB(top[2]) } : { upTo: ((t + 1) * updates) / 10 };
      });
      const latency = summarize(r.loop.latenciesMs);
      return {
        summary: {
          objects,
          updates,
          clients: 16,
          seconds: Math.round(r.loop.seconds * 10) / 10,
          updatesPerSecond: Math.round(r.loop.opsPerSecond),
          latency,
          cpu: r.cpu,
          liveMB: toMB(r.liveBytes),
          beforeUpdatesMB: toMB(total(r.samples[0]!)),
          maxDuringMB: toMB(max),
          walMaxMB: toMB(walMax),
          endMB: toMB(r.end),
          dbFileFirstHalfMaxMB: toMB(firstHalfMax),
          dbFileSecondHalfMaxMB: toMB(secondHalfMax),
          bounded,
          maxByTenth: byTenth,
        },
        rows: [
          {
            metric: `DB + WAL after ${fmtInt(updates)} updates of ${fmtInt(objects)} objects (live data ${fmtMB(r.liveBytes)}; largest during the run ${fmtMB(max)}, of which WAL ${fmtMB(walMax)} at its peak)`,
            value: fmtMB(r.end),
            target: `bounded: DB file max in 2nd half (${fmtMB(secondHalfMax)}) ≤ 1.1 × 1st half (${fmtMB(firstHalfMax)})`,
            met: bounded,
          },
          {
            metric: `Time for ${fmtInt(updates)} merge patches, 16 clients (p99 ${latency.p99Ms} ms${loadNote(r.cpu)})`,
            value: `${r.loop.seconds.toFixed(1)} s (${fmtInt(r.loop.opsPerSecond)} /s)`,
          },
        ],
      };
    },
  };
}

/** Benchmark 6 as issue 2 sizes it: 100,000 updates of 1,000 objects. */
export const dbSizeBenchmark: Benchmark = makeDbSizeBenchmark({ objects: 1000, updates: 100_000 });

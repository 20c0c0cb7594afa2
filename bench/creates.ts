/**
 * Benchmark 1: durable creates per second through the HTTPS API with 1 and 16
 * closed-loop clients (5,000 creates each), and etcd doing the same number of puts
 * of the same value size with 1 and 16 clients in the same run (issue 2: berth ≥ etcd
 * with 16 clients). The CPU used by the server (berth or etcd) and by the load
 * generator is reported for each phase.
 *
 * berth: `POST …/namespaces/default/containers` of a ~1 KB Container; the server
 * acknowledges a create only after its group commit is fsynced. etcd: `POST /v3/kv/put`
 * through its gRPC gateway (HTTP/JSON, keep-alive) with the stored berth object as the
 * value; etcd acknowledges after the Raft entry is fsynced. berth and etcd run one
 * after the other, never at the same time. Both get the same warm-up.
 */
import { containersPath } from './api-client.ts';
import { cpuMeter, fmtInt, loadNote, scaled, withCpu, withServer, type Benchmark, type BenchContext, type CpuShare } from './benchmark.ts';
import { makeTempDir } from './cleanup.ts';
import { startEtcd } from './etcd-process.ts';
import { BENCH_NAMESPACE, containerBody, createContainers } from './fixtures.ts';
import { closedLoop, summarize, type ClosedLoopResult } from './stats.ts';

const WARMUP = 200;

const rate = (r: ClosedLoopResult, cpu?: CpuShare) => ({
  perSecond: Math.round(r.opsPerSecond),
  seconds: Math.round(r.seconds * 100) / 100,
  latency: summarize(r.latenciesMs),
  ...(cpu ? { cpu } : {}),
});

async function runBerth(ctx: BenchContext, n: number) {
  return withServer(ctx, 'creates', async (server, client) => {
    const collection = containersPath(BENCH_NAMESPACE);
    await createContainers(client, 'warm-', WARMUP, 16);
    const stored = (await client.expectOk('GET', `${collection}/warm-0`)).body;
    const results: Record<string, ReturnType<typeof rate>> = {};
    for (const clients of [1, 16]) {
      ctx.log(`creates: berth, ${clients} client(s), ${n} creates`);
      const { value: r, cpu } = await withCpu(server, () =>
        closedLoop({
          clients,
          total: n,
          op: async (i) => {
            await client.expectOk('POST', collection, { body: containerBody(`c${clients}-${i}`) });
          },
        }),
      );
      results[`clients${clients}`] = rate(r, cpu);
    }
    return { stored, requestBytes: Buffer.byteLength(containerBody('c16-0')), results };
  });
}

async function runEtcd(ctx: BenchContext, n: number, value: string) {
  const dir = makeTempDir('berth-bench-etcd-');
  try {
    const etcd = await startEtcd({ dataDir: dir.path });
    try {
      const key = (prefix: string, i: number) => `/registry/berth.dev/containers/${BENCH_NAMESPACE}/${prefix}${i}`;
      await closedLoop({ clients: 16, total: WARMUP, op: (i) => etcd.put(key('warm-', i), value) });
      const results: Record<string, ReturnType<typeof rate>> = {};
      for (const clients of [1, 16]) {
        ctx.log(`creates: etcd ${etcd.version}, ${clients} client(s), ${n} puts`);
        const meter = cpuMeter(etcd.pid);
        const r = await closedLoop({ clients, total: n, op: (i) => etcd.put(key(`c${clients}-`, i), value) });
        results[`clients${clients}`] = rate(r, meter.done());
      }
      return { version: etcd.version, results };
    } finally {
      await etcd.stop();
    }
  } finally {
    dir.remove();
  }
}

export const createsBenchmark: Benchmark = {
  name: 'creates',
  title: 'Durable creates/s (berth HTTPS API vs etcd)',
  budgetMs: 150_000,
  async run(ctx) {
    const n = scaled(ctx, 5000);
    const berth = await runBerth(ctx, n);
    const etcd = await runEtcd(ctx, n, berth.stored);
    const b1 = berth.results.clients1!;
    const b16 = berth.results.clients16!;
    const e1 = etcd.results.clients1!;
    const e16 = etcd.results.clients16!;
    return {
      summary: {
        creates: n,
        requestBytes: berth.requestBytes,
        valueBytes: Buffer.byteLength(berth.stored),
        berth: berth.results,
        etcd: { version: etcd.version, ...etcd.results },
        ratio16: Math.round((b16.perSecond / e16.perSecond) * 100) / 100,
      },
      rows: [
        { metric: `berth creates/s, 1 client (p99 ${b1.latency.p99Ms} ms${loadNote(b1.cpu)})`, value: `${fmtInt(b1.perSecond)} /s` },
        { metric: `etcd ${etcd.version} puts/s, 1 client (p99 ${e1.latency.p99Ms} ms${loadNote(e1.cpu)})`, value: `${fmtInt(e1.perSecond)} /s` },
        {
          metric: `berth creates/s, 16 clients (p99 ${b16.latency.p99Ms} ms${loadNote(b16.cpu)})`,
          value: `${fmtInt(b16.perSecond)} /s`,
          target: `≥ etcd (${fmtInt(e16.perSecond)} /s)`,
          met: b16.perSecond >= e16.perSecond,
        },
        { metric: `etcd ${etcd.version} puts/s, 16 clients (p99 ${e16.latency.p99Ms} ms${loadNote(e16.cpu)})`, value: `${fmtInt(e16.perSecond)} /s` },
      ],
    };
  },
};

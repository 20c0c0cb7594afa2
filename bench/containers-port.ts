/**
 * Container benchmark: apply → a published port answering (issue 5). A Container
 * running busybox `httpd` on the default bridge network with `ports: [{containerPort:
 * 8080}]` (a free host port, reported in status) is POSTed; the run is timed until an
 * HTTP GET of `127.0.0.1:<hostPort>` through the nftables DNAT answers 200. The
 * Container is then deleted (untimed) and the next run waits until it is gone. No
 * target in the issue: the figure shows what a user waits for from `kubectl apply` to
 * a reachable service, beside `ctr-start` (apply → Running with no network).
 */
import http from 'node:http';
import { containersPath } from './api-client.ts';
import { fmtMs, scaled, type Benchmark, type BenchContext } from './benchmark.ts';
import { runtimeVersions, whyNoRealRuntime } from './containers-server.ts';
import { deleteAll, leftoversNote, skipped, withBerth } from './containers-session.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';
import { sleep, summarize } from './stats.ts';

const TITLE = 'Containers: apply → published port answering (httpd)';
const WARMUP = 2;
const RUN_TIMEOUT_MS = 30_000;
const POLL_MS = 2;

/** One GET of 127.0.0.1:port/; true on 200. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/index.html', agent: false, timeout: 1_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function run(ctx: BenchContext) {
  const runs = scaled(ctx, 20);
  const { value, leftovers } = await withBerth(ctx, 'ctr-port', { runtime: 'runc' }, async (s) => {
    const collection = containersPath(BENCH_NAMESPACE);
    const body = (name: string) => JSON.stringify({
      apiVersion: 'berth.dev/v1',
      kind: 'Container',
      metadata: { name },
      spec: {
        image: 'busybox',
        command: ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'],
        ports: [{ containerPort: 8080 }],
        stopGracePeriodSeconds: 0,
      },
    });
    const one = async (name: string): Promise<number> => {
      const t0 = performance.now();
      await s.client.expectOk('POST', collection, { body: body(name) });
      let port: number | undefined;
      while (performance.now() - t0 < RUN_TIMEOUT_MS) {
        if (port === undefined) {
          const obj = JSON.parse((await s.client.expectOk('GET', `${collection}/${name}`)).body) as { status?: { ports?: { hostPort?: number }[] } };
          port = obj.status?.ports?.[0]?.hostPort;
        }
        if (port !== undefined && (await answers(port))) {
          const ms = performance.now() - t0;
          await deleteAll(s, [name], RUN_TIMEOUT_MS);
          return ms;
        }
        await sleep(POLL_MS);
      }
      throw new Error(`${name}: the published port did not answer within ${RUN_TIMEOUT_MS} ms`);
    };
    for (let i = 0; i < WARMUP; i++) await one(`pw-${i}`);
    ctx.log(`ctr-port: ${runs} runs`);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) ms.push(await one(`p-${i}`));
    return { latency: summarize(ms) };
  });
  return { runs, ...value, leftovers };
}

export const containerPortBenchmark: Benchmark = {
  name: 'ctr-port',
  title: TITLE,
  budgetMs: 300_000,
  async run(ctx) {
    const why = whyNoRealRuntime();
    if (why) return skipped(TITLE, why);
    const r = await run(ctx);
    return {
      summary: { ...r, versions: runtimeVersions() },
      rows: [
        {
          metric: `apply → GET through the published port answers, p50 (p99 ${fmtMs(r.latency.p99Ms)}), ${r.runs} runs, default bridge network${leftoversNote(r.leftovers)}`,
          value: fmtMs(r.latency.p50Ms),
        },
      ],
    };
  },
};

/**
 * Benchmark 5: resident memory of the berth server holding 10,000 Containers with 10
 * open watches (issue 2 target: ≤ 150 MB). `VmRSS` of the server child process is read
 * from `/proc/PID/status` after two full GCs and a 5 s settling pause. Measured twice:
 * in the process that just created the 10,000 objects through the API, and in a fresh
 * process restarted on the same data directory. In both, the objects are first listed in
 * pages of 500 (`limit`/`continue`, as client-go reflectors and kubectl do) and the 10
 * watches start from the list's resourceVersion. `VmHWM` (peak RSS) and the server's
 * V8 heap figures are reported beside it.
 */
import { ApiClient, containersPath } from './api-client.ts';
import { fmtMB, scaled, toMB, type Benchmark, type BenchContext } from './benchmark.ts';
import { makeTempDir } from './cleanup.ts';
import { BENCH_NAMESPACE, createContainers } from './fixtures.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { sleep } from './stats.ts';

const TARGET_BYTES = 150e6;
const WATCHES = 10;
const SETTLE_MS = 5_000;

/** Lists once, opens the watches from the list's revision, settles, and reads the memory. */
async function measureHolding(server: ServerProcess, client: ApiClient) {
  const collection = containersPath(BENCH_NAMESPACE);
  let objects = 0;
  let resourceVersion = '';
  let cont = '';
  do {
    const page = JSON.parse((await client.expectOk('GET', `${collection}?limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`)).body) as {
      metadata: { resourceVersion: string; continue?: string };
      items: unknown[];
    };
    objects += page.items.length;
    resourceVersion ||= page.metadata.resourceVersion;
    cont = page.metadata.continue ?? '';
  } while (cont);
  const watches = await Promise.all(
    Array.from({ length: WATCHES }, () => client.watch(`${collection}?watch=true&resourceVersion=${resourceVersion}&timeoutSeconds=600`, () => undefined)),
  );
  try {
    await server.gc();
    await sleep(SETTLE_MS);
    await server.gc();
    await sleep(200);
    const heap = await server.heap();
    return { objects, ...server.memory(), heapUsedBytes: heap.heapUsed, heapTotalBytes: heap.heapTotal, externalBytes: heap.external };
  } finally {
    for (const w of watches) w.close();
  }
}

async function run(ctx: BenchContext) {
  const objects = scaled(ctx, 10_000);
  const dir = makeTempDir('berth-bench-');
  try {
    const start = () => startServerProcess({ dataDir: dir.path, ...(ctx.profileDir ? { cpuProfDir: `${ctx.profileDir}/memory` } : {}) });
    let server = await start();
    let client = new ApiClient(server);
    await server.gc();
    await sleep(2_000);
    await server.gc();
    const idle = { ...server.memory(), ...(await server.heap().then((h) => ({ heapUsedBytes: h.heapUsed, heapTotalBytes: h.heapTotal, externalBytes: h.external }))) };
    let afterCreate;
    try {
      ctx.log(`memory: creating ${objects} containers`);
      await createContainers(client, 'm-', objects, 16);
      afterCreate = await measureHolding(server, client);
    } finally {
      client.close();
      await server.stop();
    }
    ctx.log('memory: restarting the server on the same data directory');
    server = await start();
    client = new ApiClient(server);
    let afterRestart;
    try {
      afterRestart = await measureHolding(server, client);
    } finally {
      client.close();
      await server.stop();
    }
    return { objects, idle, afterCreate, afterRestart };
  } finally {
    dir.remove();
  }
}

export const memoryBenchmark: Benchmark = {
  name: 'memory',
  title: 'Resident memory, 10,000 containers + 10 watchers',
  budgetMs: 90_000,
  async run(ctx) {
    const r = await run(ctx);
    const mb = (m: { rssBytes: number; peakRssBytes: number; heapUsedBytes?: number; heapTotalBytes?: number; externalBytes?: number }) => ({
      rssMB: toMB(m.rssBytes),
      peakRssMB: toMB(m.peakRssBytes),
      ...(m.heapUsedBytes !== undefined ? { heapUsedMB: toMB(m.heapUsedBytes), heapTotalMB: toMB(m.heapTotalBytes!), externalMB: toMB(m.externalBytes!) } : {}),
    });
    return {
      summary: {
        objects: r.objects,
        watches: WATCHES,
        settleMs: SETTLE_MS,
        idleEmptyServer: mb(r.idle),
        afterCreatingThem: mb(r.afterCreate),
        afterRestart: mb(r.afterRestart),
      },
      rows: [
        {
          metric: `Server RSS holding ${r.objects.toLocaleString('en-US')} containers, ${WATCHES} watches (peak ${fmtMB(r.afterCreate.peakRssBytes)})`,
          value: fmtMB(r.afterCreate.rssBytes),
          target: '≤ 150 MB',
          met: r.afterCreate.rssBytes <= TARGET_BYTES,
        },
        {
          metric: `… same, after a restart on the same data (peak ${fmtMB(r.afterRestart.peakRssBytes)})`,
          value: fmtMB(r.afterRestart.rssBytes),
          target: '≤ 150 MB',
          met: r.afterRestart.rssBytes <= TARGET_BYTES,
        },
      ],
    };
  },
};

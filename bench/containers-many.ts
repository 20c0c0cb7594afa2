/**
 * Container benchmarks 3 and 4: many Containers applied at once.
 *
 * - `ctr-100`: 100 Containers (busybox, `sleep 3600`) POSTed at once (100 concurrent
 *   requests) on the real runc runtime; the time from the first POST until the watch
 *   showed every one `Running` (issue 3 target ≤ 10 s on 2 cores), and the server's
 *   `VmRSS` then (target ≤ 150 MB), again after 5 s of steady state, and its peak
 *   (`VmHWM`); the conmon processes' summed `VmRSS` beside it. Then all are deleted at
 *   once and the time until the watch saw them all gone is reported too.
 * - `ctr-5000-fake`: 5,000 Containers on the fake runtime (`--runtime fake`), created by
 *   16 closed-loop clients; the time from the first POST until all are `Running`
 *   (target ≤ 30 s): the control plane alone — API server, scheduler, agent — with
 *   no container processes. Server RSS as above, and from the server's `/metrics` the
 *   API requests per Container by verb, resource and code (a 409 is a write conflict)
 *   and the reconciles per Container of each controller: the control plane's round trips;
 *   and from the watch, how many were bound, held the finalizer and ran every 10 s.
 */
import { containersPath, type ApiClient } from './api-client.ts';
import { DISTURBED_OTHER_PERCENT, fmtMB, scaled, toMB, type Benchmark, type BenchContext } from './benchmark.ts';
import { benchContainer } from './containers-fixture.ts';
import { loadAverage, OtherLoadSampler, settleSampler } from './containers-load.ts';
import { conmonMemory, runtimeVersions, whyNoRealRuntime } from './containers-server.ts';
import { deleteAll, leftoversNote, skipped, withBerth, type BerthSession } from './containers-session.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';
import type { SeenEvent } from './containers-watch.ts';
import { closedLoop, sleep } from './stats.ts';

const STEADY_MS = 5_000;
/** When the settled memory of the 100 running containers is read (V8 gives back memory after a burst only when idle). */
const SETTLED_MS = 30_000;
/** 4× the target: enough to tell how far off a miss is, bounded. */
const TIMEOUT_FAKE_MS = 120_000;

/**
 * Creates the Containers `names` with `clients` concurrent clients and waits until the
 * watch showed all of them Running, or `timeoutMs` passed. Never rejects for slowness:
 * it reports how many were Running when, so a missed target still says by how much.
 */
async function applyAll(s: BerthSession, names: readonly string[], clients: number, timeoutMs: number) {
  const collection = containersPath(BENCH_NAMESPACE);
  const runningAt: number[] = [];
  const running = names.map((n) => s.watch.untilPhase(n, 'Running', timeoutMs).then((t) => void runningAt.push(t)));
  const t0 = performance.now();
  const t0Abs = performance.timeOrigin + t0;
  const cpu0 = s.server.cpuSeconds();
  const created = await closedLoop({
    clients,
    total: names.length,
    op: async (i) => void (await s.client.expectOk('POST', collection, { body: JSON.stringify(benchContainer(names[i]!, ['sleep', '3600'])) })),
  });
  await Promise.allSettled(running);
  const all = runningAt.length === names.length;
  const lastAbsMs = all ? Math.max(...runningAt) : performance.timeOrigin + performance.now();
  const seconds = (lastAbsMs - t0Abs) / 1000;
  // How many were Running after 10 s, 20 s, …: a rate that falls as the count grows is O(n²) work.
  const progress: Record<string, number> = {};
  for (let t = 10; t <= Math.ceil(seconds / 10) * 10; t += 10) progress[`${t}s`] = runningAt.filter((x) => x - t0Abs <= t * 1000).length;
  return {
    seconds,
    running: runningAt.length,
    all,
    progress,
    createSeconds: created.seconds,
    serverCpuPercent: Math.round(((s.server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)) * 100),
    fromAbsMs: t0Abs,
    toAbsMs: lastAbsMs,
  };
}

/** The counters of `/metrics` this benchmark breaks down, keyed `<metric> <labels…>`. */
async function scrapeCounters(client: ApiClient): Promise<Map<string, number>> {
  const text = (await client.expectOk('GET', '/metrics', { accept: 'text/plain' })).body;
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(apiserver_request_total|controller_runtime_reconcile_total)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (m[1] === 'apiserver_request_total' && (labels.verb === 'WATCH' || (labels.resource !== 'containers' && labels.resource !== 'events'))) continue;
    const key =
      m[1] === 'apiserver_request_total'
        ? `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''} ${labels.code}`
        : `reconcile ${labels.controller} ${labels.result}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

/** `after − before` per counter, divided by `count`, to 2 decimals; counters that did not move are left out. */
function perContainer(before: Map<string, number>, after: Map<string, number>, count: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...after].sort(([a], [b]) => a.localeCompare(b))) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out[k] = Math.round((d / count) * 100) / 100;
  }
  return out;
}

/**
 * How many Containers the watch had seen reach each stage 10 s, 20 s, … after `fromAbsMs`:
 * bound by the scheduler, holding the agent's finalizer, Running. A stage that lags the
 * one before it is where the pipeline queues.
 */
function stagesOver(s: BerthSession, names: readonly string[], fromAbsMs: number, seconds: number): Record<string, Record<string, number>> {
  const firstAt = (name: string, test: (e: SeenEvent) => boolean) => s.watch.events(name).find(test)?.atAbsMs;
  const stages: Record<string, (e: SeenEvent) => boolean> = {
    bound: (e) => e.nodeName !== undefined,
    finalizer: (e) => e.finalizers > 0,
    running: (e) => e.phase === 'Running',
  };
  const out: Record<string, Record<string, number>> = {};
  for (const [stage, test] of Object.entries(stages)) {
    const times = names.map((n) => firstAt(n, test)).filter((t): t is number => t !== undefined);
    const row: Record<string, number> = {};
    for (let t = 10; t <= Math.ceil(seconds / 10) * 10; t += 10) row[`${t}s`] = times.filter((x) => x - fromAbsMs <= t * 1000).length;
    out[stage] = row;
  }
  return out;
}

const mb = (m: { rssBytes: number; peakRssBytes: number }) => ({ rssMB: toMB(m.rssBytes), peakRssMB: toMB(m.peakRssBytes) });

async function runReal(ctx: BenchContext) {
  const count = scaled(ctx, 100);
  const { value, leftovers } = await withBerth(ctx, 'ctr-100', { runtime: 'runc' }, async (s) => {
    const names = Array.from({ length: count }, (_, i) => `m-${i}`);
    const loadBefore = loadAverage();
    const sampler = new OtherLoadSampler([s.dir]);
    const idle = s.server.memory();
    ctx.log(`ctr-100: applying ${count} containers at once`);
    const apply = await applyAll(s, names, count, 120_000);
    if (!apply.all) throw new Error(`only ${apply.running} of ${count} containers were Running after 120 s`);
    const atRunning = s.server.memory();
    const conmonAtRunning = conmonMemory(s.server.dataDir);
    await sleep(STEADY_MS);
    const steady = s.server.memory();
    const conmonSteady = conmonMemory(s.server.dataDir);
    await sleep(SETTLED_MS - STEADY_MS);
    const settled = s.server.memory();
    ctx.log(`ctr-100: all running after ${apply.seconds.toFixed(2)} s; deleting them at once`);
    const d0 = performance.now();
    await deleteAll(s, names, 180_000);
    const deleteSeconds = (performance.now() - d0) / 1000;
    await settleSampler();
    sampler.stop();
    return {
      count,
      allRunningSeconds: Math.round(apply.seconds * 100) / 100,
      runningAfter: apply.progress,
      createRequestsSeconds: Math.round(apply.createSeconds * 100) / 100,
      serverCpuPercent: apply.serverCpuPercent,
      deleteAllSeconds: Math.round(deleteSeconds * 100) / 100,
      serverMemory: { idle: mb(idle), allRunning: mb(atRunning), steady5s: mb(steady), settled30s: mb(settled) },
      conmon: { count: conmonAtRunning.count, rssMB: toMB(conmonAtRunning.rssBytes), steadyRssMB: toMB(conmonSteady.rssBytes) },
      otherCpuPercent: sampler.otherPercentBetween(apply.fromAbsMs, apply.toAbsMs),
      loadBefore,
      loadAfter: loadAverage(),
    };
  });
  return { ...value, leftovers };
}

async function runFake(ctx: BenchContext) {
  const count = scaled(ctx, 5_000);
  const { value } = await withBerth(ctx, 'ctr-5000-fake', { runtime: 'fake', keepHistory: true }, async (s) => {
    const names = Array.from({ length: count }, (_, i) => `f-${i}`);
    const loadBefore = loadAverage();
    const sampler = new OtherLoadSampler([s.dir]);
    const idle = s.server.memory();
    ctx.log(`ctr-5000-fake: applying ${count} containers with 16 clients`);
    const counters0 = await scrapeCounters(s.client);
    const apply = await applyAll(s, names, 16, TIMEOUT_FAKE_MS);
    const atRunning = s.server.memory();
    const perContainerAtRunning = perContainer(counters0, await scrapeCounters(s.client), count);
    await sleep(STEADY_MS);
    const steady = s.server.memory();
    await settleSampler();
    sampler.stop();
    return {
      count,
      running: apply.running,
      allRunningSeconds: Math.round(apply.seconds * 100) / 100,
      runningAfter: apply.progress,
      stagesAfter: stagesOver(s, names, apply.fromAbsMs, apply.seconds),
      createRequestsSeconds: Math.round(apply.createSeconds * 100) / 100,
      serverCpuPercent: apply.serverCpuPercent,
      serverMemory: { idle: mb(idle), allRunning: mb(atRunning), steady5s: mb(steady) },
      perContainer: perContainerAtRunning,
      otherCpuPercent: sampler.otherPercentBetween(apply.fromAbsMs, apply.toAbsMs),
      loadBefore,
      loadAfter: loadAverage(),
    };
  });
  return value;
}

const loadText = (r: { loadBefore: string; loadAfter: string; otherCpuPercent: number }): string =>
  `load ${r.loadBefore} → ${r.loadAfter}; other processes ${r.otherCpuPercent}% CPU${r.otherCpuPercent > DISTURBED_OTHER_PERCENT ? ' ⚠ disturbed' : ''}`;

export const containersHundredBenchmark: Benchmark = {
  name: 'ctr-100',
  title: 'Containers: 100 applied at once on runc',
  budgetMs: 420_000,
  async run(ctx) {
    const why = whyNoRealRuntime();
    if (why) return skipped(this.title, why);
    const r = await runReal(ctx);
    return {
      summary: { ...r, versions: runtimeVersions() },
      rows: [
        {
          metric: `${r.count} Containers applied at once → all Running (creates answered in ${r.createRequestsSeconds} s; server CPU ${r.serverCpuPercent}%; deleting all: ${r.deleteAllSeconds} s; ${loadText(r)})${leftoversNote(r.leftovers)}`,
          value: `${r.allRunningSeconds.toFixed(2)} s`,
          target: '≤ 10 s',
          met: r.allRunningSeconds <= 10,
        },
        {
          metric: `Server RSS with ${r.count} running (after 5 s: ${r.serverMemory.steady5s.rssMB} MB; peak ${r.serverMemory.steady5s.peakRssMB} MB; idle ${r.serverMemory.idle.rssMB} MB); ${r.conmon.count} conmon processes: ${r.conmon.rssMB} MB in total`,
          value: fmtMB(r.serverMemory.allRunning.rssMB * 1e6),
          target: '≤ 150 MB',
          met: r.serverMemory.allRunning.rssMB <= 150 && r.serverMemory.steady5s.rssMB <= 150,
        },
      ],
    };
  },
};

export const containersFakeBenchmark: Benchmark = {
  name: 'ctr-5000-fake',
  title: 'Containers: 5,000 on the fake runtime',
  budgetMs: 420_000,
  async run(ctx) {
    const r = await runFake(ctx);
    return {
      summary: r,
      rows: [
        {
          metric: `${r.count.toLocaleString('en-US')} Containers (16 clients) → all Running, fake runtime (creates answered in ${r.createRequestsSeconds} s; server CPU ${r.serverCpuPercent}%; Running after ${Object.entries(r.runningAfter).map(([t, n]) => `${t}: ${n}`).join(', ')}; ${loadText(r)})`,
          value: r.running === r.count ? `${r.allRunningSeconds.toFixed(2)} s` : `only ${r.running.toLocaleString('en-US')} Running after ${r.allRunningSeconds.toFixed(0)} s`,
          target: '≤ 30 s',
          met: r.running === r.count && r.allRunningSeconds <= 30,
        },
        {
          metric: `Server RSS with ${r.running.toLocaleString('en-US')} running on the fake runtime (after 5 s: ${r.serverMemory.steady5s.rssMB} MB; peak ${r.serverMemory.steady5s.peakRssMB} MB; idle ${r.serverMemory.idle.rssMB} MB)`,
          value: fmtMB(r.serverMemory.allRunning.rssMB * 1e6),
        },
      ],
    };
  },
};

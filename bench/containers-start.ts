/**
 * Container benchmark 1: apply → `Running` seen through a watch, against raw
 * `runc run -d` of the same root filesystem (issue 3 targets: p50 ≤ 2× raw runc, p99 ≤
 * 400 ms). The runs alternate — runc then berth, berth then runc — so that a change in
 * the machine's load hits both alike. One berth run: register a wait on the watch,
 * POST a Container (busybox, `sleep 3600`), wait for the event with `status.phase:
 * Running`; then, untimed, DELETE it and wait until the watch saw it gone. One runc run:
 * write a bundle (untimed), time `runc run -d` until it exits, then (untimed) `runc
 * delete -f`. The server logs at debug level for the per-phase breakdown (two more
 * lines per container than the default; see `containers-phases.ts`).
 */
import path from 'node:path';
import { containersPath } from './api-client.ts';
import { DISTURBED_OTHER_PERCENT, fmtMs, scaled, type Benchmark, type BenchContext } from './benchmark.ts';
import { benchContainer } from './containers-fixture.ts';
import { loadAverage, OtherLoadSampler, settleSampler } from './containers-load.ts';
import { conflictedRuns, medianPhases, phasesFromLog, type RunTimes } from './containers-phases.ts';
import { RawRunc } from './containers-runc.ts';
import { runtimeVersions, whyNoRealRuntime } from './containers-server.ts';
import { deleteAll, leftoversNote, skipped, withBerth } from './containers-session.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';
import { sleep, summarize, type LatencySummary } from './stats.ts';

const TITLE = 'Containers: apply → Running vs runc run -d';
const WARMUP = 3;
const RUN_TIMEOUT_MS = 30_000;
/** Pause between runs, so that the previous run's after-work (Events, resync) is not measured. */
const SETTLE_MS = 100;

interface Sample {
  readonly ms: number;
  readonly otherPercent: number;
}

/** Percentiles of all runs, and of the runs during which other processes used ≤ 25% CPU. */
function stats(samples: readonly Sample[]): { all: LatencySummary; quiet: LatencySummary; disturbedRuns: number } {
  const quiet = samples.filter((s) => s.otherPercent <= DISTURBED_OTHER_PERCENT);
  return { all: summarize(samples.map((s) => s.ms)), quiet: summarize(quiet.map((s) => s.ms)), disturbedRuns: samples.length - quiet.length };
}

async function run(ctx: BenchContext) {
  const runs = scaled(ctx, 50);
  const { value, leftovers } = await withBerth(ctx, 'ctr-start', { runtime: 'runc', logLevel: 'debug', keepHistory: true }, async (s) => {
    const runc = new RawRunc(path.join(s.dir, 'runc'), s.fixture.rootfsDir, ['sleep', '3600']);
    try {
      const collection = containersPath(BENCH_NAMESPACE);
      const oneRunc = async (): Promise<{ ms: number; fromAbsMs: number }> => {
        const id = runc.prepare();
        const fromAbsMs = performance.timeOrigin + performance.now();
        const ms = await runc.run(id);
        runc.remove(id);
        return { ms, fromAbsMs };
      };
      const oneBerth = async (name: string): Promise<RunTimes> => {
        const running = s.watch.untilPhase(name, 'Running', RUN_TIMEOUT_MS);
        const postSentAbsMs = performance.timeOrigin + performance.now();
        await s.client.expectOk('POST', collection, { body: JSON.stringify(benchContainer(name, ['sleep', '3600'])) });
        const runningSeenAbsMs = await running;
        await deleteAll(s, [name], RUN_TIMEOUT_MS);
        return { name, postSentAbsMs, runningSeenAbsMs };
      };

      ctx.log(`ctr-start: ${WARMUP} warm-up runs each`);
      for (let i = 0; i < WARMUP; i++) {
        await oneRunc();
        await oneBerth(`warm-${i}`);
      }
      ctx.log(`ctr-start: ${runs} runs each, alternating`);
      const loadBefore = loadAverage();
      const sampler = new OtherLoadSampler([s.dir]);
      const cpu0 = s.server.cpuSeconds();
      const t0 = performance.now();
      const runcRuns: { ms: number; fromAbsMs: number }[] = [];
      const berthRuns: RunTimes[] = [];
      for (let i = 0; i < runs; i++) {
        for (const which of i % 2 === 0 ? ['runc', 'berth'] : ['berth', 'runc']) {
          if (which === 'runc') runcRuns.push(await oneRunc());
          else berthRuns.push(await oneBerth(`s-${i}`));
          await sleep(SETTLE_MS);
        }
      }
      const wallSeconds = (performance.now() - t0) / 1000;
      const serverCpuSeconds = s.server.cpuSeconds() - cpu0;
      await settleSampler();
      sampler.stop();
      const loadAfter = loadAverage();
      const runcSamples: Sample[] = runcRuns.map((r) => ({ ms: r.ms, otherPercent: sampler.otherPercentBetween(r.fromAbsMs, r.fromAbsMs + r.ms) }));
      const berthSamples: Sample[] = berthRuns.map((r) => ({
        ms: r.runningSeenAbsMs - r.postSentAbsMs,
        otherPercent: sampler.otherPercentBetween(r.postSentAbsMs, r.runningSeenAbsMs),
      }));
      const phases = phasesFromLog(s.server.logPath, berthRuns);
      return {
        berth: stats(berthSamples),
        runc: stats(runcSamples),
        phases: { runs: phases.length, medianMs: medianPhases(phases) },
        agentWriteConflicts: conflictedRuns(s.server.logPath, berthRuns),
        otherCpuPercent: sampler.otherPercentBetween(performance.timeOrigin + t0, performance.timeOrigin + performance.now()),
        serverCpuPercent: Math.round((serverCpuSeconds / wallSeconds) * 100),
        loadBefore,
        loadAfter,
      };
    } finally {
      runc.close();
    }
  });
  return { runs, ...value, leftovers };
}

export const containerStartBenchmark: Benchmark = {
  name: 'ctr-start',
  title: TITLE,
  budgetMs: 300_000,
  async run(ctx) {
    const why = whyNoRealRuntime();
    if (why) return skipped(TITLE, why);
    const r = await run(ctx);
    const ratio = r.berth.all.p50Ms / r.runc.all.p50Ms;
    const disturbed = r.berth.disturbedRuns + r.runc.disturbedRuns;
    const load = `load ${r.loadBefore} → ${r.loadAfter}; other processes ${r.otherCpuPercent}% CPU${disturbed ? `; ⚠ ${r.berth.disturbedRuns} berth + ${r.runc.disturbedRuns} runc runs disturbed (other > ${DISTURBED_OTHER_PERCENT}%); undisturbed p50 ${fmtMs(r.berth.quiet.p50Ms)} vs ${fmtMs(r.runc.quiet.p50Ms)}, p99 ${fmtMs(r.berth.quiet.p99Ms)}` : ''}`;
    const phaseText = Object.entries(r.phases.medianMs).map(([k, v]) => `${k} ${v}`).join(', ');
    return {
      summary: { ...r, versions: runtimeVersions() },
      rows: [
        {
          metric: `apply → Running p50, ${r.runs} runs, vs raw runc run -d p50 ${fmtMs(r.runc.all.p50Ms)} (${load})${leftoversNote(r.leftovers)}`,
          value: `${fmtMs(r.berth.all.p50Ms)} (${ratio.toFixed(2)}×)`,
          target: 'p50 ≤ 2× runc',
          met: ratio <= 2,
        },
        {
          metric: `apply → Running p99 (runc p99 ${fmtMs(r.runc.all.p99Ms)}; max ${fmtMs(r.berth.all.maxMs)})`,
          value: fmtMs(r.berth.all.p99Ms),
          target: '≤ 400 ms',
          met: r.berth.all.p99Ms <= 400,
        },
        {
          metric: `apply → Running phases, median ms of ${r.phases.runs} runs (${r.agentWriteConflicts} runs had an agent write rejected and retried)`,
          value: phaseText,
        },
      ],
    };
  },
};

/**
 * Container benchmark 2: apply → `Exited` of a Container running `true` (restartPolicy
 * Never), against `podman run --rm` of the same image (issue 3 target: ≤ 0.5× podman).
 * The runs alternate as in `containers-start.ts`. A berth run is timed from sending the
 * POST until the watch shows `status.phase: Exited`; the Container is then deleted,
 * untimed, and the next run waits until the watch saw it gone. A podman run is timed
 * from spawning `podman run --rm … true` until it exits (which includes its removal of
 * the container: that is what the user waits for).
 */
import path from 'node:path';
import { containersPath } from './api-client.ts';
import { fmtMs, scaled, type Benchmark, type BenchContext } from './benchmark.ts';
import { makeTempDir } from './cleanup.ts';
import { benchContainer } from './containers-fixture.ts';
import { alternateWithPodman, PrivatePodman, whyNoPodman } from './containers-podman.ts';
import { runtimeVersions, whyNoRealRuntime } from './containers-server.ts';
import { deleteAll, leftoversNote, skipped, withBerth } from './containers-session.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';

const TITLE = 'Containers: apply → Exited vs podman run --rm';
const WARMUP = 2;
const RUN_TIMEOUT_MS = 30_000;
const SETTLE_MS = 100;

async function run(ctx: BenchContext) {
  const runs = scaled(ctx, 25);
  const { value, leftovers } = await withBerth(ctx, 'ctr-exit', { runtime: 'runc' }, async (s) => {
    // Its own scratch directory: podman's storage must go even if the berth session's teardown fails.
    const podmanDir = makeTempDir('berth-ctr-exit-podman-');
    const podman = new PrivatePodman(path.join(podmanDir.path, 'podman'));
    try {
      ctx.log('ctr-exit: importing the rootfs into a private podman store');
      podman.importRootfs(s.fixture.rootfsDir);
      const collection = containersPath(BENCH_NAMESPACE);
      return await alternateWithPodman({
        label: 'ctr-exit', log: ctx.log, warmup: WARMUP, runs, settleMs: SETTLE_MS, ownDirs: [s.dir, podmanDir.path],
        podman: () => podman.run(['true']),
        berth: async (name) => {
          const exited = s.watch.untilPhase(name, 'Exited', RUN_TIMEOUT_MS);
          const fromAbsMs = performance.timeOrigin + performance.now();
          await s.client.expectOk('POST', collection, { body: JSON.stringify(benchContainer(name, ['true'], 'Never')) });
          const ms = (await exited) - fromAbsMs;
          await deleteAll(s, [name], RUN_TIMEOUT_MS);
          return ms;
        },
      });
    } finally {
      podman.close();
      podmanDir.remove();
    }
  });
  return { runs, ...value, leftovers };
}

export const containerExitBenchmark: Benchmark = {
  name: 'ctr-exit',
  title: TITLE,
  budgetMs: 300_000,
  async run(ctx) {
    const why = whyNoRealRuntime() ?? whyNoPodman();
    if (why) return skipped(TITLE, why);
    const r = await run(ctx);
    const ratio = r.berth.p50Ms / r.podman.p50Ms;
    const disturbed = r.disturbedRuns.berth + r.disturbedRuns.podman;
    return {
      summary: { ...r, versions: runtimeVersions() },
      rows: [
        {
          metric: `apply → Exited (\`true\`) p50, ${r.runs} runs, vs podman run --rm p50 ${fmtMs(r.podman.p50Ms)} / p99 ${fmtMs(r.podman.p99Ms)}; berth p99 ${fmtMs(r.berth.p99Ms)} (load ${r.loadBefore} → ${r.loadAfter}; other processes ${r.otherCpuPercent}% CPU${disturbed ? `; ⚠ ${r.disturbedRuns.berth} berth + ${r.disturbedRuns.podman} podman runs disturbed` : ''})${leftoversNote(r.leftovers)}`,
          value: `${fmtMs(r.berth.p50Ms)} (${ratio.toFixed(2)}×)`,
          target: '≤ 0.5× podman',
          met: ratio <= 0.5,
        },
      ],
    };
  },
};

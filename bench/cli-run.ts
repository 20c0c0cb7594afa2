/**
 * CLI benchmark: `berth run --rm --network none busybox true` end to end, as a user
 * types it — a child process `node <berth> --kubeconfig K run …` timed from spawn to
 * exit (start-up of the CLI, create, the followed log, the exit code, the delete and its
 * wait) — against `podman run --rm` of the same image in the same run (issue 6 target:
 * ≤ 0.5× podman). The runs alternate as in `containers-exit.ts`.
 *
 * `<berth>` is the bundle `containers-server.ts` builds from the sources as they are
 * now (`dist-bench-berth/berth.mjs`: `cli/main.ts` as `bin/berth.js` runs it from a
 * fresh `dist/berth.mjs`, without its source-freshness check); with
 * `BERTH_FROM_SOURCE=1`, `bin/berth.js` itself (through tsx: much slower to start).
 * Not in CI: needs root, runc, conmon and podman.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminKubeconfigPath } from '../cli/data-dir.ts';
import { fmtMs, scaled, type Benchmark, type BenchContext } from './benchmark.ts';
import { makeTempDir } from './cleanup.ts';
import { alternateWithPodman, PrivatePodman, whyNoPodman } from './containers-podman.ts';
import { RawRunc } from './containers-runc.ts';
import { BERTH_BUNDLE, runtimeVersions, whyNoRealRuntime } from './containers-server.ts';
import { leftoversNote, skipped, withBerth } from './containers-session.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';
import { sleep, summarize } from './stats.ts';

const TITLE = 'CLI: berth run --rm busybox true vs podman run --rm';
const WARMUP = 2;
const RUN_TIMEOUT_MS = 30_000;
const SETTLE_MS = 100;
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The CLI's environment: this one without `NODE_EXTRA_CA_CERTS`. Machines of this
 * workplace set it to the system CA bundle, which makes every Node process parse ~140
 * certificates before its first line of JavaScript (~35 ms here); a fresh Debian does
 * not set it, and berth's CLI trusts the kubeconfig's CA, not the system's.
 */
function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Runs `node <berth> ARGS…`; resolves with the milliseconds until it exited 0, rejects otherwise. */
function timeBerth(args: readonly string[]): Promise<number> {
  const entry = process.env.BERTH_FROM_SOURCE === '1' ? path.join(REPO_ROOT, 'bin', 'berth.js') : BERTH_BUNDLE;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [entry, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: cliEnv() });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`berth ${args.join(' ')} failed (${code}): ${err.trim().slice(-500)}`));
    });
  });
}

/**
 * What any Node CLI that runs the container with runc pays before anything of berth's
 * own: a Node process that does nothing (`node -e ''`, as the CLI is started) and
 * `runc run -d` + `runc delete` of the same rootfs (create, start and cleanup in two
 * runc processes: no monitor, no overlay, no API). p50s of `runs` runs each.
 */
async function measureFloor(rootfsDir: string, runs: number) {
  const node: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['-e', ''], { env: cliEnv(), stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`node -e '' failed: ${r.status}`);
    node.push(performance.now() - t0);
  }
  const runcDir = makeTempDir('berth-cli-run-runc-');
  const runc = new RawRunc(runcDir.path, rootfsDir, ['/bin/true']);
  const runcMs: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const id = runc.prepare();
      const started = await runc.run(id);
      await sleep(SETTLE_MS); // `true` exits; delete then cleans up a stopped container, as berth's does
      runcMs.push(started + runc.remove(id));
    }
  } finally {
    runc.close();
    runcDir.remove();
  }
  const nodeP50 = summarize(node).p50Ms;
  const runcP50 = summarize(runcMs).p50Ms;
  return { nodeStartP50Ms: nodeP50, runcRunDeleteP50Ms: runcP50, totalMs: nodeP50 + runcP50 };
}

async function run(ctx: BenchContext) {
  const runs = scaled(ctx, 25);
  const { value, leftovers } = await withBerth(ctx, 'cli-run', { runtime: 'runc' }, async (s) => {
    const podmanDir = makeTempDir('berth-cli-run-podman-');
    const podman = new PrivatePodman(path.join(podmanDir.path, 'podman'));
    try {
      ctx.log('cli-run: importing the rootfs into a private podman store');
      podman.importRootfs(s.fixture.rootfsDir);
      const kubeconfig = adminKubeconfigPath(s.server.dataDir);
      const compared = await alternateWithPodman({
        label: 'cli-run', log: ctx.log, warmup: WARMUP, runs, settleMs: SETTLE_MS, ownDirs: [s.dir, podmanDir.path],
        podman: () => podman.run(['true']),
        berth: (name) => timeBerth(['--kubeconfig', kubeconfig, '-n', BENCH_NAMESPACE, 'run', '--rm', '--network', 'none', '--name', name, 'busybox', 'true']),
      });
      ctx.log('cli-run: the floor: an empty Node process, raw runc run -d + delete of the same rootfs');
      return { ...compared, floor: await measureFloor(s.fixture.rootfsDir, runs) };
    } finally {
      podman.close();
      podmanDir.remove();
    }
  });
  return { runs, ...value, leftovers };
}

/** `cli-run`: the CLI's `run --rm … true` against podman's (needs root, runc, conmon, podman). */
export const cliRunBenchmark: Benchmark = {
  name: 'cli-run',
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
          metric: `\`berth run --rm busybox true\` (CLI process, spawn → exit) p50, ${r.runs} runs, vs \`podman run --rm\` p50 ${fmtMs(r.podman.p50Ms)} / p99 ${fmtMs(r.podman.p99Ms)}; berth p99 ${fmtMs(r.berth.p99Ms)} (load ${r.loadBefore} → ${r.loadAfter}; other processes ${r.otherCpuPercent}% CPU${disturbed ? `; ⚠ ${r.disturbedRuns.berth} berth + ${r.disturbedRuns.podman} podman runs disturbed` : ''})${leftoversNote(r.leftovers)}`,
          value: `${fmtMs(r.berth.p50Ms)} (${ratio.toFixed(2)}×)`,
          target: '≤ 0.5× podman',
          met: ratio <= 0.5,
        },
        {
          metric: `the floor of any Node CLI over runc, same run: \`node -e ''\` p50 ${fmtMs(r.floor.nodeStartP50Ms)} + raw \`runc run -d\` and \`runc delete\` p50 ${fmtMs(r.floor.runcRunDeleteP50Ms)}; berth's own work (CLI code, API, scheduler, agent, conmon, overlay) is the rest: ${fmtMs(r.berth.p50Ms - r.floor.totalMs)}`,
          value: `${fmtMs(r.floor.totalMs)} (${(r.floor.totalMs / r.podman.p50Ms).toFixed(2)}×)`,
        },
      ],
    };
  },
};

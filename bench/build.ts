/**
 * Build benchmark (issue 4): a ten-step Dockerfile on the busybox fixture, cold build
 * and cached rebuild, berth (`runtime/build`, in this process) against `buildah bud
 * --layers` (Debian buildah, overlay storage in a temporary root, `--isolation chroot`)
 * on the same Dockerfile and context. Target: berth not slower than buildah, for both.
 *
 * One run of each tool: a fresh store with the base image imported (untimed), then the
 * timed cold build, then the timed cached rebuild. Runs alternate between the tools so
 * that load changes hit both alike; medians are reported. Needs root, runc and buildah;
 * otherwise it reports a skipped row. Not run in CI.
 *
 * Run: npm run bench -- build   (when registered in run.ts)  or  node --import tsx bench/build.ts
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildBusyboxImage } from '../test/fixtures/busybox-image.ts';
import { build } from '../runtime/build/builder.ts';
import { ImageStore } from '../runtime/images/image-store.ts';
import { removeCgroup } from '../runtime/oci/cgroups.ts';
import { mountPointsUnder } from '../runtime/oci/overlay.ts';
import { fmtMs, scaled, type Benchmark, type BenchContext, type BenchmarkResult } from './benchmark.ts';
import { makeTempDir, onExit } from './cleanup.ts';

const TITLE = 'Build: ten-step Dockerfile, cold and cached, vs buildah bud';

/** Ten steps: FROM, ENV, WORKDIR, COPY, RUN, RUN, COPY, RUN, LABEL, CMD. */
export const BENCH_DOCKERFILE = `ARG BASE=busybox
FROM $BASE
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ ./src/
RUN mkdir -p out && for i in $(seq 1 200); do echo "line $i" >> out/data.txt; done
RUN cp -r src out/ && sha256sum out/data.txt > out/sum.txt
COPY config.json ./
RUN echo "built $MODE" > /app/out/version
LABEL org.example.bench=build
CMD ["cat", "/app/out/version"]
`;

function writeContext(dir: string): void {
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'Dockerfile'), BENCH_DOCKERFILE);
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dir, 'src', `f${i}.txt`), `file ${i}\n`.repeat(200));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ bench: true }));
}

const run = (cmd: string, args: readonly string[]): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
  });

async function unmountUnder(dir: string): Promise<void> {
  for (const m of (await mountPointsUnder(dir)).reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['runc', 'buildah']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function berthRun(work: string, fixture: string, ctxDir: string, cgroupParent: string): Promise<{ coldMs: number; cachedMs: number }> {
  const root = fs.mkdtempSync(path.join(work, 'berth-'));
  try {
    const store = new ImageStore({ root: path.join(root, 'store') });
    await store.importImage(path.join(fixture, 'busybox-oci.tar'), { tags: ['busybox:latest'] });
    const opts = {
      store, context: { kind: 'dir' as const, path: ctxDir }, tags: ['bench:latest'],
      runcRoot: path.join(root, 'runc'), cgroupParent, containerIdPrefix: 'h5-bench-',
    };
    let t = performance.now();
    await build(opts);
    const coldMs = performance.now() - t;
    t = performance.now();
    const cached = await build(opts);
    const cachedMs = performance.now() - t;
    if (cached.cachedSteps !== 9) throw new Error(`berth rebuild was not fully cached (${cached.cachedSteps} of 9 steps)`);
    return { coldMs, cachedMs };
  } finally {
    await unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function buildahRun(work: string, fixture: string, ctxDir: string): Promise<{ coldMs: number; cachedMs: number }> {
  const root = fs.mkdtempSync(path.join(work, 'buildah-'));
  const b = ['--root', path.join(root, 'storage'), '--runroot', path.join(root, 'run'), '--storage-driver', 'overlay'];
  try {
    await run('buildah', [...b, 'pull', '-q', `oci-archive:${path.join(fixture, 'busybox-oci.tar')}`]);
    const id = execFileSync('buildah', [...b, 'images', '-q'], { encoding: 'utf8' }).trim().split('\n')[0]!;
    await run('buildah', [...b, 'tag', id, 'localhost/busybox:latest']);
    const bud = ['bud', '--layers', '--isolation', 'chroot', '--pull-never', '--build-arg', 'BASE=localhost/busybox:latest', '-t', 'bench', ctxDir];
    let t = performance.now();
    await run('buildah', [...b, ...bud]);
    const coldMs = performance.now() - t;
    t = performance.now();
    await run('buildah', [...b, ...bud]);
    const cachedMs = performance.now() - t;
    return { coldMs, cachedMs };
  } finally {
    await run('buildah', [...b, 'rmi', '-af']).catch(() => undefined);
    await unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function runBench(ctx: BenchContext): Promise<BenchmarkResult> {
  const why = whyNot();
  if (why) return { summary: { skipped: why }, rows: [{ metric: 'build benchmark', value: `skipped: ${why}` }] };
  const runs = scaled(ctx, 5);
  const dir = makeTempDir('berth-h5-bench-');
  const cgroupParent = `/berth-h5-${randomBytes(4).toString('hex')}`;
  const unregister = onExit(() => execFileSync('sh', ['-c', `grep -o ' ${dir.path}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]));
  try {
    const fixture = path.join(dir.path, 'fixture');
    await buildBusyboxImage(fixture);
    const ctxDir = path.join(dir.path, 'ctx');
    writeContext(ctxDir);
    const berth: { coldMs: number; cachedMs: number }[] = [];
    const buildah: { coldMs: number; cachedMs: number }[] = [];
    for (let i = 0; i < runs; i++) {
      ctx.log(`build run ${i + 1}/${runs}`);
      if (i % 2 === 0) {
        berth.push(await berthRun(dir.path, fixture, ctxDir, cgroupParent));
        buildah.push(await buildahRun(dir.path, fixture, ctxDir));
      } else {
        buildah.push(await buildahRun(dir.path, fixture, ctxDir));
        berth.push(await berthRun(dir.path, fixture, ctxDir, cgroupParent));
      }
    }
    const m = {
      berthColdMs: median(berth.map((r) => r.coldMs)),
      buildahColdMs: median(buildah.map((r) => r.coldMs)),
      berthCachedMs: median(berth.map((r) => r.cachedMs)),
      buildahCachedMs: median(buildah.map((r) => r.cachedMs)),
    };
    return {
      summary: { runs, ...m },
      rows: [
        { metric: 'cold build, berth (median)', value: fmtMs(m.berthColdMs), target: `≤ buildah ${fmtMs(m.buildahColdMs)}`, met: m.berthColdMs <= m.buildahColdMs },
        { metric: 'cached rebuild, berth (median)', value: fmtMs(m.berthCachedMs), target: `≤ buildah ${fmtMs(m.buildahCachedMs)}`, met: m.berthCachedMs <= m.buildahCachedMs },
        { metric: 'cached / cold, berth', value: `${((m.berthCachedMs / m.berthColdMs) * 100).toFixed(1)} %`, target: '< 10 %', met: m.berthCachedMs < m.berthColdMs / 10 },
      ],
    };
  } finally {
    await unmountUnder(dir.path);
    await removeCgroup(cgroupParent);
    unregister();
    dir.remove();
  }
}

/** `build`: see the module comment. */
export const buildBenchmark: Benchmark = { name: 'build', title: TITLE, budgetMs: 10 * 60_000, run: runBench };

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const result = await runBench({ scale: Number(process.env.SCALE ?? 1), log: (m) => console.error(m) });
  console.log(JSON.stringify(result.summary));
  for (const r of result.rows) console.log(`${r.metric}: ${r.value}${r.target ? ` (target ${r.target}: ${r.met ? 'met' : 'missed'})` : ''}`);
}

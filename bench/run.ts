/**
 * Runs berth's benchmarks (API server, containers, images) and prints one JSON line per benchmark
 * (stdout), then a Markdown table that is also written to `bench/out/results.md`.
 * Progress goes to stderr. See bench/README.md for what each benchmark measures.
 *
 * Run: npm run bench [-- [NAME…] [--scale=F] [--profile]]
 *   NAME       run only these benchmarks: creates, get, list, watch, memory, db-size, ctr-start,
 *              ctr-exit, ctr-100, ctr-5000-fake, pull, registry-serve, ports, build
 *   --scale=F  multiply every operation count by F (e.g. 0.1 for a quick check)
 *   --profile  write V8 CPU profiles of the server children to bench/out/profiles/NAME/
 *
 * Exits 1 if a benchmark failed (not when a target is missed: that is a result).
 * Every child process (berth servers, watchers, etcd) and temporary directory is
 * removed on exit, also on failure, timeout and SIGINT.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchContext, ResultRow } from './benchmark.ts';
import { runExitActions } from './cleanup.ts';
import { createsBenchmark } from './creates.ts';
import { dbSizeBenchmark } from './db-size.ts';
import { etcdVersion } from './etcd-process.ts';
import { getLatencyBenchmark } from './get-latency.ts';
import { listBenchmark } from './list.ts';
import { memoryBenchmark } from './memory.ts';
import { watchLatencyBenchmark } from './watch-latency.ts';
import { CONTAINER_BENCHMARKS } from './containers-benchmarks.ts';
import { buildBenchmark } from './build.ts';
import { pullBenchmark } from './pull.ts';
import { portsBenchmark } from './ports.ts';
import { cliRunBenchmark } from './cli-run.ts';
import { registryServeBenchmark } from './registry-serve.ts';

/** Every benchmark, in the order they run. */
export const BENCHMARKS: readonly Benchmark[] = [
  createsBenchmark,
  getLatencyBenchmark,
  listBenchmark,
  watchLatencyBenchmark,
  memoryBenchmark,
  dbSizeBenchmark,
  ...CONTAINER_BENCHMARKS,
  cliRunBenchmark,
  pullBenchmark,
  registryServeBenchmark,
  portsBenchmark,
  buildBenchmark,
];

const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));

interface Args {
  readonly names: readonly string[];
  readonly scale: number;
  readonly profile: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const names: string[] = [];
  let scale = 1;
  let profile = false;
  for (const a of argv) {
    if (a === '--profile') profile = true;
    else if (a.startsWith('--scale=')) {
      scale = Number(a.slice('--scale='.length));
      if (!(scale > 0)) throw new Error(`--scale must be a positive number, got ${a}`);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (!BENCHMARKS.some((b) => b.name === a)) throw new Error(`unknown benchmark ${a}: want one of ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    else names.push(a);
  }
  return { names, scale, profile };
}

/** The facts about this machine that the results depend on. */
function machineFacts(): Record<string, string> {
  let disk = '';
  try {
    disk = execFileSync('findmnt', ['-no', 'FSTYPE', '-T', os.tmpdir()], { encoding: 'utf8' }).trim();
  } catch {
    disk = 'unknown';
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    etcd: etcdVersion() ?? 'not installed',
    tmpdirFs: `${os.tmpdir()} on ${disk}`,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than its budget of ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

function markdown(facts: Record<string, string>, args: Args, rows: { bench: Benchmark; row: ResultRow }[], failures: string[]): string {
  const lines = [
    `Run ${facts.date}: ${facts.cpus}, ${facts.memory} RAM, ${facts.kernel}, Node ${facts.node}, etcd ${facts.etcd}, temp dir ${facts.tmpdirFs}${args.scale !== 1 ? `, **--scale=${args.scale}**` : ''}.`,
    '',
    '| Benchmark | Metric | Result | Target | Met |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(({ bench, row }) =>
      `| ${cell(bench.title)} | ${cell(row.metric)} | ${cell(row.value)} | ${cell(row.target ?? '')} | ${row.met === undefined ? '' : row.met ? 'yes' : '**no**'} |`,
    ),
  ];
  if (failures.length) lines.push('', 'Failed:', ...failures.map((f) => `- ${f}`));
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const selected = args.names.length ? BENCHMARKS.filter((b) => args.names.includes(b.name)) : BENCHMARKS;
  const facts = machineFacts();
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const profileDir = args.profile ? path.join(OUT_DIR, 'profiles') : undefined;
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
  process.stderr.write(`bench: ${JSON.stringify(facts)}\n`);

  const rows: { bench: Benchmark; row: ResultRow }[] = [];
  const failures: string[] = [];
  const started = performance.now();
  for (const bench of selected) {
    const ctx: BenchContext = {
      scale: args.scale,
      ...(profileDir ? { profileDir } : {}),
      log: (m) => process.stderr.write(`  ${((performance.now() - started) / 1000).toFixed(1)}s ${m}\n`),
    };
    process.stderr.write(`bench: ${bench.name}: ${bench.title}\n`);
    const t0 = performance.now();
    try {
      const result = await withTimeout(bench.run(ctx), bench.budgetMs * Math.max(1, args.scale), bench.name);
      const seconds = Math.round((performance.now() - t0) / 100) / 10;
      process.stdout.write(`${JSON.stringify({ benchmark: bench.name, wallSeconds: seconds, ...result.summary })}\n`);
      for (const row of result.rows) rows.push({ bench, row });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      failures.push(`${bench.name}: ${message}`);
      process.stdout.write(`${JSON.stringify({ benchmark: bench.name, error: message })}\n`);
      // Whatever the failed benchmark left running (servers, watchers, etcd) goes now.
      runExitActions();
    }
  }
  const table = markdown(facts, args, rows, failures);
  fs.writeFileSync(path.join(OUT_DIR, 'results.md'), table);
  process.stdout.write(`\n${table}`);
  process.stderr.write(`bench: done in ${((performance.now() - started) / 1000).toFixed(0)} s; table in ${path.join(OUT_DIR, 'results.md')}\n`);
  return failures.length ? 1 : 0;
}

process.on('unhandledRejection', (err) => {
  // Leftovers of a benchmark that already failed or timed out; the failure is reported.
  process.stderr.write(`bench: ignored late rejection: ${err instanceof Error ? err.message : String(err)}\n`);
});

main().then(
  (code) => {
    runExitActions();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    runExitActions();
    process.exit(2);
  },
);

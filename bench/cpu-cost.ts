/**
 * CPU cost per request of the berth server, by thread: a steadier guide than rates on
 * a shared machine, where other processes change wall-clock numbers from run to run.
 * Not part of `npm run bench`; a tool for performance work.
 *
 * Run: node --import tsx bench/cpu-cost.ts [creates|gets|patches|healthz…] [--n=N] [--clients=C] [--profile=DIR]
 *
 * For each phase it prints one JSON line: requests/s, latency p50/p99, the server's
 * CPU microseconds per request, in total and per thread (`main`, the SQLite writer,
 * V8's helper threads, …), read from `/proc/PID/task/TID/stat`, and the number, mean
 * size and mean duration (fsync included) of the store's commits, from `/metrics`.
 */
import fs from 'node:fs';
import { ApiClient, containersPath } from './api-client.ts';
import { makeTempDir } from './cleanup.ts';
import { BENCH_NAMESPACE, containerBody, createContainers } from './fixtures.ts';
import { startServerProcess } from './server-process.ts';
import { closedLoop, summarize } from './stats.ts';

const CLOCK_TICKS_PER_SECOND = 100;

/** Sums and counts of the store's commit histograms, from `/metrics`. */
async function commitStats(client: ApiClient): Promise<{ commits: number; seconds: number; writes: number }> {
  const text = (await client.expectOk('GET', '/metrics', { accept: 'text/plain' })).body;
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    commits: value('berth_store_commit_duration_seconds_count'),
    seconds: value('berth_store_commit_duration_seconds_sum'),
    writes: value('berth_store_commit_batch_size_sum'),
  };
}

/** CPU seconds per thread name (threads of the same name summed). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const name = Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND);
  }
  return out;
}

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const n = opt('n', 20_000);
const clients = opt('clients', 16);
const profileDir = args.find((a) => a.startsWith('--profile='))?.split('=')[1];
const phases = args.filter((a) => !a.startsWith('--'));
if (phases.length === 0) phases.push('creates', 'gets');

const dir = makeTempDir('berth-cost-');
const server = await startServerProcess({ dataDir: dir.path, ...(profileDir ? { cpuProfDir: profileDir } : {}) });
const client = new ApiClient(server);
try {
  await createContainers(client, 'warm-', 1000, 16);
  const collection = containersPath(BENCH_NAMESPACE);
  const ops: Record<string, (i: number) => Promise<void>> = {
    creates: async (i) => void (await client.expectOk('POST', collection, { body: containerBody(`c-${i}`) })),
    gets: async (i) => void (await client.expectOk('GET', `${collection}/warm-${(i * 7919) % 1000}`)),
    // The fixed cost of a request: TLS, HTTP, authentication, logging and metrics.
    healthz: async () => void (await client.expectOk('GET', '/healthz')),
    patches: async (i) =>
      void (await client.expectOk('PATCH', `${collection}/warm-${i % 1000}`, {
        body: JSON.stringify({ metadata: { annotations: { 'bench.berth.dev/n': String(i) } } }),
        contentType: 'application/merge-patch+json',
      })),
  };
  for (const phase of phases) {
    const op = ops[phase];
    if (!op) throw new Error(`unknown phase ${phase}: want ${Object.keys(ops).join(', ')}`);
    await closedLoop({ clients, total: 2000, op: phase === 'creates' ? (i) => op(n + i) : op });
    const commits0 = await commitStats(client);
    const before = threadCpu(server.pid);
    const self0 = process.cpuUsage();
    const r = await closedLoop({ clients, total: n, op });
    const after = threadCpu(server.pid);
    const self = process.cpuUsage(self0);
    const commits1 = await commitStats(client);
    const commits = commits1.commits - commits0.commits;
    const perThreadUs: Record<string, number> = {};
    let total = 0;
    for (const [name, s] of after) {
      const d = s - (before.get(name) ?? 0);
      total += d;
      if (d > 0) perThreadUs[name] = Math.round((d / n) * 1e6);
    }
    const lat = summarize(r.latenciesMs);
    process.stdout.write(
      `${JSON.stringify({
        phase,
        clients,
        n,
        perSecond: Math.round(r.opsPerSecond),
        p50Ms: lat.p50Ms,
        p99Ms: lat.p99Ms,
        serverCpuUsPerRequest: Math.round((total / n) * 1e6),
        serverCpuPercent: Math.round((total / r.seconds) * 100),
        loadGeneratorCpuPercent: Math.round(((self.user + self.system) / 1e6 / r.seconds) * 100),
        perThreadUs,
        ...(commits > 0
          ? { commits, meanBatch: Math.round(((commits1.writes - commits0.writes) / commits) * 10) / 10, meanCommitMs: Math.round(((commits1.seconds - commits0.seconds) / commits) * 1e4) / 10 }
          : {}),
      })}\n`,
    );
  }
} finally {
  client.close();
  await server.stop();
  dir.remove();
}

/**
 * Benchmark 4: watch delivery latency to 100 watchers (issue 2 target: p99 ≤ 20 ms).
 *
 * 100 watches of the Container collection are opened from a separate process
 * (`watch-child.ts`) from the current resourceVersion. The runner then sends 200 merge
 * patches to one Container, one every 10 ms (the next waits for the previous response).
 * For every (update, watcher) pair the latency is the time the watcher parsed the event
 * minus the time the update's HTTP response arrived at the updater; a second figure
 * measures from when the update request was sent (so it includes the durable write).
 * The two processes' clocks are compared by ping (offset from the round trip with the
 * smallest delay) and corrected.
 */
import readline from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { containersPath } from './api-client.ts';
import { cpuMeter, fmtMs, loadNote, scaled, withServer, type Benchmark } from './benchmark.ts';
import { spawnTracked, stopChild } from './cleanup.ts';
import { BENCH_NAMESPACE, containerBody } from './fixtures.ts';
import { readProcessCpuSeconds } from './proc.ts';
import type { ServerProcess } from './server-process.ts';
import { nowAbsMs, sleep, summarize } from './stats.ts';

const WATCH_CHILD = fileURLToPath(new URL('./watch-child.ts', import.meta.url));
const TARGET_P99_MS = 20;
const SPACING_MS = 10;

/** The watcher process, driven by line commands (see `watch-child.ts`). */
async function startWatchers(server: ServerProcess, watchPath: string, watchers: number) {
  const config = { url: server.url, token: server.token, caPath: path.join(server.dataDir, 'bench-ca.pem'), path: watchPath, watchers };
  const { child, exited } = spawnTracked(process.execPath, ['--import', 'tsx', WATCH_CHILD, JSON.stringify(config)], {
    cwd: path.resolve(path.dirname(WATCH_CHILD), '..'),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const replies: ((line: string) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => replies.shift()?.(line));
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('watch child did not answer within 30 s')), 30_000);
      replies.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    });
  const ask = (cmd: string) => {
    const answer = next();
    child.stdin!.write(`${cmd}\n`);
    return answer;
  };
  await next(); // {"ready":true}
  return { pid: child.pid!, ask, stop: () => stopChild(child, exited, 'SIGTERM', 2_000) };
}

export const watchLatencyBenchmark: Benchmark = {
  name: 'watch',
  title: 'Watch delivery latency, 100 watchers',
  budgetMs: 60_000,
  async run(ctx) {
    const watchers = scaled(ctx, 100);
    const updates = scaled(ctx, 200);
    return withServer(ctx, 'watch', async (server, client) => {
      const collection = containersPath(BENCH_NAMESPACE);
      await client.expectOk('POST', collection, { body: containerBody('w-0') });
      const rv = (JSON.parse((await client.expectOk('GET', collection)).body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      ctx.log(`watch: opening ${watchers} watches in a child process`);
      const child = await startWatchers(server, `${collection}?watch=true&resourceVersion=${rv}&timeoutSeconds=600`, watchers);
      try {
        // Clock offset (child − parent), from the ping with the shortest round trip.
        let best = { rtt: Infinity, offset: 0 };
        for (let i = 0; i < 50; i++) {
          const t0 = nowAbsMs();
          const { now } = (await child.ask('ping')) as { now: number };
          const t1 = nowAbsMs();
          if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: now - (t0 + t1) / 2 };
        }

        ctx.log(`watch: ${updates} updates, ${SPACING_MS} ms apart`);
        const meter = cpuMeter(server.pid);
        const watchers0 = { cpu: readProcessCpuSeconds(child.pid), at: performance.now() };
        const sent = new Map<number, { sentAt: number; respondedAt: number }>();
        for (let i = 0; i < updates; i++) {
          const due = nowAbsMs() + SPACING_MS;
          const sentAt = nowAbsMs();
          const res = await client.expectOk('PATCH', `${collection}/w-0`, {
            body: JSON.stringify({ metadata: { annotations: { 'bench.berth.dev/seq': String(i) } } }),
            contentType: 'application/merge-patch+json',
          });
          const respondedAt = nowAbsMs();
          const rvOf = Number((JSON.parse(res.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
          sent.set(rvOf, { sentAt, respondedAt });
          const wait = due - nowAbsMs();
          if (wait > 0) await sleep(wait);
        }
        const deadline = Date.now() + 10_000;
        while (((await child.ask('count')) as { events: number }).events < updates * watchers && Date.now() < deadline) await sleep(50);
        const shares = meter.done();
        const watcherProcessPercent = Math.round(((readProcessCpuSeconds(child.pid) - watchers0.cpu) / ((performance.now() - watchers0.at) / 1000)) * 100);
        // The watcher process is "other" to the meter; report it on its own.
        const cpu = { ...shares, watcherProcessPercent, otherPercent: Math.max(0, shares.otherPercent - watcherProcessPercent) };
        const { arrivals } = (await child.ask('dump')) as { arrivals: [number, number, number][] };

        const fromResponse: number[] = [];
        const fromRequest: number[] = [];
        for (const [, rvOf, at] of arrivals) {
          const s = sent.get(rvOf);
          if (!s) continue;
          const arrival = at - best.offset;
          fromResponse.push(arrival - s.respondedAt);
          fromRequest.push(arrival - s.sentAt);
        }
        const expected = updates * watchers;
        const response = summarize(fromResponse);
        const request = summarize(fromRequest);
        const missing = expected - fromResponse.length;
        return {
          summary: {
            watchers,
            updates,
            spacingMs: SPACING_MS,
            events: fromResponse.length,
            missing,
            clockOffsetMs: Math.round(best.offset * 1000) / 1000,
            clockRttMs: Math.round(best.rtt * 1000) / 1000,
            fromUpdateResponse: response,
            fromUpdateRequest: request,
            cpu,
          },
          rows: [
            { metric: `Watch delivery p50, ${watchers} watchers (after the update's response)`, value: fmtMs(response.p50Ms) },
            {
              metric: `Watch delivery p99, ${watchers} watchers (after the update's response)${missing ? `; ${missing} events missing` : ''}${loadNote(cpu)}`,
              value: fmtMs(response.p99Ms),
              target: `≤ ${TARGET_P99_MS} ms`,
              met: response.p99Ms <= TARGET_P99_MS && missing === 0,
            },
            { metric: `Watch delivery p99, ${watchers} watchers (after the update was sent)`, value: fmtMs(request.p99Ms) },
          ],
        };
      } finally {
        await child.stop();
      }
    });
  },
};

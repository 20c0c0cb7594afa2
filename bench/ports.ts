/**
 * `ports` (issue 5): TCP through a published port against connecting to the container's
 * address directly, in the same run. The "container" is a network namespace with a veth
 * pair (bt9-*, 10.209.N.0/24) running a Node server; the port is published by berth's
 * `PortPublisher` with nftables (host port picked, 127.0.0.1 → namespace), and for scale
 * also through the in-process proxy (the fallback where nftables is unavailable).
 *
 * - Throughput: downloads of 64 MB from the namespace, alternating direct / published,
 *   median of the runs (target: published ≥ 90 % of direct).
 * - Connection rate: connect, read a greeting, close, 16 at a time; rounds of 500
 *   connections per path, interleaved, median of the rounds. Rounds are short and
 *   interleaved because every path slows down as TIME_WAIT sockets and conntrack entries
 *   pile up (measured: a 2 s phase at ~8,000/s halves the rate of the next phase).
 *
 * Root only (skips otherwise). Not run in CI. Run: `node --import tsx bench/run.ts ports`
 * once it is in the list, or `node --import tsx bench/ports.ts` on its own.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PortPublisher } from '../runtime/network/ports/port-publisher.ts';
import { tcpDownload, tcpRead } from '../runtime/network/ports/testing/port-clients.ts';
import { createTestNetns, TEST_SERVER_PORTS } from '../runtime/network/ports/testing/test-netns.ts';
import { fmtInt, scaled, type BenchContext, type Benchmark, type BenchmarkResult } from './benchmark.ts';
import { onExit } from './cleanup.ts';

const DOWNLOAD_BYTES = 64 * 2 ** 20;
const RATE_CONNECTIONS = 500;
const RATE_CONCURRENCY = 16;
const TARGET_SHARE = 0.9;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmtMBps = (x: number): string => `${fmtInt(x)} MB/s`;
const pct = (x: number): string => `${Math.round(x * 100)} %`;

/** MB/s of one download of `DOWNLOAD_BYTES` from `host:port`. */
async function throughput(host: string, port: number): Promise<number> {
  const t0 = performance.now();
  const got = await tcpDownload(host, port, DOWNLOAD_BYTES);
  if (got !== DOWNLOAD_BYTES) throw new Error(`download from ${host}:${port} got ${got} of ${DOWNLOAD_BYTES} bytes`);
  return DOWNLOAD_BYTES / 1e6 / ((performance.now() - t0) / 1000);
}

/** Connections per second: `RATE_CONNECTIONS` times connect, read the greeting, close, `RATE_CONCURRENCY` at a time. */
async function connectionRate(host: string, port: number): Promise<number> {
  const t0 = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: RATE_CONCURRENCY }, async () => {
      while (started++ < RATE_CONNECTIONS) await tcpRead(host, port);
    }),
  );
  return RATE_CONNECTIONS / ((performance.now() - t0) / 1000);
}

export const portsBenchmark: Benchmark = {
  name: 'ports',
  title: 'TCP through a published port (nftables DNAT, and the proxy fallback) vs the container address directly',
  budgetMs: 180_000,
  async run(ctx: BenchContext): Promise<BenchmarkResult> {
    if (process.getuid?.() !== 0 || spawnSync('nft', ['list', 'tables']).status !== 0) {
      return { summary: { skipped: 'needs root and nftables' }, rows: [{ metric: 'ports: skipped (needs root and nftables)', value: '—' }] };
    }
    const runs = scaled(ctx, 5);
    const table = `bt9_${randomBytes(3).toString('hex')}`;
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bt9-bench-ports-'));
    const ns = await createTestNetns();
    const unregister = onExit(() => {
      try {
        process.kill(ns.serverPid, 'SIGKILL');
      } catch {
        // already gone
      }
      spawnSync('ip', ['link', 'del', ns.hostVeth]);
      spawnSync('ip', ['netns', 'del', ns.name]);
      spawnSync('nft', ['delete', 'table', 'ip', table]);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const nft = new PortPublisher({ stateDir: path.join(stateDir, 'nft'), table, forwarding: 'nftables' });
    const proxy = new PortPublisher({ stateDir: path.join(stateDir, 'proxy'), forwarding: 'proxy' });
    try {
      const request = { containerIp: ns.ip, ports: [{ containerPort: TEST_SERVER_PORTS.source }, { containerPort: TEST_SERVER_PORTS.greeting }] };
      const viaNft = await nft.publish('bench/nft', request);
      const viaProxy = await proxy.publish('bench/proxy', request);
      const paths = {
        direct: { host: ns.ip, source: TEST_SERVER_PORTS.source, greeting: TEST_SERVER_PORTS.greeting },
        nftables: { host: '127.0.0.1', source: viaNft.ports[0]!.hostPort, greeting: viaNft.ports[1]!.hostPort },
        proxy: { host: '127.0.0.1', source: viaProxy.ports[0]!.hostPort, greeting: viaProxy.ports[1]!.hostPort },
      };
      ctx.log(`ports: namespace ${ns.name} at ${ns.ip}; nftables on 127.0.0.1:${paths.nftables.source}, proxy on 127.0.0.1:${paths.proxy.source}`);
      // Warm up every path (ARP, conntrack, JIT).
      for (const p of Object.values(paths)) await throughput(p.host, p.source);

      const mbps = { direct: [] as number[], nftables: [] as number[], proxy: [] as number[] };
      for (let i = 0; i < runs; i++) {
        // Alternate the order so that neither path always runs first.
        const order = (i % 2 === 0 ? ['direct', 'nftables', 'proxy'] : ['nftables', 'direct', 'proxy']) as (keyof typeof paths)[];
        for (const k of order) mbps[k].push(await throughput(paths[k].host, paths[k].source));
        ctx.log(`ports: run ${i + 1}/${runs}: direct ${mbps.direct.at(-1)!.toFixed(0)} MB/s, nftables ${mbps.nftables.at(-1)!.toFixed(0)} MB/s, proxy ${mbps.proxy.at(-1)!.toFixed(0)} MB/s`);
      }
      const rates = { direct: [] as number[], nftables: [] as number[], proxy: [] as number[] };
      for (let i = 0; i < scaled(ctx, 6); i++) {
        const order = (i % 2 === 0 ? ['direct', 'nftables', 'proxy'] : ['nftables', 'direct', 'proxy']) as (keyof typeof paths)[];
        for (const k of order) rates[k].push(await connectionRate(paths[k].host, paths[k].greeting));
        ctx.log(`ports: connection round ${i + 1}: direct ${rates.direct.at(-1)!.toFixed(0)} /s, nftables ${rates.nftables.at(-1)!.toFixed(0)} /s, proxy ${rates.proxy.at(-1)!.toFixed(0)} /s`);
      }
      const rate = { direct: median(rates.direct), nftables: median(rates.nftables), proxy: median(rates.proxy) };
      const tp = { direct: median(mbps.direct), nftables: median(mbps.nftables), proxy: median(mbps.proxy) };
      const share = tp.nftables / tp.direct;
      const rateShare = rate.nftables / rate.direct;
      return {
        summary: {
          runs,
          downloadBytes: DOWNLOAD_BYTES,
          directMBps: Math.round(tp.direct),
          nftablesMBps: Math.round(tp.nftables),
          proxyMBps: Math.round(tp.proxy),
          nftablesShareOfDirect: Number(share.toFixed(2)),
          directConnPerSec: Math.round(rate.direct),
          nftablesConnPerSec: Math.round(rate.nftables),
          proxyConnPerSec: Math.round(rate.proxy),
        },
        rows: [
          { metric: `ports: TCP download ${DOWNLOAD_BYTES / 2 ** 20} MiB, container address directly (median of ${runs})`, value: fmtMBps(tp.direct) },
          { metric: 'ports: TCP download via published port 127.0.0.1 (nftables DNAT)', value: fmtMBps(tp.nftables) },
          { metric: 'ports: published (nftables) throughput / direct', value: pct(share), target: `≥ ${TARGET_SHARE * 100} %`, met: share >= TARGET_SHARE },
          { metric: 'ports: TCP download via the proxy fallback', value: `${fmtMBps(tp.proxy)} (${pct(tp.proxy / tp.direct)} of direct)` },
          { metric: `ports: connections/s (connect, read greeting, close; ${RATE_CONCURRENCY} at a time; median of rounds of ${RATE_CONNECTIONS}), directly`, value: `${fmtInt(rate.direct)} /s` },
          { metric: 'ports: connections/s via published port (nftables)', value: `${fmtInt(rate.nftables)} /s (${pct(rateShare)} of direct)` },
          { metric: 'ports: connections/s via the proxy fallback', value: `${fmtInt(rate.proxy)} /s (${pct(rate.proxy / rate.direct)} of direct)` },
        ],
      };
    } finally {
      await nft.close({ removeAll: true });
      await proxy.close({ removeAll: true });
      await ns.remove();
      rmSync(stateDir, { recursive: true, force: true });
      unregister();
    }
  },
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const result = await portsBenchmark.run({ scale: 1, log: (m) => console.error(m) });
  console.log(JSON.stringify(result.summary));
  for (const r of result.rows) console.log(`${r.metric}: ${r.value}${r.target ? ` (target ${r.target}: ${r.met ? 'met' : 'missed'})` : ''}`);
}

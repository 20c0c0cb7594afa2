/**
 * The built-in registry serving blob downloads to 8 concurrent clients, against the
 * Debian `docker-registry` (CNCF distribution) serving the same blobs from its own
 * filesystem storage, side by side (issue 4). Both serve HTTPS with the same certificate
 * (the berth server's, from its data directory) on loopback; docker-registry listens on
 * 127.0.0.1:5111 with a config written here. The berth server is a bundled child process
 * (as in every benchmark); the clients run in this process with keep-alive connections,
 * check every response's length and the first download of each blob's digest.
 *
 * Sizes: 4 random blobs of 32 MiB; each of the 8 clients downloads every blob
 * `2 × scale` times (2 GiB per registry at scale 1). Not run in CI.
 *
 * Run alone: `node --import tsx bench/registry-serve.ts [--scale=F]`.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmtInt, scaled, withServer, type BenchContext, type Benchmark, type BenchmarkResult } from './benchmark.ts';
import { makeTempDir, spawnTracked, stopChild } from './cleanup.ts';

const CLIENTS = 8;
const BLOBS = 4;
const BLOB_BYTES = 32 * 1024 * 1024;
const DOCKER_REGISTRY_ADDR = '127.0.0.1:5111';
const REPO = 'bench/blobs';

interface Target {
  readonly name: string;
  readonly base: string;
  readonly headers: Record<string, string>;
  readonly agent: https.Agent;
}

function request(t: Target, method: string, pathAndQuery: string, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const url = new URL(pathAndQuery, t.base);
    const req = https.request(url, {
      method, agent: t.agent,
      headers: { ...t.headers, ...(body && { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST then PUT ?digest (what both registries support). */
async function pushBlob(t: Target, blob: Buffer, digest: string): Promise<void> {
  const start = await request(t, 'POST', `/v2/${REPO}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`${t.name}: starting an upload answered ${start.status}: ${start.body.toString().slice(0, 300)}`);
  const location = new URL(String(start.headers.location), t.base);
  location.searchParams.set('digest', digest);
  const put = await request(t, 'PUT', `${location.pathname}${location.search}`, blob);
  if (put.status !== 201) throw new Error(`${t.name}: finishing an upload answered ${put.status}: ${put.body.toString().slice(0, 300)}`);
}

/** Downloads one blob, counting bytes without keeping them; checks the digest when asked. */
function download(t: Target, digest: string, size: number, verify: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL(`/v2/${REPO}/blobs/${digest}`, t.base), { agent: t.agent, headers: t.headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${t.name}: GET blob answered ${res.statusCode}`));
      }
      let n = 0;
      const hash = verify ? createHash('sha256') : undefined;
      res.on('data', (c: Buffer) => {
        n += c.length;
        hash?.update(c);
      });
      res.on('end', () => {
        if (n !== size) return reject(new Error(`${t.name}: got ${n} bytes of ${size}`));
        if (hash && `sha256:${hash.digest('hex')}` !== digest) return reject(new Error(`${t.name}: digest mismatch`));
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** 8 clients, each downloading every blob `rounds` times; resolves with bytes per second. */
async function measure(t: Target, blobs: readonly { digest: string; size: number }[], rounds: number): Promise<{ bytesPerSecond: number; seconds: number; bytes: number }> {
  // warm-up and verification: each blob once, digest checked
  for (const b of blobs) await download(t, b.digest, b.size, true);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < blobs.length; i++) {
        const b = blobs[(i + c) % blobs.length]!;
        await download(t, b.digest, b.size, false);
      }
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const bytes = CLIENTS * rounds * blobs.reduce((n, b) => n + b.size, 0);
  return { bytesPerSecond: bytes / seconds, seconds, bytes };
}

async function startDockerRegistry(dir: string, certPath: string, keyPath: string, caPem: string): Promise<{ target: Target; stop: () => Promise<void> }> {
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${path.join(dir, 'storage')}}, delete: {enabled: true}}`,
    `http: {addr: "${DOCKER_REGISTRY_ADDR}", tls: {certificate: ${certPath}, key: ${keyPath}}}`,
    '',
  ].join('\n'));
  const { child, exited } = spawnTracked('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const agent = new https.Agent({ ca: caPem, keepAlive: true, maxSockets: CLIENTS });
  const target: Target = { name: 'docker-registry', base: `https://${DOCKER_REGISTRY_ADDR}`, headers: {}, agent };
  const stop = async () => {
    agent.destroy();
    await stopChild(child, exited);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await request(target, 'GET', '/v2/').then((r) => r.status === 200, () => false);
    if (ok) return { target, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not start on ${DOCKER_REGISTRY_ADDR}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const mibps = (bytesPerSecond: number): string => `${fmtInt(bytesPerSecond / 2 ** 20)} MiB/s`;

export const registryServeBenchmark: Benchmark = {
  name: 'registry-serve',
  title: 'Registry blob downloads, 8 concurrent clients: berth vs docker-registry',
  budgetMs: 10 * 60_000,
  async run(ctx: BenchContext): Promise<BenchmarkResult> {
    const rounds = scaled(ctx, 2);
    const blobs = Array.from({ length: BLOBS }, () => randomBytes(BLOB_BYTES));
    const described = blobs.map((b) => ({ digest: `sha256:${createHash('sha256').update(b).digest('hex')}`, size: b.length }));
    return withServer(ctx, 'registry-serve', async (server) => {
      const berth: Target = {
        name: 'berth', base: server.url, headers: { authorization: `Bearer ${server.token}` },
        agent: new https.Agent({ ca: server.caPem, keepAlive: true, maxSockets: CLIENTS }),
      };
      const dir = makeTempDir('berth-bench-registry-');
      const pki = path.join(server.dataDir, 'pki');
      const docker = await startDockerRegistry(dir.path, path.join(pki, 'server.crt'), path.join(pki, 'server.key'), server.caPem);
      try {
        ctx.log(`registry-serve: pushing ${BLOBS} × ${BLOB_BYTES / 2 ** 20} MiB to both registries`);
        for (let i = 0; i < blobs.length; i++) {
          await pushBlob(berth, blobs[i]!, described[i]!.digest);
          await pushBlob(docker.target, blobs[i]!, described[i]!.digest);
        }
        ctx.log(`registry-serve: ${CLIENTS} clients × ${rounds} rounds, berth`);
        const b = await measure(berth, described, rounds);
        ctx.log(`registry-serve: ${CLIENTS} clients × ${rounds} rounds, docker-registry`);
        const d = await measure(docker.target, described, rounds);
        return {
          summary: {
            clients: CLIENTS, blobs: BLOBS, blobBytes: BLOB_BYTES, rounds,
            berthBytesPerSecond: Math.round(b.bytesPerSecond), dockerRegistryBytesPerSecond: Math.round(d.bytesPerSecond),
            berthSeconds: b.seconds, dockerRegistrySeconds: d.seconds, bytesPerRegistry: b.bytes,
          },
          rows: [
            { metric: `blob downloads, ${CLIENTS} clients: berth registry`, value: mibps(b.bytesPerSecond) },
            { metric: `blob downloads, ${CLIENTS} clients: docker-registry`, value: mibps(d.bytesPerSecond) },
            { metric: 'berth / docker-registry throughput', value: `${Math.round((100 * b.bytesPerSecond) / d.bytesPerSecond)} %` },
          ],
        };
      } finally {
        berth.agent.destroy();
        await docker.stop();
        dir.remove();
      }
    });
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const scaleArg = process.argv.find((a) => a.startsWith('--scale='));
  const ctx: BenchContext = { scale: scaleArg ? Number(scaleArg.slice('--scale='.length)) : 1, log: (m) => console.error(m) };
  registryServeBenchmark.run(ctx).then((r) => {
    console.log(JSON.stringify(r.summary));
    for (const row of r.rows) console.log(`${row.metric}: ${row.value}`);
  }, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

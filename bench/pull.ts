/**
 * `pull` (issue 4): pull of an image of three layers (about 50 MB of random,
 * incompressible data) from Debian's `docker-registry` on 127.0.0.1:5109,
 * berth's distribution client against `skopeo copy docker://… oci:DIR` of the
 * same image, alternating, each into a fresh directory. Rows: throughput of
 * each (median of the runs), berth's share of skopeo's (target ≥ 80 %), and
 * berth's full `ImageStore.pullImage` (download, verify, unpack) for scale —
 * skopeo does not unpack, so only the first compares like with like.
 *
 * Not run in CI. Run: `node --import tsx bench/run.ts pull` once it is in the
 * list, or `node --import tsx bench/pull.ts` on its own.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContentStore } from '../runtime/images/content-store.ts';
import { ImageStore } from '../runtime/images/image-store.ts';
import { parseReference } from '../runtime/images/reference.ts';
import { pullFromRegistry } from '../runtime/distribution/pull.ts';
import { RegistryClient } from '../runtime/distribution/registry-client.ts';
import { OciLayoutWriter } from '../runtime/distribution/testing/oci-layout.ts';
import { hasDockerRegistry, skopeo, startRegistry } from '../runtime/distribution/testing/registry-process.ts';
import { fmtMB, scaled, type BenchContext, type Benchmark, type BenchmarkResult } from './benchmark.ts';
import { makeTempDir, onExit, spawnTracked } from './cleanup.ts';

const PORT = 5109;
const LAYER_BYTES = [20_000_000, 18_000_000, 12_000_000];
const TARGET_SHARE = 0.8;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const fmtMBps = (x: number): string => `${x.toFixed(1)} MB/s`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function runSkopeo(args: readonly string[]): Promise<void> {
  const { child, exited } = spawnTracked('skopeo', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const code = await exited;
  if (code !== 0) throw new Error(`skopeo ${args.join(' ')} exited ${code}: ${err}`);
}

export const pullBenchmark: Benchmark = {
  name: 'pull',
  title: 'Pull of a 3-layer ~50 MB image from a local registry: berth vs skopeo copy',
  budgetMs: 300_000,
  async run(ctx: BenchContext): Promise<BenchmarkResult> {
    if (!hasDockerRegistry()) {
      return { summary: { skipped: 'docker-registry not installed' }, rows: [{ metric: 'pull: skipped (no /usr/bin/docker-registry)', value: '—' }] };
    }
    const runs = scaled(ctx, 5);
    const dir = makeTempDir('berth-bench-pull-');
    const registry = await startRegistry({ port: PORT });
    const unregister = onExit(() => {
      try {
        process.kill(registry.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    try {
      ctx.log('pull: writing the image (3 layers of random data) and pushing it with skopeo');
      const layout = new OciLayoutWriter(path.join(dir.path, 'layout'));
      const img = await layout.image({ layers: LAYER_BYTES.map((n, i) => ({ files: { [`data-${i}`]: randomBytes(n) } })) });
      layout.tag(img.manifest, 'bench');
      skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:bench`, `docker://${registry.domain}/bench/random:1`], { timeoutMs: 120_000 });
      const ref = `${registry.domain}/bench/random:1`;
      const totalBytes = img.layers.reduce((n, l) => n + l.size, 0) + img.config.size;
      const registryConfig = { insecureRegistries: ['127.0.0.1'] };

      const berthMs: number[] = [];
      const skopeoMs: number[] = [];
      const fullMs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const berthDir = path.join(dir.path, `berth-${i}`);
        const skopeoDir = path.join(dir.path, `skopeo-${i}`);
        const fullDir = path.join(dir.path, `full-${i}`);
        const berth = async (): Promise<void> => {
          const store = await ContentStore.open({ root: berthDir });
          const client = new RegistryClient({ domain: registry.domain, registry: registryConfig });
          const lease = store.lease();
          try {
            await pullFromRegistry({ store, client }, { ref: parseReference(ref), lease });
          } finally {
            lease.release();
            client.close();
          }
        };
        const sk = (): Promise<void> => runSkopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${skopeoDir}:bench`]);
        // Alternate who goes first, so neither always gets the warmer page cache.
        if (i % 2 === 0) {
          berthMs.push(await timed(berth));
          skopeoMs.push(await timed(sk));
        } else {
          skopeoMs.push(await timed(sk));
          berthMs.push(await timed(berth));
        }
        fullMs.push(await timed(() => new ImageStore({ root: fullDir, registry: registryConfig }).pullImage(ref)));
        for (const d of [berthDir, skopeoDir, fullDir]) rmSync(d, { recursive: true, force: true });
        ctx.log(`pull: run ${i + 1}/${runs}: berth ${berthMs.at(-1)!.toFixed(0)} ms, skopeo ${skopeoMs.at(-1)!.toFixed(0)} ms, berth with unpack ${fullMs.at(-1)!.toFixed(0)} ms`);
      }
      const berth = mbps(totalBytes, median(berthMs));
      const sk = mbps(totalBytes, median(skopeoMs));
      const full = mbps(totalBytes, median(fullMs));
      const share = berth / sk;
      return {
        summary: {
          imageBytes: totalBytes, runs,
          berthMedianMs: Math.round(median(berthMs)), skopeoMedianMs: Math.round(median(skopeoMs)), berthWithUnpackMedianMs: Math.round(median(fullMs)),
          berthMBps: Number(berth.toFixed(1)), skopeoMBps: Number(sk.toFixed(1)), berthWithUnpackMBps: Number(full.toFixed(1)),
          berthShareOfSkopeo: Number(share.toFixed(2)),
        },
        rows: [
          { metric: `pull ${fmtMB(totalBytes)} (3 layers): berth distribution client`, value: fmtMBps(berth) },
          { metric: 'pull: skopeo copy docker:// → oci:', value: fmtMBps(sk) },
          { metric: 'pull: berth throughput / skopeo', value: `${Math.round(share * 100)} %`, target: `≥ ${TARGET_SHARE * 100} %`, met: share >= TARGET_SHARE },
          { metric: 'pull: berth ImageStore.pullImage (with unpack)', value: fmtMBps(full) },
        ],
      };
    } finally {
      await registry.stop();
      unregister();
      dir.remove();
    }
  },
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const result = await pullBenchmark.run({ scale: 1, log: (m) => console.error(m) });
  console.log(JSON.stringify(result.summary));
  for (const r of result.rows) console.log(`${r.metric}: ${r.value}${r.target ? ` (target ${r.target}: ${r.met ? 'met' : 'missed'})` : ''}`);
}

/**
 * The setting every container benchmark runs in: a scratch directory with the busybox
 * fixture, a `berth server` child on its own data directory with the fixture imported
 * as the `Image` `busybox`, an API client and a watch of the Containers — and the
 * teardown of all of it, which also reports what berth left behind.
 */
import path from 'node:path';
import { ApiClient, containersPath } from './api-client.ts';
import type { BenchContext, BenchmarkResult } from './benchmark.ts';
import { makeTempDir } from './cleanup.ts';
import { buildFixture, importImage, type BusyboxFixture } from './containers-fixture.ts';
import { startBerthServer, sweepRuntime, type BerthServer, type SweepReport } from './containers-server.ts';
import { ContainerWatch } from './containers-watch.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';

export interface BerthSession {
  /** The scratch directory: fixture, data directory, baselines' directories. */
  readonly dir: string;
  readonly fixture: BusyboxFixture;
  readonly server: BerthServer;
  readonly client: ApiClient;
  readonly watch: ContainerWatch;
}

export interface SessionOptions {
  readonly runtime: 'runc' | 'fake';
  readonly logLevel?: string;
  /** Keep every watch event per Container (for the phase breakdown). Default false. */
  readonly keepHistory?: boolean;
}

/**
 * Runs `fn` in a fresh session and tears it down afterwards, also when `fn` throws:
 * watch and client closed, server stopped (SIGTERM), the runtime safety net swept,
 * the scratch directory removed. Resolves with `fn`'s value and what the sweep found.
 */
export async function withBerth<T>(
  ctx: BenchContext,
  name: string,
  opts: SessionOptions,
  fn: (s: BerthSession) => Promise<T>,
): Promise<{ value: T; leftovers: SweepReport }> {
  const scratch = makeTempDir(`berth-${name}-`);
  try {
    const fixture = await buildFixture(path.join(scratch.path, 'fixture'));
    const server = await startBerthServer({
      dataDir: path.join(scratch.path, 'data'),
      runtime: opts.runtime,
      ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
      ...(ctx.profileDir ? { cpuProfDir: path.join(ctx.profileDir, name) } : {}),
    });
    const client = new ApiClient(server);
    let watch: ContainerWatch | undefined;
    let leftovers: SweepReport | undefined;
    try {
      ctx.log(`${name}: berth server pid ${server.pid} (${opts.runtime}), importing the busybox image`);
      await importImage(client, fixture.layoutDir);
      watch = await ContainerWatch.open(client, { keepHistory: opts.keepHistory ?? false });
      const value = await fn({ dir: scratch.path, fixture, server, client, watch });
      return { value, leftovers: (leftovers = await teardown()) };
    } finally {
      if (!leftovers) await teardown();
    }
    async function teardown(): Promise<SweepReport> {
      watch?.close();
      client.close();
      await server.stop();
      return sweepRuntime(server.dataDir);
    }
  } finally {
    scratch.remove();
  }
}

/** `DELETE`s each Container and resolves once the watch saw all of them gone. */
export async function deleteAll(s: BerthSession, names: readonly string[], timeoutMs: number): Promise<void> {
  const gone = names.map((n) => s.watch.untilDeleted(n, timeoutMs));
  await Promise.all(names.map((n) => s.client.expectOk('DELETE', `${containersPath(BENCH_NAMESPACE)}/${n}`)));
  await Promise.all(gone);
}

/** The result of a benchmark that cannot run on this machine: a row saying why, no failure. */
export function skipped(title: string, why: string): BenchmarkResult {
  return { summary: { skipped: why }, rows: [{ metric: `${title}: skipped`, value: why }] };
}

/** `, ⚠ leftovers: …` when the sweep found something berth did not clean up, else ''. */
export function leftoversNote(l: SweepReport): string {
  const parts = Object.entries(l).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length ? `; ⚠ left behind by berth and swept: ${parts.join(', ')}` : '';
}

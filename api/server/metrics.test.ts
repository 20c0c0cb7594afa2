import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openSqliteLog } from '../../store/sqlite/sqlite-log.ts';
import { ApiMetrics, type ApiMetricsOptions, type MetricsRequestInfo } from './metrics.ts';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the samples of Prometheus text format 0.0.4 (comments skipped). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels are exactly `labels`, or undefined. */
function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

const CONTAINERS = { group: 'berth.dev', resource: 'containers', subresource: '', scope: 'namespace' } as const;

/**
 * An app with the metrics middleware, a stand-in for the lead's router that sets
 * `res.locals.requestInfo` from a header, a few handlers and `/metrics`.
 */
async function startServer(opts?: ApiMetricsOptions): Promise<{ base: string; metrics: ApiMetrics }> {
  const metrics = new ApiMetrics(opts);
  const app = express();
  app.use(metrics.middleware());
  app.get('/metrics', metrics.handler());
  app.use((req, res, next) => {
    const info = req.get('x-test-request-info');
    if (info) res.locals.requestInfo = JSON.parse(info) as MetricsRequestInfo;
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.send('ok');
  });
  app.get('/missing', (_req, res) => {
    res.status(404).json({ kind: 'Status' });
  });
  app.get('/boom', (_req, res) => {
    res.status(500).send('boom');
  });
  app.patch('/apply', (_req, res) => {
    res.json({});
  });
  app.get('/watch', (req, res) => {
    const release = metrics.watchStarted(CONTAINERS);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"type":"ADDED"}\n');
    metrics.observeWatchEvents(CONTAINERS);
    res.once('close', release);
    if (req.query.end === '1') {
      metrics.observeWatchEvents(CONTAINERS, 2);
      res.end('{"type":"MODIFIED"}\n{"type":"DELETED"}\n');
    }
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, metrics };
}

async function scrape(base: string): Promise<{ text: string; samples: Sample[]; contentType: string | null }> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, samples: parseSamples(text), contentType: res.headers.get('content-type') };
}

const requestInfo = (info: MetricsRequestInfo): Record<string, string> => ({ 'x-test-request-info': JSON.stringify(info) });

function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version']).status === 0;
}

describe('ApiMetrics', () => {
  it('serves text format 0.0.4 with default process metrics but without the _total gauges promtool rejects', async () => {
    const { base } = await startServer();
    const { text, contentType } = await scrape(base);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(text).not.toMatch(/nodejs_active_(handles|requests|resources)_total/);
  });

  it.each([
    {
      name: 'a list, by its kube metric verb LIST',
      path: '/healthz',
      method: 'GET',
      headers: requestInfo({ verb: 'list', ...CONTAINERS }),
      want: { verb: 'LIST', ...CONTAINERS, code: '200' },
    },
    {
      name: 'a get of a missing object, with its 404',
      path: '/missing',
      method: 'GET',
      headers: requestInfo({ verb: 'get', ...CONTAINERS, scope: 'resource' }),
      want: { verb: 'GET', ...CONTAINERS, scope: 'resource', code: '404' },
    },
    {
      name: 'a status update of a cluster-scoped core resource as PUT',
      path: '/healthz',
      method: 'GET',
      headers: requestInfo({ verb: 'update', group: '', resource: 'namespaces', subresource: 'status', scope: 'resource' }),
      want: { verb: 'PUT', group: '', resource: 'namespaces', subresource: 'status', scope: 'resource', code: '200' },
    },
    {
      name: 'a server-side apply patch as APPLY',
      path: '/apply',
      method: 'PATCH',
      headers: {
        ...requestInfo({ verb: 'patch', ...CONTAINERS, scope: 'resource' }),
        'content-type': 'application/apply-patch+yaml',
      },
      want: { verb: 'APPLY', ...CONTAINERS, scope: 'resource', code: '200' },
    },
    {
      name: 'a request the router did not recognise, by HTTP method',
      path: '/boom',
      method: 'GET',
      headers: {},
      want: { verb: 'GET', group: '', resource: '', subresource: '', scope: '', code: '500' },
    },
  ])('counts and times $name', async ({ path, method, headers, want }) => {
    const { base } = await startServer();
    for (let i = 0; i < 2; i++) {
      const res = await fetch(base + path, { method, headers, body: method === 'PATCH' ? '{}' : undefined });
      await res.arrayBuffer();
    }
    const { samples } = await scrape(base);
    const { code: _code, ...histogramLabels } = want;
    expect(valueOf(samples, 'apiserver_request_total', want)).toBe(2);
    expect(valueOf(samples, 'apiserver_request_duration_seconds_count', histogramLabels)).toBe(2);
    expect(valueOf(samples, 'apiserver_request_duration_seconds_bucket', { ...histogramLabels, le: '+Inf' })).toBe(2);
    expect(valueOf(samples, 'apiserver_request_duration_seconds_bucket', { ...histogramLabels, le: '60' })).toBe(2);
  });

  it('counts a watch when it ends, never times it, and tracks open watchers and events', async () => {
    const { base } = await startServer();
    const watchInfo = requestInfo({ verb: 'watch', ...CONTAINERS });
    const ended = await fetch(`${base}/watch?end=1`, { headers: watchInfo });
    expect(await ended.text()).toContain('DELETED');

    const ctl = new AbortController();
    const open = await fetch(`${base}/watch`, { headers: watchInfo, signal: ctl.signal });
    const reader = open.body!.getReader();
    await reader.read(); // the first event: the watch is established

    let s = (await scrape(base)).samples;
    const watchLabels = { verb: 'WATCH', ...CONTAINERS, code: '200' };
    expect(valueOf(s, 'apiserver_request_total', watchLabels)).toBe(1); // only the ended one
    expect(valueOf(s, 'apiserver_registered_watchers', { group: 'berth.dev', resource: 'containers' })).toBe(1);
    expect(valueOf(s, 'apiserver_watch_events_total', { group: 'berth.dev', resource: 'containers' })).toBe(4);

    ctl.abort();
    await expect(reader.read()).rejects.toThrow();
    await expect.poll(async () => valueOf((await scrape(base)).samples, 'apiserver_request_total', watchLabels)).toBe(2);
    s = (await scrape(base)).samples;
    expect(valueOf(s, 'apiserver_registered_watchers', { group: 'berth.dev', resource: 'containers' })).toBe(0);
    expect(s.filter((x) => x.name.startsWith('apiserver_request_duration_seconds') && x.labels.verb === 'WATCH')).toEqual([]);
  });

  it('releases a watcher only once however often its release function is called', async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const release = metrics.watchStarted(CONTAINERS);
    metrics.watchStarted(CONTAINERS);
    release();
    release();
    const s = parseSamples(await metrics.registry.metrics());
    expect(valueOf(s, 'apiserver_registered_watchers', { group: 'berth.dev', resource: 'containers' })).toBe(1);
  });

  it('reports apiserver_storage_objects from its source at each scrape, and no samples when it fails', async () => {
    const errors: unknown[] = [];
    const metrics = new ApiMetrics({ defaultMetrics: false, onCollectError: (e) => errors.push(e) });
    let counts: Map<string, number> | Error = new Map([
      ['containers.berth.dev', 3],
      ['namespaces', 2],
    ]);
    metrics.setStorageObjectsSource(async () => {
      if (counts instanceof Error) throw counts;
      return counts;
    });

    let s = parseSamples(await metrics.registry.metrics());
    expect(valueOf(s, 'apiserver_storage_objects', { resource: 'containers.berth.dev' })).toBe(3);
    expect(valueOf(s, 'apiserver_storage_objects', { resource: 'namespaces' })).toBe(2);

    counts = new Map([['containers.berth.dev', 1]]);
    s = parseSamples(await metrics.registry.metrics());
    expect(s.filter((x) => x.name === 'apiserver_storage_objects')).toEqual([
      { name: 'apiserver_storage_objects', labels: { resource: 'containers.berth.dev' }, value: 1 },
    ]);

    counts = new Error('store closed');
    s = parseSamples(await metrics.registry.metrics());
    expect(s.filter((x) => x.name === 'apiserver_storage_objects')).toEqual([]);
    expect(errors).toEqual([counts]);
  });

  it('reports the store revision, compact revision, size, commits and compactions of a real SQLite log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-metrics-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const metrics = new ApiMetrics({ defaultMetrics: false });
    const log = openSqliteLog({
      path: join(dir, 'berth.db'),
      autoCompact: false,
      onCommit: (n, seconds) => metrics.observeCommit(n, seconds),
      onCompact: (rows, seconds) => metrics.observeCompaction(rows, seconds),
    });
    onTestFinished(() => log.close());
    let statsCalls = 0;
    metrics.setStoreStatsSource(() => {
      statsCalls++;
      return log.stats();
    });

    await Promise.all(Array.from({ length: 20 }, (_, i) => log.create(`/k/${i}`, 'v')));
    const updated = await log.update('/k/0', 'v2', (await log.get('/k/0'))!.modRevision);
    await log.compact(updated.modRevision);
    const stats = await log.stats();

    const s = parseSamples(await metrics.registry.metrics());
    expect(statsCalls).toBe(1); // one stats() per scrape for the three gauges
    expect(valueOf(s, 'berth_store_revision')).toBe(stats.revision);
    expect(valueOf(s, 'berth_store_compact_revision')).toBe(updated.modRevision);
    expect(valueOf(s, 'berth_store_size_bytes')).toBe(stats.sizeBytes);
    expect(stats.sizeBytes).toBeGreaterThan(0);
    const commits = valueOf(s, 'berth_store_commit_duration_seconds_count')!;
    expect(commits).toBeGreaterThanOrEqual(2);
    expect(valueOf(s, 'berth_store_commit_batch_size_count')).toBe(commits);
    expect(valueOf(s, 'berth_store_commit_batch_size_sum')).toBe(21); // every write in exactly one batch
    expect(valueOf(s, 'berth_store_compactions_total')).toBe(1);
    expect(valueOf(s, 'berth_store_compacted_rows_total')).toBeGreaterThanOrEqual(1); // /k/0's first revision
    expect(valueOf(s, 'berth_store_compaction_duration_seconds_count')).toBe(1);
  });

  it('reports the store gauges as NaN in a scrape whose stats source rejects', async () => {
    const metrics = new ApiMetrics({ defaultMetrics: false });
    metrics.setStoreStats({ revision: 7, compactRevision: 3, sizeBytes: 4096, keys: 1, watchers: 0 });
    let s = parseSamples(await metrics.registry.metrics());
    expect(valueOf(s, 'berth_store_revision')).toBe(7);
    expect(valueOf(s, 'berth_store_compact_revision')).toBe(3);
    expect(valueOf(s, 'berth_store_size_bytes')).toBe(4096);

    metrics.setStoreStatsSource(() => Promise.reject(new Error('closed')));
    s = parseSamples(await metrics.registry.metrics());
    for (const name of ['berth_store_revision', 'berth_store_compact_revision', 'berth_store_size_bytes']) {
      expect(valueOf(s, name)).toBeNaN();
    }
  });

  it('passes promtool check metrics', async (ctx) => {
    ctx.skip(!promtoolAvailable(), 'promtool is not installed: apt-get install -y --no-install-recommends prometheus');
    const { base, metrics } = await startServer();
    metrics.setStorageObjectsSource(async () => new Map([['containers.berth.dev', 1]]));
    metrics.setStoreStats({ revision: 7, compactRevision: 3, sizeBytes: 4096, keys: 1, watchers: 0 });
    metrics.observeCommit(4, 0.002);
    metrics.observeCompaction(10, 0.05);
    metrics.watchStarted(CONTAINERS);
    metrics.observeWatchEvents(CONTAINERS);
    await (await fetch(`${base}/healthz`, { headers: requestInfo({ verb: 'list', ...CONTAINERS }) })).text();
    await (await fetch(`${base}/boom`)).text();
    const { text } = await scrape(base);

    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      p.stdout.on('data', (c: Buffer) => (output += c.toString()));
      p.stderr.on('data', (c: Buffer) => (output += c.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, output }));
      p.stdin.end(text);
    });
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});

/**
 * `/metrics` of a real server after real requests: kube-apiserver's request,
 * watch and storage metrics, berth's store metrics, auth, and `promtool check metrics`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR } from './fixtures.ts';

const PROMTOOL = '/usr/bin/promtool';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus text format 0.0.4 samples (comments skipped). */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: m[3] === 'NaN' ? Number.NaN : Number(m[3]) });
  }
  return samples;
}

/** Samples named `name` whose labels include all of `labels`. */
const find = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

/** The sum of the samples `find` returns (0 when there are none). */
const total = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}) =>
  find(samples, name, labels).reduce((n, s) => n + s.value, 0);

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const res = await cp.request('GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text: res.text, samples: parseSamples(res.text) };
}

const CONTAINERS = { group: 'berth.dev', resource: 'containers' };

describe('/metrics on a real server', () => {
  it('counts requests by kube verb, resource and code, and times them', async () => {
    expect((await cp.request('POST', CTR, { body: container('m-1') })).status).toBe(201);
    expect((await cp.request('POST', CTR, { body: container('m-2') })).status).toBe(201);
    expect((await cp.request('GET', `${CTR}/m-1`)).status).toBe(200);
    expect((await cp.request('GET', CTR)).status).toBe(200);
    expect((await cp.request('GET', `${CTR}/m-missing`)).status).toBe(404);

    await vi.waitFor(async () => {
      const { samples } = await scrape();
      const req = (labels: Record<string, string>) => total(samples, 'apiserver_request_total', { ...CONTAINERS, ...labels });
      expect(req({ verb: 'POST', code: '201', scope: 'namespace' })).toBeGreaterThanOrEqual(2);
      expect(req({ verb: 'GET', code: '200', scope: 'resource' })).toBeGreaterThanOrEqual(1);
      expect(req({ verb: 'LIST', code: '200', scope: 'namespace' })).toBeGreaterThanOrEqual(1);
      expect(req({ verb: 'GET', code: '404' })).toBeGreaterThanOrEqual(1);

      const inf = (verb: string) =>
        total(samples, 'apiserver_request_duration_seconds_bucket', { ...CONTAINERS, verb, le: '+Inf' });
      expect(inf('POST')).toBe(req({ verb: 'POST' }));
      expect(inf('GET')).toBe(req({ verb: 'GET' }));
      expect(inf('LIST')).toBe(req({ verb: 'LIST' }));
      const count = total(samples, 'apiserver_request_duration_seconds_count', { ...CONTAINERS, verb: 'POST' });
      expect(count).toBe(inf('POST'));
      expect(total(samples, 'apiserver_request_duration_seconds_sum', { ...CONTAINERS, verb: 'POST' })).toBeGreaterThan(0);
    });
  });

  it('shows a watch in apiserver_registered_watchers while it is open, counts it once closed', async () => {
    const watchers = async () => total((await scrape()).samples, 'apiserver_registered_watchers', CONTAINERS);
    const watchesDone = async () => total((await scrape()).samples, 'apiserver_request_total', { ...CONTAINERS, verb: 'WATCH' });
    const before = await watchers();
    const doneBefore = await watchesDone();
    const rv = (await cp.request('GET', CTR)).body.metadata.resourceVersion;
    const w = await cp.stream(`${CTR}?watch=true&resourceVersion=${rv}`);
    expect(w.status).toBe(200);
    await vi.waitFor(async () => expect(await watchers()).toBe(before + 1));
    await cp.request('POST', CTR, { body: container('m-watched') });
    expect((await w.next()).object.metadata.name).toBe('m-watched');
    w.close();
    await vi.waitFor(async () => expect(await watchers()).toBe(before));
    await vi.waitFor(async () => expect(await watchesDone()).toBe(doneBefore + 1));
    // watches are long-running: counted, never timed
    expect(find((await scrape()).samples, 'apiserver_request_duration_seconds_bucket', { verb: 'WATCH' })).toEqual([]);
  });

  it('exports the store revision, size, commit latency and object counts', async () => {
    await cp.request('POST', CTR, { body: container('m-store') });
    const list = (await cp.request('GET', CTR)).body;
    const { samples } = await scrape();
    const revision = find(samples, 'berth_store_revision');
    expect(revision).toHaveLength(1);
    expect(revision[0]!.value).toBe(Number(list.metadata.resourceVersion));
    const size = find(samples, 'berth_store_size_bytes');
    expect(size).toHaveLength(1);
    expect(size[0]!.value).toBeGreaterThan(0);
    expect(total(samples, 'berth_store_commit_duration_seconds_count')).toBeGreaterThanOrEqual(list.items.length);
    expect(total(samples, 'berth_store_commit_duration_seconds_bucket', { le: '+Inf' })).toBe(total(samples, 'berth_store_commit_duration_seconds_count'));
    expect(find(samples, 'apiserver_storage_objects', { resource: 'containers.berth.dev' }).map((s) => s.value)).toEqual([list.items.length]);
    // the namespaces made at first start
    expect(total(samples, 'apiserver_storage_objects', { resource: 'namespaces' })).toBeGreaterThanOrEqual(2);
  });

  it('passes promtool check metrics', async (ctx) => {
    if (!existsSync(PROMTOOL)) ctx.skip(`${PROMTOOL} is not installed (apt-get install --no-install-recommends prometheus)`);
    // make sure every kind of sample is present: requests, a watch, a 404, store metrics
    await cp.request('GET', `${CTR}/m-missing`);
    const w = await cp.stream(`${CTR}?watch=true&resourceVersion=1`);
    const { text } = await scrape();
    w.close();
    const result = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (out += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end(text);
    });
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses /metrics without a token or with a wrong one', async () => {
    const none = await cp.request('GET', '/metrics', { token: null });
    expect(none.status).toBe(401);
    expect(none.text).not.toContain('apiserver_request_total');
    const wrong = await cp.request('GET', '/metrics', { token: 'not-the-token' });
    expect(wrong.status).toBe(401);
  });
});

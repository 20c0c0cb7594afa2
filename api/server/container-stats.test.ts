/**
 * The `stats` subresource of a Container end to end: HTTPS client → API server →
 * node agent stream server → FakeRuntimeService's `containerStats` (nothing is exec'd).
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CONTAINERS, startStreamsFixture, type Reply, type StreamsFixture } from '../../test/harness/streams-fixture.ts';
import type { Pki } from '../../cli/pki.ts';
import type { ContainerStatsReport } from '../../controllers/node/container-stats-report.ts';
import { NAME_LABEL, type StreamServer } from '../../controllers/node/stream-server.ts';
import type { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';

/** Counters the injected reader reports for `h16-net` (the fake runtime's pids are made up: the host has none to read). */
const NET = { rxBytes: 4096, txBytes: 1234 };
const DISK = { readBytes: 1 << 20, writeBytes: 512 };

let fx: StreamsFixture;
let pki: Pki;
let runtime: FakeRuntimeService;
let agent: StreamServer;
let url: string;
const ioReads: string[] = [];

beforeAll(async () => {
  fx = await startStreamsFixture({
    statsIntervalMs: 50,
    ioCounters: async (status) => {
      ioReads.push(status.id);
      return status.labels[NAME_LABEL] === 'h16-net' ? { network: NET, blockIO: DISK } : {};
    },
  });
  ({ pki, runtime, agent, url } = fx);
});

afterAll(async () => {
  await fx?.close();
});

const request = (...args: Parameters<StreamsFixture['request']>): Promise<Reply> => fx.request(...args);
const containerOn = (...args: Parameters<StreamsFixture['containerOn']>) => fx.containerOn(...args);

/** Reads `n` lines of a streamed `stats?stream=true`, then hangs up; resolves with the parsed lines. */
function streamLines(path: string, n: number): Promise<{ status: number; lines: ContainerStatsReport[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL(path, url), { ca: pki.caCertPem, headers: { authorization: `Bearer ${pki.adminToken}` } }, (res) => {
      let buf = '';
      const lines: ContainerStatsReport[] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          lines.push(JSON.parse(buf.slice(0, i)) as ContainerStatsReport);
          buf = buf.slice(i + 1);
        }
        if (lines.length >= n) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, lines, ended: false });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, lines, ended: true }));
    });
    req.on('error', reject);
  });
}


describe('the stats subresource of a Container', () => {
  it("answers one JSON reading of the runtime's counters, with the node's size for unlimited memory", async () => {
    const id = await containerOn('h16-plain', 'node-1');
    const before = runtime.calls.length;
    const res = await request('GET', `${CONTAINERS}/h16-plain/stats`);
    expect(res.status, res.text).toBe(200);
    expect(res.type).toMatch(/^application\/json/);
    const r = res.body as ContainerStatsReport;
    expect(r).toMatchObject({ kind: 'ContainerStats', apiVersion: 'berth.dev/v1', metadata: { namespace: 'default', name: 'h16-plain' }, id, pids: 1 });
    expect(r.memory).toMatchObject({ usageBytes: 1 << 20, workingSetBytes: 1 << 20 });
    expect(r.memory.limitBytes).toBeUndefined();
    expect(r.memory.nodeBytes).toBeGreaterThan(0);
    expect(r.cpu.onlineCPUs).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(r.cpu.usageNanoseconds)).toBe(true);
    expect(Math.abs(Date.parse(r.timestamp) - Date.now())).toBeLessThan(10_000);
    expect(r.network).toBeUndefined();
    expect(r.blockIO).toBeUndefined();
    // read through the runtime's stats call, not by running anything in the container
    const calls = runtime.calls.slice(before);
    expect(calls).toContain('containerStats');
    expect(calls).not.toContain('exec');
    expect(calls).not.toContain('execSync');
  });

  it('reports the memory limit and the network and block I/O counters when there are some', async () => {
    const id = await containerOn('h16-net', 'node-1', { config: { resources: { memoryBytes: 64 << 20 } } });
    const res = await request('GET', `${CONTAINERS}/h16-net/stats`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id, memory: { limitBytes: 64 << 20 }, network: NET, blockIO: DISK });
    expect(ioReads).toContain(id);
  });

  it('serves a paused container, as docker stats does', async () => {
    const id = (await containerOn('h16-paused', 'node-1'))!;
    await runtime.pauseContainer(id);
    const res = await request('GET', `${CONTAINERS}/h16-paused/stats`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.id).toBe(id);
  });

  it('streams one JSON line per interval with stream=true, CPU time never going back', async () => {
    const id = await containerOn('h16-stream', 'node-1');
    const { status, lines } = await streamLines(`${CONTAINERS}/h16-stream/stats?stream=true`, 3);
    expect(status).toBe(200);
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatchObject({ id, metadata: { name: 'h16-stream' } });
    const times = lines.map((l) => Date.parse(l.timestamp));
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(40);
    expect(lines[2]!.cpu.usageNanoseconds).toBeGreaterThanOrEqual(lines[0]!.cpu.usageNanoseconds);
  });

  it('ends a stream when the container exits', async () => {
    const id = (await containerOn('h16-ending', 'node-1'))!;
    const reading = streamLines(`${CONTAINERS}/h16-ending/stats?stream=true`, 1000);
    await new Promise((r) => setTimeout(r, 120));
    runtime.simulateExit(id, 0);
    const { status, lines, ended } = await reading;
    expect(status).toBe(200);
    expect(ended).toBe(true);
    expect(lines.length).toBeGreaterThanOrEqual(1);
  });

  it.each([
    { name: 'answers 404 for a Container that does not exist', path: 'ghost', status: 404, reason: 'NotFound', message: 'containers.berth.dev "ghost" not found' },
    { name: 'answers 400 for a Container not on a node yet', path: 'h16-unbound', status: 400, reason: 'BadRequest', message: 'container h16-unbound is not running on a node yet' },
    { name: 'answers 409 for a Container that exited', path: 'h16-exited', status: 409, reason: 'Conflict', message: 'container default/h16-exited is not running (exited)' },
    { name: 'answers 409 for a Container without a runtime container', path: 'h16-created', status: 409, reason: 'Conflict', message: 'container default/h16-created is not running (no runtime container on this node)' },
    { name: 'answers 503 for a node without a stream endpoint', path: 'h16-elsewhere', status: 503, reason: 'ServiceUnavailable', message: 'node node-2 has no stream endpoint: is its agent running?' },
  ])('$name', async ({ path, status, reason, message }) => {
    await containerOn('h16-unbound', undefined, { start: false });
    await containerOn('h16-created', 'node-1', { start: false });
    await containerOn('h16-elsewhere', 'node-2', { start: false });
    const exited = (await containerOn('h16-exited', 'node-1'))!;
    runtime.simulateExit(exited, 1);
    const res = await request('GET', `${CONTAINERS}/${path}/stats`);
    expect(res.status, res.text).toBe(status);
    expect(res.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status, reason, message });
  });

  it('refuses other methods, and requests without a valid token', async () => {
    await containerOn('h16-methods', 'node-1');
    expect((await request('POST', `${CONTAINERS}/h16-methods/stats`, {})).status).toBe(405);
    expect((await request('GET', `${CONTAINERS}/h16-methods/stats`, undefined, 'application/json', 'wrong')).status).toBe(401);
  });

  it('lists containers/stats in discovery as a get-only subresource', async () => {
    const res = await request('GET', '/apis/berth.dev/v1');
    const by = Object.fromEntries(res.body.resources.map((r: any) => [r.name, r]));
    expect(by['containers/stats']).toMatchObject({ verbs: ['get'], kind: 'ContainerStats', namespaced: true });
  });
});

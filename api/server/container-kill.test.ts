/**
 * The `kill` subresource of a Container (`docker kill -s`) end to end: HTTPS client → API
 * server → node agent stream server → FakeRuntimeService's `signalContainer`, whose fake
 * shell runs `trap 'exit N' SIG` as sh does (so the exit code tells which signal came).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { CONTAINERS, startStreamsFixture, type Reply, type StreamsFixture } from '../../test/harness/streams-fixture.ts';
import type { Pki } from '../../cli/pki.ts';
import type { StreamServer } from '../../controllers/node/stream-server.ts';
import type { ContainerId } from '../../runtime/cri/types.ts';
import type { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';
import { linuxSignalName } from './container-streams.ts';

/** HUP ends it with 3, USR1 with 4; anything else (but KILL) leaves it running. */
const TRAPS = ['sh', '-c', "trap 'exit 3' HUP; trap 'exit 4' USR1; while true; do sleep 0.05; done"];

let fx: StreamsFixture;
let pki: Pki;
let runtime: FakeRuntimeService;
let agent: StreamServer;
let url: string;

beforeAll(async () => {
  fx = await startStreamsFixture();
  ({ pki, runtime, agent, url } = fx);
});

afterAll(async () => {
  await fx?.close();
});

const request = (...args: Parameters<StreamsFixture['request']>): Promise<Reply> => fx.request(...args);


const containerOn = (name: string, node: string | undefined, opts: { start?: boolean; command?: string[] } = {}) => fx.containerOn(name, node, { command: TRAPS, ...opts });

const exitCodeOf = async (id: ContainerId): Promise<number | undefined> => (await runtime.containerStatus(id)).exitCode;

describe('the kill subresource of a Container', () => {
  it.each([
    { signal: 'HUP', code: 3 },
    { signal: 'sighup', code: 3 },
    { signal: '1', code: 3 },
    { signal: 'SIGUSR1', code: 4 },
    { signal: '10', code: 4 },
  ])('sends $signal to the main process (its trap exits $code)', async ({ signal, code }) => {
    const name = `h19-${signal.toLowerCase()}`;
    const id = (await containerOn(name, 'node-1'))!;
    const res = await request('POST', `${CONTAINERS}/${name}/kill?signal=${signal}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Success' });
    await vi.waitFor(async () => expect(await exitCodeOf(id)).toBe(code), { timeout: 2_000, interval: 20 });
  });

  it('leaves the container running when the process survives the signal, and TERM ends a server', async () => {
    const id = (await containerOn('h19-survivor', 'node-1', { command: ['httpd', '-f'] }))!;
    const before = runtime.calls.length;
    expect((await request('POST', `${CONTAINERS}/h19-survivor/kill?signal=USR2`)).status).toBe(200);
    expect(runtime.calls.slice(before)).toContain('signalContainer');
    await new Promise((r) => setTimeout(r, 100));
    expect((await runtime.containerStatus(id)).state).toBe('running');
    expect((await request('POST', `${CONTAINERS}/h19-survivor/kill?signal=TERM`)).status).toBe(200);
    await vi.waitFor(async () => expect(await exitCodeOf(id)).toBe(143), { timeout: 2_000, interval: 20 });
    // it exited: a second signal finds nothing running
    const again = await request('POST', `${CONTAINERS}/h19-survivor/kill?signal=TERM`);
    expect(again.status, again.text).toBe(409);
    expect(again.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Conflict', message: 'container h19-survivor is not running' });
  });

  it.each([
    { query: '?signal=NOSUCH', message: 'signal: Invalid value: "NOSUCH": not a Linux signal (a name such as HUP or SIGTERM, or its number)' },
    { query: '?signal=0', message: 'signal: Invalid value: "0": not a Linux signal (a name such as HUP or SIGTERM, or its number)' },
    { query: '?signal=64', message: 'signal: Invalid value: "64": not a Linux signal (a name such as HUP or SIGTERM, or its number)' },
    { query: '', message: 'signal: Required value: a Linux signal, by name (HUP, SIGTERM) or number' },
    { query: '?signal=', message: 'signal: Required value: a Linux signal, by name (HUP, SIGTERM) or number' },
    { query: '?signal=HUP&signal=TERM', message: 'signal: Invalid value: give one signal' },
  ])('answers 400 naming the signal parameter for "$query"', async ({ query, message }) => {
    const id = (await containerOn('h19-bad', 'node-1'))!;
    const before = runtime.calls.length;
    const res = await request('POST', `${CONTAINERS}/h19-bad/kill${query}`);
    expect(res.status, res.text).toBe(400);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', code: 400, reason: 'BadRequest', message, details: { causes: [{ field: 'signal', message }] } });
    expect(runtime.calls.slice(before)).not.toContain('signalContainer');
    expect((await runtime.containerStatus(id)).state).toBe('running');
  });

  it.each([
    { name: 'answers 404 for a Container that does not exist', path: 'ghost', status: 404, reason: 'NotFound', message: 'containers.berth.dev "ghost" not found' },
    { name: 'answers 409 for a Container not on a node yet', path: 'h19-unbound', status: 409, reason: 'Conflict', message: 'container h19-unbound is not running' },
    { name: 'answers 409 for a Container that exited', path: 'h19-exited', status: 409, reason: 'Conflict', message: 'container h19-exited is not running' },
    { name: 'answers 409 for a Container without a runtime container', path: 'h19-created', status: 409, reason: 'Conflict', message: 'container h19-created is not running' },
    { name: 'answers 409 for a paused Container, as Docker', path: 'h19-paused', status: 409, reason: 'Conflict', message: 'container h19-paused is paused. Unpause the container before stopping or killing' },
    { name: 'answers 503 for a node without a stream endpoint', path: 'h19-elsewhere', status: 503, reason: 'ServiceUnavailable', message: 'node node-2 has no stream endpoint: is its agent running?' },
  ])('$name', async ({ path, status, reason, message }) => {
    await containerOn('h19-unbound', undefined, { start: false });
    await containerOn('h19-created', 'node-1', { start: false });
    await containerOn('h19-elsewhere', 'node-2', { start: false });
    const exited = (await containerOn('h19-exited', 'node-1'))!;
    runtime.simulateExit(exited, 1);
    const paused = (await containerOn('h19-paused', 'node-1'))!;
    await runtime.pauseContainer(paused);
    const res = await request('POST', `${CONTAINERS}/${path}/kill?signal=HUP`);
    expect(res.status, res.text).toBe(status);
    expect(res.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status, reason, message });
    // the paused one got nothing, and is still there to resume
    expect((await runtime.containerStatus(paused)).state).toBe('paused');
  });

  it('refuses other methods, and requests without a valid token', async () => {
    await containerOn('h19-methods', 'node-1');
    const get = await request('GET', `${CONTAINERS}/h19-methods/kill?signal=HUP`);
    expect(get.status).toBe(405);
    expect(get.body).toMatchObject({ kind: 'Status', reason: 'MethodNotAllowed' });
    expect((await request('POST', `${CONTAINERS}/h19-methods/kill?signal=HUP`, undefined, 'application/json', 'wrong')).status).toBe(401);
  });

  it('lists containers/kill in discovery as a create-only subresource', async () => {
    const res = await request('GET', '/apis/berth.dev/v1');
    const by = Object.fromEntries(res.body.resources.map((r: any) => [r.name, r]));
    expect(by['containers/kill']).toMatchObject({ verbs: ['create'], kind: 'ContainerKillOptions', namespaced: true });
  });
});

describe('linuxSignalName', () => {
  it.each([
    ['HUP', 'SIGHUP'],
    ['sigterm', 'SIGTERM'],
    [' usr1 ', 'SIGUSR1'],
    ['15', 'SIGTERM'],
    ['9', 'SIGKILL'],
    ['SIGIOT', 'SIGIOT'],
  ])('reads %j as %s', (input, want) => expect(linuxSignalName(input)).toBe(want));

  it.each(['', 'NOSUCH', 'SIG', '0', '32', '-1', '1.5', 'HUP TERM'])('refuses %j', (input) => expect(linuxSignalName(input)).toBeUndefined());
});

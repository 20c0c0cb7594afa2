/**
 * Logs, exec and attach end to end: @kubernetes/client-node → API server (HTTPS, bearer
 * token) → node agent stream server (HTTPS, its own token) → FakeRuntimeService.
 */
import https from 'node:https';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Attach, Exec, KubeConfig, Log } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { CONTAINERS, startStreamsFixture, type Reply, type StreamsFixture } from '../../test/harness/streams-fixture.ts';
import WebSocket from 'ws';
import type { Pki } from '../../cli/pki.ts';
import type { StreamServer } from '../../controllers/node/stream-server.ts';
import type { ContainerConfig, ContainerId } from '../../runtime/cri/types.ts';
import { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';
import { parseExecOptions } from './container-streams.ts';


let fx: StreamsFixture;
let pki: Pki;
let runtime: FakeRuntimeService;
let agent: StreamServer;
let url: string;
let kc: KubeConfig;

beforeAll(async () => {
  fx = await startStreamsFixture();
  ({ pki, runtime, agent, url } = fx);

  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'berth', server: url, caData: Buffer.from(pki.caCertPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'admin', token: pki.adminToken }],
    contexts: [{ name: 'berth', cluster: 'berth', user: 'admin' }],
    currentContext: 'berth',
  });
});

afterAll(async () => {
  await fx?.close();
});

const request = (...args: Parameters<StreamsFixture['request']>): Promise<Reply> => fx.request(...args);


/** A Container bound to `node` running `sh -c script` on the fake runtime. */
const containerOn = async (name: string, node: string | undefined, script: string, config: Partial<ContainerConfig> = {}): Promise<ContainerId> =>
  (await fx.containerOn(name, node, { command: ['sh', '-c', script], config }))!;

/** client-node's `Exec`, collecting output and the final Status. */
async function clientExec(name: string, command: string[], stdin?: string): Promise<{ stdout: string; stderr: string; status: any }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = { stdout: '', stderr: '', status: undefined as any };
  stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const status = new Promise<any>((resolve, reject) => {
    new Exec(kc).exec('default', name, name, command, stdout, stderr, stdin === undefined ? null : Readable.from([stdin]), false, resolve).catch(reject);
  });
  out.status = await status;
  return out;
}

describe('container logs through the API server', () => {
  it("streams the log to client-node's Log with follow and tailLines, and ends when the container exits", async () => {
    const id = await containerOn('logger', 'node-1', 'echo one; echo two; echo three; sleep 3600');
    await vi.waitFor(() => expect(runtime.containers.get(id)?.logs).toHaveLength(3));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const ended = new Promise<void>((r) => out.on('end', () => r()));
    await new Log(kc).log('default', 'logger', 'logger', out, { follow: true, tailLines: 2 });
    await vi.waitFor(() => expect(text).toBe('two\nthree\n'));
    runtime.simulateExit(id, 0);
    await ended;
    expect(text).toBe('two\nthree\n');
  });

  it('serves the berth path with timestamps', async () => {
    const id = await containerOn('stamped', 'node-1', 'echo hi; sleep 3600');
    await vi.waitFor(() => expect(runtime.containers.get(id)?.logs).toHaveLength(1));
    const res = await request('GET', `${CONTAINERS}/stamped/log?timestamps=true`);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hi\n$/);
  });

  it.each([
    { name: 'answers 404 for a Container that does not exist', path: `${CONTAINERS}/ghost/log`, status: 404, message: 'containers.berth.dev "ghost" not found' },
    { name: 'answers 400 for a Container not on a node yet', path: `${CONTAINERS}/unbound/log`, status: 400, message: 'container unbound is not running on a node yet' },
    { name: 'answers 503 for a node without a stream endpoint', path: `${CONTAINERS}/elsewhere/log`, status: 503, message: 'node node-2 has no stream endpoint: is its agent running?' },
    { name: 'refuses exec without an upgrade', path: `${CONTAINERS}/unbound/exec?command=true&stdout=true`, status: 400, message: 'Upgrade request required' },
  ])('$name', async ({ path, status, message }) => {
    await containerOn('unbound', undefined, 'sleep 3600');
    await containerOn('elsewhere', 'node-2', 'sleep 3600');
    const res = await request('GET', path);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', code: status, message });
  });
});

describe('container exec through the API server', () => {
  it("reports stdout, stderr and the exit code to client-node's Exec", async () => {
    await containerOn('shell', 'node-1', 'sleep 3600');
    const r = await clientExec('shell', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  });

  it('feeds stdin to the command', async () => {
    await containerOn('catter', 'node-1', 'sleep 3600');
    const r = await clientExec('catter', ['cat'], 'hello through the proxy\n');
    expect(r).toEqual({ stdout: 'hello through the proxy\n', stderr: '', status: { metadata: {}, status: 'Success' } });
  });

  it('refuses exec into a paused container with a clear message', async () => {
    const id = await containerOn('frozen', 'node-1', 'sleep 3600');
    await runtime.pauseContainer(id);
    const r = await clientExec('frozen', ['true']);
    expect(r.status).toMatchObject({ status: 'Failure', message: 'cannot exec into a paused container' });
  });

  it('answers 404 to an exec of a missing Container', async () => {
    await expect(clientExec('missing', ['true'])).rejects.toMatchObject({ message: 'Unexpected server response: 404' });
  });

  it('passes the negotiated sub-protocol through on the berth path, and refuses a missing token', async () => {
    await containerOn('raw', 'node-1', 'sleep 3600');
    const open = (token: string) =>
      new WebSocket(`${url.replace('https', 'wss')}${CONTAINERS}/raw/exec?command=echo&command=hi&stdout=true`, ['v4.channel.k8s.io'], {
        ca: pki.caCertPem,
        headers: { authorization: `Bearer ${token}` },
      });
    const ws = open(pki.adminToken);
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    await new Promise<void>((resolve, reject) => (ws.on('close', () => resolve()), ws.on('error', reject)));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    expect(frames.map((f) => [f[0], f.subarray(1).toString()])).toEqual([
      [1, 'hi\n'],
      [3, '{"metadata":{},"status":"Success"}'],
    ]);

    const refused = open('wrong');
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
  });

  it("passes berth's user, env and workingDir through to the node's ExecRequest", async () => {
    await containerOn('extended', 'node-1', 'sleep 3600', { env: [{ name: 'FROM_IMAGE', value: 'yes' }] });
    const spy = vi.spyOn(runtime, 'exec');
    onTestFinished(() => spy.mockRestore());
    const q = 'command=env&stdout=true&user=nobody&env=A%3D1&env=B%3Dtwo%20words&workingDir=%2Ftmp';
    const ws = new WebSocket(`${url.replace('https', 'wss')}${CONTAINERS}/extended/exec?${q}`, ['v5.channel.k8s.io'], {
      ca: pki.caCertPem,
      headers: { authorization: `Bearer ${pki.adminToken}` },
    });
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    await new Promise<void>((resolve, reject) => (ws.on('close', () => resolve()), ws.on('error', reject)));
    const stdout = frames.filter((f) => f[0] === 1).map((f) => f.subarray(1).toString()).join('');
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['FROM_IMAGE=yes', 'A=1', 'B=two words']));
    expect(spy.mock.calls[0]?.[1]).toEqual({
      cmd: ['env'],
      tty: false,
      stdin: false,
      user: 'nobody',
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: 'two words' },
      ],
      workingDir: '/tmp',
    });
  });

  it('starts a detached exec on the node and ends the session with Success at once (exec -d)', async () => {
    await containerOn('detached', 'node-1', 'sleep 3600');
    const spy = vi.spyOn(runtime, 'execDetached');
    onTestFinished(() => spy.mockRestore());
    const ws = new WebSocket(`${url.replace('https', 'wss')}${CONTAINERS}/detached/exec?command=sleep&command=100&detach=true&user=nobody`, ['v5.channel.k8s.io'], {
      ca: pki.caCertPem,
      headers: { authorization: `Bearer ${pki.adminToken}` },
    });
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    await new Promise<void>((resolve, reject) => (ws.on('close', () => resolve()), ws.on('error', reject)));
    expect(frames.filter((f) => f[0] === 1 || f[0] === 2)).toEqual([]);
    expect(JSON.parse(frames.find((f) => f[0] === 3)!.subarray(1).toString())).toMatchObject({ status: 'Success' });
    expect(spy.mock.calls[0]?.[1]).toEqual({ cmd: ['sleep', '100'], tty: false, stdin: false, user: 'nobody' });
  });

  it('refuses bad exec options with 400 before looking for the node', async () => {
    await containerOn('unbound', undefined, 'sleep 3600');
    const ws = new WebSocket(`${url.replace('https', 'wss')}${CONTAINERS}/unbound/exec?command=pwd&stdout=true&workingDir=tmp`, ['v5.channel.k8s.io'], {
      ca: pki.caCertPem,
      headers: { authorization: `Bearer ${pki.adminToken}` },
    });
    const refusal = await new Promise<{ code: number; body: any }>((resolve) =>
      ws.on('unexpected-response', (_q, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) }));
      }),
    );
    expect(refusal).toMatchObject({ code: 400, body: { kind: 'Status', code: 400, message: 'workingDir must be an absolute path, got "tmp"' } });
  });

  it("attaches client-node's Attach to a TTY container with stdin, and detaching leaves it running", async () => {
    const id = await containerOn('attached', 'node-1', 'sleep 3600', { tty: true, stdin: true });
    const stdout = new PassThrough();
    let seen = '';
    stdout.on('data', (d: Buffer) => (seen += d.toString()));
    const stdin = new PassThrough();
    const ws = await new Attach(kc).attach('default', 'attached', 'attached', stdout, null, stdin, true);
    stdin.write('typed\n');
    await vi.waitFor(() => expect(seen).toBe('typed\r\n'));
    expect(runtime.containers.get(id)?.stdinText).toBe('typed\n');
    ws.close();
    expect(runtime.containers.get(id)?.state).toBe('running');
  });

  it("passes the agent's refusal of an attach without streams through as is", async () => {
    await containerOn('attached', 'node-1', 'sleep 3600');
    const ws = new WebSocket(`${url.replace('https', 'wss')}${CONTAINERS}/attached/attach?tty=true`, ['v5.channel.k8s.io'], {
      ca: pki.caCertPem,
      headers: { authorization: `Bearer ${pki.adminToken}` },
    });
    const refusal = await new Promise<{ code: number; body: any }>((resolve) =>
      ws.on('unexpected-response', (_q, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) }));
      }),
    );
    expect(refusal).toMatchObject({ code: 400, body: { kind: 'Status', code: 400, message: 'you must specify at least 1 of stdin, stdout, stderr' } });
  });

  it('lists the streaming subresources in discovery', async () => {
    const res = await request('GET', '/apis/berth.dev/v1');
    const by = Object.fromEntries(res.body.resources.map((r: any) => [r.name, r]));
    expect(by['containers/log']).toMatchObject({ verbs: ['get'] });
    expect(by['containers/exec']).toMatchObject({ verbs: ['create', 'get'], kind: 'ContainerExecOptions' });
    expect(by['containers/attach']).toMatchObject({ verbs: ['create', 'get'], kind: 'ContainerAttachOptions' });
  });
});

describe('parseExecOptions', () => {
  it("reads Kubernetes' exec options and berth's user, env and workingDir", () => {
    const q = new URLSearchParams('command=sh&command=-c&command=echo%20%24A&stdin=true&stdout=1&tty=true&container=c&user=1000%3A1000&env=A%3Da%3Db&env=EMPTY%3D&workingDir=%2Fsrv%2Fapp');
    expect(parseExecOptions(q)).toEqual({
      command: ['sh', '-c', 'echo $A'],
      stdin: true,
      stdout: true,
      stderr: false,
      tty: true,
      user: '1000:1000',
      env: [
        { name: 'A', value: 'a=b' },
        { name: 'EMPTY', value: '' },
      ],
      workingDir: '/srv/app',
    });
    // none of the extensions: the container's own user, environment and directory
    expect(parseExecOptions(new URLSearchParams('command=id&stderr=true'))).toEqual({ command: ['id'], stdin: false, stdout: false, stderr: true, tty: false });
    // detach: no streams needed (nor relayed)
    expect(parseExecOptions(new URLSearchParams('command=touch&command=%2Ff&detach=true&stdout=true'))).toEqual({ command: ['touch', '/f'], stdin: false, stdout: false, stderr: false, tty: false, detach: true });
    // exec -dit: a terminal and an open stdin on the node, still nothing relayed
    expect(parseExecOptions(new URLSearchParams('command=sh&detach=true&stdin=true&tty=true'))).toEqual({ command: ['sh'], stdin: true, stdout: false, stderr: false, tty: true, detach: true });
  });

  it.each([
    { query: 'stdout=true', message: 'you must specify at least one command for the container' },
    { query: 'command=id', message: 'you must specify at least 1 of stdin, stdout, stderr' },
    { query: 'command=id&stdout=true&user=a&user=b', message: 'user may be given only once' },
    { query: 'command=id&stdout=true&user=', message: 'user must not be empty' },
    { query: 'command=id&stdout=true&workingDir=rel%2Fdir', message: 'workingDir must be an absolute path, got "rel/dir"' },
    { query: 'command=id&stdout=true&workingDir=', message: 'workingDir must not be empty' },
    { query: 'command=id&stdout=true&env=A', message: 'env must be NAME=VALUE, got "A"' },
    { query: 'command=id&stdout=true&env=%3Dx', message: 'env must be NAME=VALUE, got "=x"' },
  ])('refuses $query: $message', ({ query, message }) => {
    expect(() => parseExecOptions(new URLSearchParams(query))).toThrow(expect.objectContaining({ code: 400, message }));
  });
});

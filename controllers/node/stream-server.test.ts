import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { AttachStreams, ContainerConfig, ContainerId, ExecRequest, ExecStreams } from '../../runtime/cri/types.ts';
import { RuntimeError } from '../../runtime/cri/errors.ts';
import { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';
import { createStreamServer, FIRST_RESIZE_WAIT_MS, NAME_LABEL, NAMESPACE_LABEL, parseTerminalSize, toRfc3339NanoUtc } from './stream-server.ts';

const TOKEN = 'agent-secret';

interface Fixture {
  readonly runtime: FakeRuntimeService;
  readonly base: string;
  readonly agent: ReturnType<typeof createStreamServer>;
  /** Runtime exec sessions opened through the server, for checking resize and kill. */
  readonly execs: { req: ExecRequest; streams: ExecStreams; resizes: [number, number][]; startedAtMs: number }[];
  /** Runtime attach sessions opened through the server. */
  readonly attaches: { streams: AttachStreams; resizes: [number, number][] }[];
  run(name: string, script: string, config?: Partial<ContainerConfig>): Promise<ContainerId>;
}

async function startAgent(options: { firstResizeWaitMs?: number } = {}): Promise<Fixture> {
  const runtime = new FakeRuntimeService();
  const execs: Fixture['execs'] = [];
  const realExec = runtime.exec.bind(runtime);
  runtime.exec = async (id, req, opts) => {
    const streams = await realExec(id, req, opts);
    const rec = { req, streams, resizes: [] as [number, number][], startedAtMs: Date.now() };
    execs.push(rec);
    return { ...streams, exit: streams.exit, resize: (w: number, h: number) => void rec.resizes.push([w, h]) };
  };
  const attaches: Fixture['attaches'] = [];
  const realAttach = runtime.attach.bind(runtime);
  runtime.attach = async (id, req, opts) => {
    const streams = await realAttach(id, req, opts);
    const rec = { streams, resizes: [] as [number, number][] };
    attaches.push(rec);
    return { ...streams, ended: streams.ended, resize: (w: number, h: number) => void rec.resizes.push([w, h]) };
  };
  const agent = createStreamServer({ runtime, token: TOKEN, ...options });
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  onTestFinished(() => agent.close());
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  return {
    runtime,
    base,
    agent,
    execs,
    attaches,
    async run(name, script, config = {}) {
      const id = await runtime.createContainer({
        name: `default_${name}_${Date.now()}`,
        image: 'busybox',
        command: ['sh', '-c', script],
        labels: { [NAMESPACE_LABEL]: 'default', [NAME_LABEL]: name },
        ...config,
      });
      await runtime.startContainer(id);
      return id;
    },
  };
}

function get(url: string, token: string | null = TOKEN): Promise<{ status: number; text: string; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          /* plain text */
        }
        resolve({ status: res.statusCode ?? 0, text, body });
      });
    });
    req.on('error', reject);
  });
}

interface ExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  status: any;
}

/** Runs an exec session over a raw WebSocket, as client-go does: frames in, frames out, Status last. */
function execWs(
  base: string,
  query: string,
  opts: { protocols?: string[]; stdin?: string; onOpen?: (ws: WebSocket) => void; token?: string; verb?: 'exec' | 'attach' } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/containers/default/web/${opts.verb ?? 'exec'}?${query}`, opts.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
      headers: { authorization: `Bearer ${opts.token ?? TOKEN}` },
    });
    const out: ExecResult = { protocol: '', stdout: '', stderr: '', status: undefined };
    ws.on('open', () => {
      out.protocol = ws.protocol;
      if (opts.stdin !== undefined) {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(opts.stdin)]));
        ws.send(Buffer.from([255, 0]));
      }
      opts.onOpen?.(ws);
    });
    ws.on('message', (data: Buffer) => {
      const payload = data.subarray(1).toString('utf8');
      if (data[0] === 1) out.stdout += payload;
      else if (data[0] === 2) out.stderr += payload;
      else if (data[0] === 3) out.status = JSON.parse(payload);
    });
    ws.on('close', () => resolve(out));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(text) })));
    });
    ws.on('error', reject);
  });
}

describe('stream server: logs', () => {
  it('serves the last tailLines lines of the newest runtime container of the object', async () => {
    const f = await startAgent();
    const old = await f.run('web', 'echo old');
    await vi.waitFor(() => expect(f.runtime.containers.get(old)?.state).toBe('stopped'));
    await f.run('web', 'echo one; echo two; echo three; sleep 3600');
    await vi.waitFor(() => expect([...f.runtime.containers.values()].at(-1)?.logs).toHaveLength(3));
    const res = await get(`${f.base}/containers/default/web/log?tailLines=2`);
    expect(res.status).toBe(200);
    expect(res.text).toBe('two\nthree\n');
  });

  it('prefixes each line with its UTC timestamp with nine fractional digits when timestamps=true', async () => {
    const f = await startAgent();
    await f.run('web', 'echo hi; sleep 3600');
    await vi.waitFor(() => expect([...f.runtime.containers.values()][0]?.logs).toHaveLength(1));
    const res = await get(`${f.base}/containers/default/web/log?timestamps=true`);
    expect(res.text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hi\n$/);
  });

  it('serves one stream of the log with stream=Stdout|Stderr (Kubernetes\' split streams), both by default', async () => {
    const f = await startAgent();
    await f.run('web', 'echo out; echo err >&2; echo out2; sleep 3600');
    await vi.waitFor(() => expect([...f.runtime.containers.values()][0]?.logs).toHaveLength(3));
    expect((await get(`${f.base}/containers/default/web/log`)).text).toBe('out\nerr\nout2\n');
    expect((await get(`${f.base}/containers/default/web/log?stream=Stdout`)).text).toBe('out\nout2\n');
    expect((await get(`${f.base}/containers/default/web/log?stream=Stderr`)).text).toBe('err\n');
    const bad = await get(`${f.base}/containers/default/web/log?stream=stdout`);
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/stream must be All, Stdout or Stderr/);
  });

  it('follows the log until the container exits', async () => {
    const f = await startAgent();
    const id = await f.run('web', 'echo first; sleep 3600');
    await vi.waitFor(() => expect(f.runtime.containers.get(id)?.logs).toHaveLength(1));
    const chunks: string[] = [];
    const ended = new Promise<number>((resolve, reject) => {
      http
        .get(`${f.base}/containers/default/web/log?follow=true`, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
          res.setEncoding('utf8');
          res.on('data', (c: string) => chunks.push(c));
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    await vi.waitFor(() => expect(chunks.join('')).toBe('first\n'));
    f.runtime.simulateExit(id, 0);
    expect(await ended).toBe(200);
  });

  it.each([
    { name: 'refuses a request without the token', url: '/containers/default/web/log', token: null, status: 401, reason: 'Unauthorized' },
    { name: 'refuses a wrong token', url: '/containers/default/web/log', token: 'nope', status: 401, reason: 'Unauthorized' },
    { name: 'answers 404 for an object with no runtime container', url: '/containers/default/ghost/log', token: TOKEN, status: 404, reason: 'NotFound' },
    { name: 'answers 404 for an unknown path', url: '/containers/default/web/proxy', token: TOKEN, status: 404, reason: 'NotFound' },
    { name: 'refuses exec without a WebSocket upgrade', url: '/containers/default/web/exec?command=true&stdout=true', token: TOKEN, status: 400, reason: 'BadRequest' },
    { name: 'refuses a negative tailLines', url: '/containers/default/web/log?tailLines=-1', token: TOKEN, status: 400, reason: 'BadRequest' },
  ])('$name', async ({ url, token, status, reason }) => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const res = await get(`${f.base}${url}`, token);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', reason, code: status });
  });
});

describe('stream server: local socket', () => {
  it('serves the same streams in plain HTTP on its local server, with the same token', async () => {
    const f = await startAgent();
    const dir = mkdtempSync(join(tmpdir(), 'bss-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'agent.sock');
    await new Promise<void>((r) => f.agent.localServer.listen(socket, r));
    await f.run('web', 'echo hello; sleep 3600');
    const viaSocket = (token: string | null) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        http
          .get({ socketPath: socket, path: '/containers/default/web/log', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          })
          .on('error', reject);
      });
    await vi.waitFor(async () => expect(await viaSocket(TOKEN)).toEqual({ status: 200, text: 'hello\n' }));
    expect((await viaSocket(null)).status).toBe(401);
    await f.agent.close();
    expect(f.agent.localServer.listening).toBe(false);
  });
});

describe('stream server: exec', () => {
  it.each([
    { offered: ['v5.channel.k8s.io', 'v4.channel.k8s.io'], chosen: 'v5.channel.k8s.io' },
    { offered: ['v4.channel.k8s.io', 'v3.channel.k8s.io'], chosen: 'v4.channel.k8s.io' },
  ])('runs a command over $chosen: stdout, stderr, then the exit code as a NonZeroExitCode Status', async ({ offered, chosen }) => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const cmd = ['sh', '-c', 'echo out; echo err >&2; exit 3'].map((c) => `command=${encodeURIComponent(c)}`).join('&');
    const r = await execWs(f.base, `${cmd}&stdout=true&stderr=true`, { protocols: offered });
    expect(r).toEqual({
      protocol: chosen,
      stdout: 'out\n',
      stderr: 'err\n',
      status: {
        metadata: {},
        status: 'Failure',
        message: 'command terminated with non-zero exit code: error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      },
    });
  });

  it('feeds stdin and half-closes it on the v5 close channel, then reports Success', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const r = await execWs(f.base, 'command=cat&stdin=true&stdout=true&stderr=true', { stdin: 'hello\nworld\n' });
    expect(r.stdout).toBe('hello\nworld\n');
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
  });

  it('passes resize messages to the runtime, also those sent before the session started, in either key case', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const r = execWs(f.base, 'command=cat&stdin=true&stdout=true&tty=true', {
      onOpen: (ws) => {
        ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"Width":120,"Height":40}')]));
        ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"height":30,"width":90}')]));
        setTimeout(() => ws.send(Buffer.from([255, 0])), 50);
      },
    });
    expect((await r).status.status).toBe('Success');
    expect(f.execs[0]?.resizes).toEqual([
      [120, 40],
      [90, 30],
    ]);
    expect(f.execs[0]?.req.consoleSize).toEqual({ width: 120, height: 40 }); // the first one is also the size it starts with
  });

  it('starts a TTY exec in the size of the first resize message, waiting for it when it comes a little late', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    let opened = 0;
    const r = execWs(f.base, 'command=cat&stdin=true&stdout=true&tty=true', {
      onOpen: (ws) => {
        opened = Date.now();
        setTimeout(() => ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"Width":132,"Height":43}')])), 60);
        setTimeout(() => ws.send(Buffer.from([255, 0])), 120);
      },
    });
    expect((await r).status.status).toBe('Success');
    const startedAfter = f.execs[0]!.startedAtMs - opened;
    expect(f.execs[0]?.req).toMatchObject({ cmd: ['cat'], tty: true, consoleSize: { width: 132, height: 43 } });
    expect(startedAfter).toBeGreaterThanOrEqual(50); // it waited for the resize…
    expect(startedAfter).toBeLessThan(FIRST_RESIZE_WAIT_MS); // …and no longer
  });

  it('starts a TTY exec without a size when no resize message comes in time, and a non-TTY exec at once', async () => {
    const f = await startAgent({ firstResizeWaitMs: 150 });
    await f.run('web', 'sleep 3600');
    const t0 = Date.now();
    const tty = await execWs(f.base, 'command=true&stdout=true&tty=true');
    expect(tty.status.status).toBe('Success');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(f.execs[0]?.req.tty).toBe(true);
    expect(f.execs[0]?.req).not.toHaveProperty('consoleSize');

    // without a TTY a resize changes nothing: no wait, no size
    const t1 = Date.now();
    const plain = await execWs(f.base, 'command=true&stdout=true', { onOpen: (ws) => ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"width":80,"height":24}')])) });
    expect(plain.status.status).toBe('Success');
    expect(Date.now() - t1).toBeLessThan(140);
    expect(f.execs[1]?.req).not.toHaveProperty('consoleSize');
  });

  it('starts nothing when the client goes while the TTY exec waits for its size', async () => {
    const f = await startAgent({ firstResizeWaitMs: 300 });
    await f.run('web', 'sleep 3600');
    await execWs(f.base, 'command=sleep&command=3600&stdout=true&tty=true', { onOpen: (ws) => setTimeout(() => ws.close(), 20) });
    await new Promise((r) => setTimeout(r, 400));
    expect(f.execs).toHaveLength(0);
  });

  it('runs a TTY exec: stderr shows on stdout with terminal line endings', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const cmd = ['sh', '-c', 'echo out; echo err >&2'].map((c) => `command=${encodeURIComponent(c)}`).join('&');
    const r = await execWs(f.base, `${cmd}&stdout=true&stderr=true&tty=true`);
    expect(r).toMatchObject({ stdout: 'out\r\nerr\r\n', stderr: '', status: { status: 'Success' } });
  });

  it('refuses exec into a paused container with a clear Status on the error channel', async () => {
    const f = await startAgent();
    const id = await f.run('web', 'sleep 3600');
    await f.runtime.pauseContainer(id);
    const r = await execWs(f.base, 'command=true&stdout=true');
    expect(r.status).toMatchObject({ status: 'Failure', reason: 'Conflict', code: 409, message: 'cannot exec into a paused container' });
  });

  it('kills the exec process when the client goes first', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await execWs(f.base, 'command=sleep&command=3600&stdout=true', { onOpen: (ws) => setTimeout(() => ws.close(), 50) });
    await vi.waitFor(() => expect(f.execs).toHaveLength(1));
    expect(await f.execs[0]!.streams.exit).toBe(137);
  });

  it.each([
    { name: 'refuses a wrong token before upgrading', query: 'command=true&stdout=true', token: 'nope', status: 401, message: 'Unauthorized' },
    { name: 'refuses an exec without a command', query: 'stdout=true', token: TOKEN, status: 400, message: 'you must specify at least one command for the container' },
    { name: 'refuses an exec without any stream', query: 'command=true', token: TOKEN, status: 400, message: 'you must specify at least 1 of stdin, stdout, stderr' },
  ])('$name', async ({ query, token, status, message }) => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await expect(execWs(f.base, query, { token })).rejects.toMatchObject({ status, body: { kind: 'Status', message } });
  });

  it("passes berth's user, env and workingDir to the runtime's ExecRequest, with or without a TTY", async () => {
    const f = await startAgent({ firstResizeWaitMs: 10 });
    await f.run('web', 'sleep 3600');
    const q = 'command=sh&command=-c&command=echo%20%24A%20%24B&user=nobody%3Anogroup&env=A%3D1&env=B%3Dx%3Dy%20z&env=EMPTY%3D&workingDir=%2Ftmp&stdout=true';
    const plain = await execWs(f.base, q);
    expect(plain.status).toEqual({ metadata: {}, status: 'Success' });
    const env = [
      { name: 'A', value: '1' },
      { name: 'B', value: 'x=y z' },
      { name: 'EMPTY', value: '' },
    ];
    expect(f.execs[0]?.req).toEqual({ cmd: ['sh', '-c', 'echo $A $B'], tty: false, stdin: false, user: 'nobody:nogroup', env, workingDir: '/tmp' });
    await execWs(f.base, `${q}&tty=true`);
    expect(f.execs[1]?.req).toEqual({ cmd: ['sh', '-c', 'echo $A $B'], tty: true, stdin: false, user: 'nobody:nogroup', env, workingDir: '/tmp' });
    // without them, the request has none (the container's own user, env and directory)
    await execWs(f.base, 'command=true&stdout=true');
    expect(f.execs[2]?.req).toEqual({ cmd: ['true'], tty: false, stdin: false });
  });

  it("passes the runtime's refusal of an unknown user on the error channel", async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const realExec = f.runtime.exec;
    f.runtime.exec = async (id, req, opts) => {
      if (req.user === 'ghost') throw new RuntimeError('InvalidArgument', 'unable to find user ghost: no matching entries in passwd file');
      return realExec(id, req, opts);
    };
    const r = await execWs(f.base, 'command=id&user=ghost&stdout=true');
    expect(r.status).toEqual({ metadata: {}, status: 'Failure', reason: 'BadRequest', code: 400, message: 'unable to find user ghost: no matching entries in passwd file' });
  });

  it.each([
    { query: 'command=true&stdout=true&user=a&user=b', message: 'user may be given only once' },
    { query: 'command=true&stdout=true&user=', message: 'user must not be empty' },
    { query: 'command=true&stdout=true&workingDir=tmp', message: 'workingDir must be an absolute path, got "tmp"' },
    { query: 'command=true&stdout=true&workingDir=%2Fa&workingDir=%2Fb', message: 'workingDir may be given only once' },
    { query: 'command=true&stdout=true&env=NOVALUE', message: 'env must be NAME=VALUE, got "NOVALUE"' },
    { query: 'command=true&stdout=true&env=%3D1', message: 'env must be NAME=VALUE, got "=1"' },
  ])('refuses bad exec options before upgrading: $message', async ({ query, message }) => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await expect(execWs(f.base, query)).rejects.toMatchObject({ status: 400, body: { kind: 'Status', code: 400, message } });
    expect(f.execs).toHaveLength(0);
  });

  it('refuses a client that offers only old channel protocols', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await expect(execWs(f.base, 'command=true&stdout=true', { protocols: ['channel.k8s.io'] })).rejects.toMatchObject({ status: 400 });
  });

});

describe('stream server: attach', () => {
  it('streams the main process until it exits, then reports Success', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 0.3; echo one; echo two >&2; exit 3');
    const r = await execWs(f.base, 'stdout=true&stderr=true', { verb: 'attach' });
    expect(r).toEqual({ protocol: 'v5.channel.k8s.io', stdout: 'one\n', stderr: 'two\n', status: { metadata: {}, status: 'Success' } });
  });

  it('sends stdin and resizes to a TTY container, and only detaches when the client goes', async () => {
    const f = await startAgent();
    const id = await f.run('web', 'sleep 3600', { tty: true, stdin: true });
    let seen = '';
    await execWs(f.base, 'stdin=true&stdout=true&tty=true', {
      verb: 'attach',
      onOpen: (ws) => {
        ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"width":100,"height":20}')]));
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello\n')]));
        ws.on('message', (d: Buffer) => {
          seen += d.subarray(1).toString();
          if (seen === 'hello\r\n') ws.close();
        });
      },
    });
    expect(seen).toBe('hello\r\n');
    expect(f.runtime.containers.get(id)?.stdinText).toBe('hello\n');
    expect(f.attaches[0]?.resizes).toEqual([[100, 20]]);
    expect(await f.attaches[0]!.streams.ended).toBeUndefined();
    expect(f.runtime.containers.get(id)?.state).toBe('running');
  });

  it.each([
    { name: 'refuses stdin for a container created without it', query: 'stdin=true&stdout=true', code: 400, message: 'cannot attach to stdin: the container was created without stdin (set stdin: true)' },
    { name: 'refuses to attach to an exited container', query: 'stdout=true', code: 409, message: 'cannot attach to an exited container', exited: true },
  ])('$name with a Status on the error channel', async ({ query, code, message, exited }) => {
    const f = await startAgent();
    const id = await f.run('web', 'sleep 3600');
    if (exited) f.runtime.simulateExit(id, 0);
    const r = await execWs(f.base, query, { verb: 'attach' });
    expect(r.status).toMatchObject({ status: 'Failure', code, message });
  });

  it('refuses an attach without any stream before upgrading', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await expect(execWs(f.base, 'tty=true', { verb: 'attach' })).rejects.toMatchObject({ status: 400, body: { message: 'you must specify at least 1 of stdin, stdout, stderr' } });
  });
});

describe('parseTerminalSize', () => {
  it.each([
    { name: 'client-go keys', json: '{"Width":80,"Height":24}', want: { width: 80, height: 24 } },
    { name: 'client-node keys', json: '{"height":24,"width":80}', want: { width: 80, height: 24 } },
    { name: 'a zero size', json: '{"width":0,"height":24}', want: undefined },
    { name: 'a fraction', json: '{"width":80.5,"height":24}', want: undefined },
    { name: 'more than 16 bits', json: '{"width":70000,"height":24}', want: undefined },
    { name: 'not JSON', json: 'eighty by twenty-four', want: undefined },
    { name: 'a JSON array', json: '[80,24]', want: undefined },
  ])('reads $name', ({ json, want }) => {
    expect(parseTerminalSize(Buffer.from(json))).toEqual(want);
  });
});

describe('toRfc3339NanoUtc', () => {
  it.each([
    { in: '2024-05-01T10:00:00.12Z', out: '2024-05-01T10:00:00.120000000Z' },
    { in: '2024-05-01T12:00:00.123456789+02:00', out: '2024-05-01T10:00:00.123456789Z' },
    { in: '2024-05-01T10:00:00Z', out: '2024-05-01T10:00:00.000000000Z' },
    { in: 'garbage', out: 'garbage' },
  ])('formats $in as $out', ({ in: ts, out }) => {
    expect(toRfc3339NanoUtc(ts)).toBe(out);
  });
});

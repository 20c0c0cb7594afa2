import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { ContainerId, ExecRequest, ExecStreams } from '../../runtime/cri/types.ts';
import { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';
import { createStreamServer, NAME_LABEL, NAMESPACE_LABEL, toRfc3339NanoUtc } from './stream-server.ts';

const TOKEN = 'agent-secret';

interface Fixture {
  readonly runtime: FakeRuntimeService;
  readonly base: string;
  /** Runtime exec sessions opened through the server, for checking resize and kill. */
  readonly execs: { req: ExecRequest; streams: ExecStreams; resizes: [number, number][] }[];
  run(name: string, script: string): Promise<ContainerId>;
}

async function startAgent(): Promise<Fixture> {
  const runtime = new FakeRuntimeService();
  const execs: Fixture['execs'] = [];
  const realExec = runtime.exec.bind(runtime);
  runtime.exec = async (id, req, opts) => {
    const streams = await realExec(id, req, opts);
    const rec = { req, streams, resizes: [] as [number, number][] };
    execs.push(rec);
    return { ...streams, exit: streams.exit, resize: (w: number, h: number) => void rec.resizes.push([w, h]) };
  };
  const agent = createStreamServer({ runtime, token: TOKEN });
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  onTestFinished(() => agent.close());
  const base = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
  return {
    runtime,
    base,
    execs,
    async run(name, script) {
      const id = await runtime.createContainer({
        name: `default_${name}_${Date.now()}`,
        image: 'busybox',
        command: ['sh', '-c', script],
        labels: { [NAMESPACE_LABEL]: 'default', [NAME_LABEL]: name },
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
  opts: { protocols?: string[]; stdin?: string; onOpen?: (ws: WebSocket) => void; token?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/containers/default/web/exec?${query}`, opts.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
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

  it('passes resize messages to the runtime', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const r = execWs(f.base, 'command=cat&stdin=true&stdout=true', {
      onOpen: (ws) => {
        ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"Width":120,"Height":40}')]));
        setTimeout(() => ws.send(Buffer.from([255, 0])), 50);
      },
    });
    expect((await r).status.status).toBe('Success');
    expect(f.execs[0]?.resizes).toEqual([[120, 40]]);
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

  it('refuses a client that offers only old channel protocols', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    await expect(execWs(f.base, 'command=true&stdout=true', { protocols: ['channel.k8s.io'] })).rejects.toMatchObject({ status: 400 });
  });

  it('answers attach with 501 until the runtime can attach', async () => {
    const f = await startAgent();
    await f.run('web', 'sleep 3600');
    const ws = new WebSocket(`${f.base.replace('http', 'ws')}/containers/default/web/attach?stdout=true`, ['v5.channel.k8s.io'], {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(501);
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

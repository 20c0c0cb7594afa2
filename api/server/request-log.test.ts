import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { bearerAuth } from './auth.ts';
import { requestLogger } from './request-log.ts';

const TOKEN = 'request-log-test-token';

/**
 * Serves requestLogger → bearerAuth → a stand-in router (sets requestInfo from
 * the `x-test-verb` header) → handlers, logging into `lines`.
 */
async function startServer(): Promise<{ base: string; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const app = express();
  app.use(requestLogger(pino({ level: 'info' }, stream)));
  app.use(bearerAuth({ tokens: new Map([[TOKEN, { user: 'admin', groups: [] }]]), anonymousPaths: ['/healthz'] }));
  app.use((req, res, next) => {
    const verb = req.get('x-test-verb');
    if (verb) res.locals.requestInfo = { verb, group: 'berth.dev', resource: 'containers', subresource: '', scope: 'namespace' };
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.send('ok');
  });
  app.get('/boom', (_req, res) => {
    res.status(503).send('no');
  });
  app.get('/apis/berth.dev/v1/namespaces/default/containers', (req, res) => {
    if (req.query.watch !== '1') {
      res.json({ items: [] });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"type":"ADDED"}\n');
    if (req.query.end === '1') res.end();
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
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('requestLogger', () => {
  it('logs one info line per request with verb, method, path, user, code, duration and user agent', async () => {
    const { base, lines } = await startServer();
    const res = await fetch(`${base}/apis/berth.dev/v1/namespaces/default/containers?limit=5&labelSelector=app%3Dweb`, {
      headers: { ...auth, 'x-test-verb': 'list', 'user-agent': 'kubectl/v1.32.4' },
    });
    await res.text();

    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request',
      verb: 'list',
      method: 'GET',
      path: '/apis/berth.dev/v1/namespaces/default/containers',
      query: 'limit=5&labelSelector=app%3Dweb',
      user: 'admin',
      code: 200,
      userAgent: 'kubectl/v1.32.4',
      remoteAddress: '127.0.0.1',
    });
    expect(lines[0]!.durationMs).toBeTypeOf('number');
    expect(lines[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(lines[0]).not.toHaveProperty('watch');
    expect(lines[0]).not.toHaveProperty('aborted');
    expect(JSON.stringify(lines[0])).not.toContain(TOKEN);
  });

  it.each([
    { name: 'a 5xx at error level', path: '/boom', headers: auth, want: { level: 50, code: 503, user: 'admin', verb: 'get' } },
    { name: 'a 401 at info level without a user', path: '/boom', headers: {}, want: { level: 30, code: 401 } },
    { name: 'an anonymous request as system:anonymous', path: '/healthz', headers: {}, want: { level: 30, code: 200, user: 'system:anonymous' } },
  ])('logs $name', async ({ path, headers, want }) => {
    const { base, lines } = await startServer();
    await (await fetch(base + path, { headers })).text();
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({ method: 'GET', path, ...want });
    if (!('user' in want)) expect(lines[0]).not.toHaveProperty('user');
  });

  it('redacts secret-looking query values and keeps the rest', async () => {
    const { base, lines } = await startServer();
    await (await fetch(`${base}/healthz?access_token=abc&verbose=1&password=p&apiKey=k`)).text();
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({
      path: '/healthz',
      query: 'access_token=[Redacted]&verbose=1&password=[Redacted]&apiKey=[Redacted]',
    });
  });

  it('logs a watch once, when it ends, marked watch', async () => {
    const { base, lines } = await startServer();
    const res = await fetch(`${base}/apis/berth.dev/v1/namespaces/default/containers?watch=1&end=1`, {
      headers: { ...auth, 'x-test-verb': 'watch' },
    });
    expect(await res.text()).toContain('ADDED');
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({ verb: 'watch', watch: true, code: 200, user: 'admin' });
    expect(lines[0]).not.toHaveProperty('aborted');
  });

  it('logs a watch the client abandons only after it goes away, marked aborted', async () => {
    const { base, lines } = await startServer();
    const ctl = new AbortController();
    const res = await fetch(`${base}/apis/berth.dev/v1/namespaces/default/containers?watch=1`, {
      headers: { ...auth, 'x-test-verb': 'watch' },
      signal: ctl.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    expect(lines).toEqual([]); // still open: nothing logged yet

    ctl.abort();
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toMatchObject({ verb: 'watch', watch: true, code: 200, aborted: true, level: 30 });
  });
});

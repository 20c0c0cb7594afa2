import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PUBLIC_INFO_PATHS, bearerAuth, userOf } from './auth.ts';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const VIEWER_TOKEN = 'viewer-token-fedcba9876543210';

const UNAUTHORIZED = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
};

/** Serves `bearerAuth` in front of a handler that echoes `res.locals.user`. */
async function startServer(): Promise<string> {
  const app = express();
  app.use(
    bearerAuth({
      tokens: new Map([
        [ADMIN_TOKEN, { user: 'admin', groups: ['system:masters'] }],
        [VIEWER_TOKEN, { user: 'viewer', groups: [] }],
      ]),
      anonymousPaths: PUBLIC_INFO_PATHS,
    }),
  );
  app.use((_req, res) => {
    res.json({ user: userOf(res) });
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
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('bearerAuth', () => {
  it.each([
    { name: 'no Authorization header', path: '/api/v1/namespaces', authorization: undefined },
    { name: 'an unknown token', path: '/api/v1/namespaces', authorization: 'Bearer wrong' },
    { name: 'a known token with one character changed', path: '/api', authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}X` },
    { name: 'a prefix of a known token', path: '/api', authorization: `Bearer ${ADMIN_TOKEN.slice(0, 8)}` },
    { name: 'the Basic scheme', path: '/api', authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` },
    { name: 'a bearer scheme with no token', path: '/api', authorization: 'Bearer ' },
    { name: 'a bare token without a scheme', path: '/api', authorization: ADMIN_TOKEN },
    { name: 'a bad token on an anonymous path', path: '/healthz', authorization: 'Bearer wrong' },
    { name: 'no token on a path that only starts like an anonymous one', path: '/healthzz', authorization: undefined },
  ])('answers 401 with a Status for $name', async ({ path, authorization }) => {
    const base = await startServer();
    const res = await fetch(base + path, { headers: authorization === undefined ? {} : { authorization } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(UNAUTHORIZED);
  });

  it.each([
    { name: 'the admin token', authorization: `Bearer ${ADMIN_TOKEN}`, want: { name: 'admin', groups: ['system:masters', 'system:authenticated'] } },
    { name: 'another user token', authorization: `Bearer ${VIEWER_TOKEN}`, want: { name: 'viewer', groups: ['system:authenticated'] } },
    { name: 'a lower-case scheme', authorization: `bearer ${ADMIN_TOKEN}`, want: { name: 'admin', groups: ['system:masters', 'system:authenticated'] } },
  ])('passes $name and sets res.locals.user', async ({ authorization, want }) => {
    const base = await startServer();
    const res = await fetch(`${base}/apis/berth.dev/v1/containers?limit=1`, { headers: { authorization } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user: want });
  });

  it.each(['/healthz', '/livez', '/readyz', '/version', '/healthz/ping', '/livez?verbose'])(
    'lets %s through without a token as system:anonymous',
    async (path) => {
      const base = await startServer();
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ user: { name: 'system:anonymous', groups: ['system:unauthenticated'] } });
    },
  );

  it.each(['/healthz/../api/v1/secrets', '/healthz/%2e%2e/api', '/healthz/%2E%2E%2Fapi', '/healthz//x', '/healthz/./x'])(
    'does not treat %s as anonymous (a normalising router could route it elsewhere)',
    async (rawPath) => {
      const base = await startServer();
      // fetch() would normalise the path; send it as is
      const status = await new Promise<number | undefined>((resolve, reject) => {
        get(`${base}/`, { path: rawPath }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on('error', reject);
      });
      expect(status).toBe(401);
    },
  );

  it('authenticates a valid token on an anonymous path', async () => {
    const base = await startServer();
    const res = await fetch(`${base}/version`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(await res.json()).toEqual({ user: { name: 'viewer', groups: ['system:authenticated'] } });
  });

  it('serves nothing anonymously when anonymousPaths is not given', async () => {
    const app = express();
    app.use(bearerAuth({ tokens: new Map() }));
    app.use((_req, res) => {
      res.send('reached');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`);
    expect(res.status).toBe(401);
  });
});

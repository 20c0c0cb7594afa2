/**
 * `nodes/NAME/registrylogin` (`docker login`'s check) through the API server to a node
 * agent's stream server, whose image service here is a stand-in that knows one user:
 * HTTPS client → API server → agent → `checkRegistryLogin`. The check against real
 * registries is in runtime/distribution/auth.test.ts, the CLI's in test/e2e/cli-ship.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStreamsFixture, type StreamsFixture } from '../../test/harness/streams-fixture.ts';
import { RuntimeError } from '../../runtime/cri/errors.ts';
import type { AuthConfig } from '../../runtime/cri/types.ts';

const NODES = '/apis/berth.dev/v1/nodes';
const LOGIN = `${NODES}/node-1/registrylogin`;
const checked: { registry: string; auth: AuthConfig }[] = [];

let fx: StreamsFixture;
beforeAll(async () => {
  fx = await startStreamsFixture({
    images: {
      exportImages: async () => {},
      checkRegistryLogin: async (registry, auth) => {
        checked.push({ registry, auth });
        if (registry === 'down.example:5000') throw new RuntimeError('Unavailable', `login to ${registry}: cannot reach registry ${registry}: ECONNREFUSED`);
        if (auth.password !== 'right') throw new RuntimeError('FailedPrecondition', `login to ${registry}: unauthorized: registry ${registry} answered HTTP 401`);
      },
    },
  });
  for (const name of ['node-1', 'node-2']) expect((await fx.request('POST', NODES, { apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name } })).status).toBe(201);
});
afterAll(async () => {
  await fx?.close();
});

describe('the registrylogin subresource of a Node', () => {
  it('has the node check the credentials, and answers Success when the registry takes them', async () => {
    checked.length = 0;
    const res = await fx.request('POST', LOGIN, { serveraddress: '127.0.0.1:5000', username: 'me', password: 'right' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Success', message: 'Login Succeeded' });
    expect(checked).toEqual([{ registry: '127.0.0.1:5000', auth: { username: 'me', password: 'right' } }]);
  });

  it.each([
    { name: 'refused credentials: 409 naming the registry', body: { serveraddress: 'r.example', username: 'me', password: 'wrong' }, status: 409, message: /^login to r\.example: unauthorized/ },
    { name: 'an unreachable registry: 503', body: { serveraddress: 'down.example:5000', username: 'me', password: 'right' }, status: 503, message: /cannot reach registry down\.example:5000/ },
    { name: 'a missing password: 400 naming the field', body: { serveraddress: 'r.example', username: 'me' }, status: 400, message: /^password: Required value/ },
    { name: 'a body that is no object: 400', body: ['r.example'], status: 400, message: /must be a JSON object/ },
  ])('answers $name', async ({ body, status, message }) => {
    const res = await fx.request('POST', LOGIN, body);
    expect(res.status, res.text).toBe(status);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure' });
    expect(res.body.message).toMatch(message);
  });

  it('refuses malformed and huge bodies at the API server, an unknown node, a node without an agent, and other methods', async () => {
    const notJson = await fx.request('POST', LOGIN, undefined);
    expect(notJson.status, notJson.text).toBe(400);
    const huge = await fx.request('POST', LOGIN, { serveraddress: 'r.example', username: 'me', password: 'x'.repeat(20_000) });
    expect(huge.status, huge.text).toBe(413);
    const unknown = await fx.request('POST', `${NODES}/node-9/registrylogin`, { serveraddress: 'r.example', username: 'me', password: 'right' });
    expect(unknown.status, unknown.text).toBe(404);
    expect(unknown.body.message).toMatch(/node-9/);
    const noAgent = await fx.request('POST', `${NODES}/node-2/registrylogin`, { serveraddress: 'r.example', username: 'me', password: 'right' });
    expect(noAgent.status, noAgent.text).toBe(503);
    expect(noAgent.body.message).toMatch(/node node-2 has no stream endpoint/);
    expect((await fx.request('GET', LOGIN)).status).toBe(405);
  });

  it('is listed in discovery as a subresource of nodes', async () => {
    const list = await fx.request('GET', '/apis/berth.dev/v1');
    expect(list.body.resources).toContainEqual(expect.objectContaining({ name: 'nodes/registrylogin', verbs: ['create'] }));
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { KubeTransport } from './transport.ts';

/** An HTTP server on 127.0.0.1:0 that answers `/ok` at once and never answers anything else. */
async function hangingServer(): Promise<KubeTransport> {
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  const { port } = server.address() as AddressInfo;
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const transport = new KubeTransport(kc);
  onTestFinished(async () => {
    transport.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return transport;
}

describe('KubeTransport', () => {
  it('rejects with TimeoutError when the answer takes longer than timeoutMs', async () => {
    const t = await hangingServer();
    await expect(t.request('GET', '/slow', { timeoutMs: 50 })).rejects.toMatchObject({ name: 'TimeoutError', message: 'GET /slow: no complete answer within 50 ms' });
  });

  it('rejects with AbortError, the reason as cause, when the caller aborts during or before the request', async () => {
    const t = await hangingServer();
    const ac = new AbortController();
    const pending = t.request('GET', '/slow', { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('shutting down')), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError', cause: new Error('shutting down') });
    await expect(t.request('GET', '/ok', { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('leaves no listener on the caller\'s signal once a request is answered', async () => {
    const t = await hangingServer();
    const ac = new AbortController();
    let listeners = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (listeners++, add(...a))) as typeof add;
    ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (listeners--, remove(...a))) as typeof remove;
    for (let i = 0; i < 20; i++) await expect(t.request('GET', '/ok', { signal: ac.signal })).resolves.toEqual({ ok: true });
    expect(listeners).toBe(0);
  });
});

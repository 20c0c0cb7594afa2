import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { KubeTransport } from './transport.ts';

/** An HTTP server on 127.0.0.1:0 that answers `/ok` at once and never answers anything else. */
async function hangingServer(): Promise<KubeTransport> {
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    else if (req.url?.startsWith('/w/gone')) res.writeHead(410, { 'content-type': 'application/json' }).end('{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","message":"too old resource version: 1","code":410}');
    else if (req.url?.startsWith('/w/three')) {
      // Two events in one chunk, the third split across chunks, then the end of the stream.
      const ev = (n: number) => JSON.stringify({ type: 'ADDED', object: { metadata: { name: `o${n}` } } });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${ev(1)}\n${ev(2)}\n${ev(3).slice(0, 10)}`);
      setTimeout(() => res.end(`${ev(3).slice(10)}\n`), 20);
    } else if (req.url?.startsWith('/w/open')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: { q: req.url } })}\n`);
    }
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

  it('watches: events in order across chunk boundaries with the query sent, done null when the server ends the stream', async () => {
    const t = await hangingServer();
    const seen: string[] = [];
    const w = await t.watch('/w/three', { resourceVersion: '5', labelSelector: undefined }, (e) => seen.push(`${e.type} ${e.object.metadata.name}`));
    expect(await w.done).toBeNull();
    expect(seen).toEqual(['ADDED o1', 'ADDED o2', 'ADDED o3']);
  });

  it('watches: a refused watch settles done with the Status as ApiStatusError; abort settles it with null', async () => {
    const t = await hangingServer();
    const refused = await t.watch('/w/gone', {}, () => {});
    await expect(refused.done).resolves.toMatchObject({ code: 410, reason: 'Expired' });
    const events: unknown[] = [];
    const open = await t.watch('/w/open', { resourceVersion: '7' }, (e) => events.push(e.object));
    await vi.waitFor(() => expect(events).toEqual([{ q: '/w/open?resourceVersion=7&watch=true' }]));
    open.abort();
    expect(await open.done).toBeNull();
  });

  it('goes over the local socket when given one: requests, raw streams and watches in plain HTTP with the same credentials', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkt-'));
    const socket = join(dir, 'api.sock');
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers.host}`);
      if (req.url?.startsWith('/w')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(`${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n`);
      }
      if (req.url === '/missing') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","message":"nope","code":404}');
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ body })));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const kc = new KubeConfig();
    // The URL names a TLS server nobody serves: every byte must go to the socket.
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u', token: 'tok' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const t = new KubeTransport(kc, socket);
    onTestFinished(async () => {
      t.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });
    expect(t.via).toBe(`unix:${socket}`);
    await expect(t.request('POST', '/r', { body: { a: 1 } })).resolves.toEqual({ body: '{"a":1}' });
    const res = await t.stream('PUT', '/s', { body: Buffer.from('raw'), headers: { 'content-type': 'application/octet-stream' } });
    let text = '';
    for await (const c of res) text += String(c);
    expect(JSON.parse(text)).toEqual({ body: 'raw' });
    await expect(t.stream('GET', '/missing')).rejects.toMatchObject({ code: 404, reason: 'NotFound' });
    const events: unknown[] = [];
    const w = await t.watch('/w', {}, (e) => events.push(e.object));
    expect(await w.done).toBeNull();
    expect(events).toEqual([{ n: 1 }]);
    expect(seen).toEqual([
      'POST /r Bearer tok 127.0.0.1:1',
      'PUT /s Bearer tok 127.0.0.1:1',
      'GET /missing Bearer tok 127.0.0.1:1',
      'GET /w?watch=true Bearer tok 127.0.0.1:1',
    ]);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { requestNode } from './node-proxy.ts';

describe('requestNode', () => {
  it("dials a node's local socket in plain HTTP when the endpoint has one, with the bearer token, method and headers", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bnp-'));
    const socket = join(dir, 'agent.sock');
    const server = http.createServer((req, res) => res.end(JSON.stringify({ method: req.method, url: req.url, auth: req.headers.authorization, x: req.headers['x-test'] })));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    onTestFinished(async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });
    // The URL is a TLS address nobody serves: the request must take the socket.
    const req = requestNode({ url: 'https://127.0.0.1:1/base', token: 'agent-token', socketPath: socket }, '/containers/ns/c/kill?signal=HUP', { 'x-test': 'yes' }, 'POST');
    const body = await new Promise<string>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body)).toEqual({ method: 'POST', url: '/base/containers/ns/c/kill?signal=HUP', auth: 'Bearer agent-token', x: 'yes' });
  });
});

/**
 * The small plain-HTTP listener of `berth controllers` and `berth agent`: `/metrics`
 * (Prometheus text) and `/healthz`. The all-in-one server serves both on its HTTPS port instead.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseListen } from './listen.ts';

export interface MetricsListenerOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly listen: string;
  readonly registry: Registry;
  /** `/healthz` answers 200 `ok` while this returns true, else 503. */
  readonly healthy: () => boolean;
}

export interface MetricsListener {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts serving `/metrics` and `/healthz`; resolves once listening. */
export async function startMetricsListener(opts: MetricsListenerOptions): Promise<MetricsListener> {
  const { host, port } = parseListen(opts.listen, '--metrics-listen');
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      opts.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${String(err)}\n`),
      );
    } else if (path === '/healthz' || path === '/readyz' || path === '/livez') {
      const ok = opts.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'not ready');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

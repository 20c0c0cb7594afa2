/**
 * A loopback HTTP proxy in front of a test registry that records requests and
 * misbehaves on demand: cut the first response of each blob after some bytes
 * (a dropped connection), strip `Range` headers (a registry without range
 * support), delay blob responses (to observe download concurrency).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RegistryProxyOptions {
  /** `host:port` of the registry behind. */
  readonly upstream: string;
  /** Destroy the connection after this many body bytes of the first GET of each blob. */
  readonly cutBlobAfterBytes?: number;
  /** Remove `Range` from requests, so the registry answers 200 with the whole blob. */
  readonly stripRange?: boolean;
  /** Hold each blob GET this long before forwarding it. */
  readonly delayBlobMs?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly range?: string;
  status?: number;
}

export interface RegistryProxy {
  /** `127.0.0.1:<port>`. */
  readonly domain: string;
  readonly requests: RecordedRequest[];
  /** Most blob GETs in flight at once. */
  readonly maxBlobGetsInFlight: number;
  close(): Promise<void>;
}

const isBlobGet = (req: http.IncomingMessage): boolean => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');

/** Starts the proxy on 127.0.0.1, port 0. */
export async function startRegistryProxy(opts: RegistryProxyOptions): Promise<RegistryProxy> {
  const requests: RecordedRequest[] = [];
  const cut = new Set<string>();
  let inFlight = 0;
  let maxInFlight = 0;
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', ...(req.headers.range && { range: req.headers.range }) };
    requests.push(rec);
    const blob = isBlobGet(req);
    if (blob) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.once('close', () => inFlight--);
    }
    const headers = { ...req.headers };
    if (opts.stripRange) delete headers.range;
    const forward = (): void => {
      const up = http.request({ host: opts.upstream.split(':')[0], port: Number(opts.upstream.split(':')[1]), method: req.method, path: req.url, headers, agent }, (ur) => {
        rec.status = ur.statusCode;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        const key = req.url ?? '';
        if (blob && opts.cutBlobAfterBytes !== undefined && ur.statusCode === 200 && !cut.has(key)) {
          cut.add(key);
          let sent = 0;
          ur.on('data', (c: Buffer) => {
            if (sent >= opts.cutBlobAfterBytes!) return;
            const part = c.subarray(0, opts.cutBlobAfterBytes! - sent);
            sent += part.length;
            const last = sent >= opts.cutBlobAfterBytes!;
            if (last) ur.destroy();
            // After the last part is flushed, drop the connection mid-body.
            res.write(part, () => {
              if (last) res.destroy();
            });
          });
          ur.on('end', () => res.end());
          return;
        }
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (blob && opts.delayBlobMs) setTimeout(forward, opts.delayBlobMs);
    else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    domain: `127.0.0.1:${port}`,
    requests,
    get maxBlobGetsInFlight() {
      return maxInFlight;
    },
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

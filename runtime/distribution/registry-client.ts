/**
 * An HTTP client for one registry (OCI distribution API `/v2/`): TLS per the
 * registry configuration, keep-alive connections, authentication on challenge
 * (`auth.ts`), redirects for blob downloads (without credentials to other
 * hosts), and errors as `RuntimeError`.
 */
import { once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { RuntimeError } from '../cri/errors.ts';
import type { AuthConfig, CallOptions, RegistryConfig } from '../cri/types.ts';
import { RegistryAuth } from './auth.ts';
import { readErrorBody, responseError, transportError } from './registry-errors.ts';
import { registryEndpoint, type RegistryEndpoint } from './registry-host.ts';

export interface RegistryClientOptions {
  /** A reference's domain (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string;
  readonly registry?: RegistryConfig;
  readonly credentials?: AuthConfig;
  /** Parallel connections to the registry. Default 8. */
  readonly maxSockets?: number;
  /** A request whose connection is idle this long fails. Default 60 s. */
  readonly idleTimeoutMs?: number;
  readonly userAgent?: string;
}

/** A request body: bytes, or a factory of a fresh stream (called again if the request is retried). */
export type RequestBody = Buffer | (() => AsyncIterable<Buffer>);

export interface RegistryRequest extends CallOptions {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** A path (`/v2/…`, with query) or an absolute URL (an upload `Location`). */
  readonly path: string;
  /** Scopes the request needs (`repository:a/b:pull`). */
  readonly scopes: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** Follow 301/302/303/307/308 (GET/HEAD only). */
  readonly followRedirects?: boolean;
  /** Names the operation in errors (`pull 127.0.0.1:5000/app:1`). */
  readonly what: string;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** See the module comment. One per registry and credentials; `close()` when done. */
export class RegistryClient {
  readonly endpoint: RegistryEndpoint;
  private readonly auth: RegistryAuth;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly idleTimeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: RegistryClientOptions) {
    this.endpoint = registryEndpoint(opts.domain, opts.registry);
    const maxSockets = opts.maxSockets ?? 8;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    const ca = opts.registry?.caBundlePem ? [...rootCertificates, opts.registry.caBundlePem] : undefined;
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets, ...(ca && { ca }) });
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.userAgent = opts.userAgent ?? 'berth';
    this.auth = new RegistryAuth({
      host: this.endpoint.host,
      ...(opts.credentials && { credentials: opts.credentials }),
      fetchToken: async (url, init) => {
        const res = await this.send(url, init.method, init.headers, init.body === undefined ? undefined : Buffer.from(init.body));
        return { status: res.statusCode ?? 0, body: await readErrorBody(res) };
      },
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** An absolute URL for a path or `Location` of this registry. */
  url(pathOrUrl: string): URL {
    return new URL(pathOrUrl, `${this.endpoint.baseUrl}/`);
  }

  /**
   * Sends a request, authorising it (and retrying once after a 401
   * challenge). Resolves with the response whatever its status (the caller
   * reads or discards the body); rejects `Unavailable` when the registry cannot
   * be reached, `FailedPrecondition` when its token service refuses the credentials.
   */
  async request(req: RegistryRequest): Promise<IncomingMessage> {
    const { what } = req;
    try {
      for (let attempt = 0; ; attempt++) {
        const authorization = await this.auth.authorization(req.scopes);
        const headers: Record<string, string> = { ...req.headers };
        if (authorization) headers.authorization = authorization;
        let url = this.url(req.path);
        let res = await this.send(url, req.method, headers, req.body, req.signal);
        for (let hops = 0; req.followRedirects && REDIRECTS.has(res.statusCode ?? 0) && res.headers.location; hops++) {
          res.resume();
          if (hops === MAX_REDIRECTS) return res;
          const next = new URL(res.headers.location, url);
          // Blob redirects go to storage hosts (S3, a CDN) that must not see our credentials.
          if (next.host !== url.host || next.protocol !== url.protocol) delete headers.authorization;
          url = next;
          res = await this.send(url, req.method, headers, undefined, req.signal);
        }
        if (res.statusCode === 401 && attempt === 0) {
          const challenge = res.headers['www-authenticate'];
          if (await this.auth.onChallenge(Array.isArray(challenge) ? challenge.join(', ') : challenge, req.scopes, authorization)) {
            res.resume();
            continue;
          }
        }
        return res;
      }
    } catch (err) {
      throw transportError(err, what, this.endpoint.host);
    }
  }

  /** `request`, then rejects with the registry's error unless the status is one of `ok` (body consumed). */
  async expect(req: RegistryRequest, ok: readonly number[]): Promise<IncomingMessage> {
    const res = await this.request(req);
    if (ok.includes(res.statusCode ?? 0)) return res;
    throw await responseError(res, req.what, this.endpoint.host);
  }

  /** Reads a whole response body, rejecting `InvalidArgument` past `maxBytes`. */
  async readBody(res: IncomingMessage, maxBytes: number, what: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > maxBytes) {
          res.destroy();
          throw new RuntimeError('InvalidArgument', `${what}: registry ${this.endpoint.host} sent more than ${maxBytes} bytes`);
        }
        chunks.push(c);
      }
    } catch (err) {
      throw transportError(err, what, this.endpoint.host);
    }
    return Buffer.concat(chunks);
  }

  private async send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: RequestBody | undefined,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const isHttps = url.protocol === 'https:';
    const h: Record<string, string> = { 'user-agent': this.userAgent, ...headers };
    if (Buffer.isBuffer(body)) h['content-length'] = String(body.length);
    else if (body === undefined && (method === 'PUT' || method === 'POST' || method === 'PATCH')) h['content-length'] = '0';
    const req = (isHttps ? https : http).request(url, {
      method,
      headers: h,
      agent: isHttps ? this.httpsAgent : this.httpAgent,
      ...(signal && { signal }),
    });
    req.setTimeout(this.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${this.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    const response = once(req, 'response') as Promise<[IncomingMessage]>;
    // If sending the body fails first, that error is the one reported.
    response.catch(() => undefined);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else await pipeline(body(), req);
    const [res] = await response;
    res.setTimeout(this.idleTimeoutMs, () => res.destroy(Object.assign(new Error(`no data for ${this.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    return res;
  }
}

/** The first value of a response header. */
export const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * HTTP to the API server as a kubeconfig describes it: server URL, CA, client
 * certificates and bearer tokens all come from `@kubernetes/client-node`'s
 * `KubeConfig.applyToHTTPSOptions`, requests go over one keep-alive agent, and
 * watches use client-node's `Watch`.
 */
import http from 'node:http';
import https from 'node:https';
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { ApiStatusError } from '../api-status-error.ts';

export interface TransportRequest {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Gives up after this long. Default 30 s. */
  readonly timeoutMs?: number;
}

/** One watch stream: `done` settles when it ends (null: the server ended it cleanly). */
export interface WatchStream {
  readonly done: Promise<Error | null>;
  abort(): void;
}

/** A raw watch event as it comes off the wire. */
export interface RawWatchEvent {
  readonly type: string;
  readonly object: any;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Sends requests and opens watches against the kubeconfig's current cluster. */
export class KubeTransport {
  private agent: http.Agent | undefined;
  private readonly server: URL;
  private readonly watcher: Watch;

  constructor(readonly kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new TypeError('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    if (this.server.protocol === 'http:' && !cluster.skipTLSVerify)
      throw new TypeError('kubeconfig: http:// servers need skipTLSVerify: true');
    this.watcher = new Watch(kubeConfig);
  }

  /** Sends one request; resolves with the parsed JSON body, rejects with `ApiStatusError` on HTTP ≥ 400. */
  async request<T>(method: string, path: string, req: TransportRequest = {}): Promise<T> {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const agent = this.agentFor(opts);
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body));
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const what = `${method} ${url.pathname}`;
    const mod = url.protocol === 'http:' ? http : https;
    const callerSignal = req.signal;
    // A timer and one listener, not AbortSignal.timeout + AbortSignal.any: those cost more
    // than the rest of a request's client side and keep garbage alive until a full GC.
    return new Promise<T>((resolve, reject) => {
      if (callerSignal?.aborted) return reject(abortError(callerSignal.reason));
      const r = mod.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          settle();
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON: keep the text */
          }
          const code = res.statusCode ?? 0;
          if (code >= 400 || code < 200) reject(ApiStatusError.fromResponse(code, body, what));
          else resolve(body as T);
        });
      });
      const onAbort = () => r.destroy(abortError(callerSignal?.reason));
      const timer = setTimeout(() => r.destroy(timeoutError(`${what}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      callerSignal?.addEventListener('abort', onAbort, { once: true });
      function settle(): void {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onAbort);
      }
      function fail(err: Error): void {
        settle();
        reject(err);
      }
      r.on('error', fail);
      r.end(payload);
    });
  }

  /**
   * Opens a watch with client-node's `Watch`. Resolves once the server has answered
   * (`done` already settled if it refused); `onEvent` gets each event in order.
   */
  async watch(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: RawWatchEvent) => void): Promise<WatchStream> {
    let settle!: (e: Error | null) => void;
    const done = new Promise<Error | null>((r) => (settle = r));
    const clean: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') clean[k] = v;
    let controller: AbortController | undefined;
    try {
      controller = await this.watcher.watch(path, clean, (type: string, object: unknown) => onEvent({ type, object }), (err: unknown) => settle(toWatchError(err)));
    } catch (err) {
      settle(toWatchError(err));
    }
    return { done, abort: () => controller?.abort() };
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private agentFor(opts: https.RequestOptions): http.Agent {
    if (this.agent) return this.agent;
    if (this.server.protocol === 'http:') this.agent = new http.Agent({ keepAlive: true });
    else {
      const tls: https.AgentOptions = { keepAlive: true };
      if (opts.ca) tls.ca = opts.ca;
      if (opts.cert) tls.cert = opts.cert;
      if (opts.key) tls.key = opts.key;
      if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
      if (opts.servername) tls.servername = opts.servername;
      this.agent = new https.Agent(tls);
    }
    return this.agent;
  }
}

/** The error of a request its caller aborted, as Node's own (`AbortError`, the signal's reason as `cause`). */
function abortError(reason: unknown): Error {
  return Object.assign(new Error('The operation was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** client-node reports an HTTP error on the watch request as `Error(statusText)` with `statusCode`. */
function toWatchError(err: unknown): Error | null {
  if (err === null || err === undefined) return null;
  const code = (err as { statusCode?: unknown }).statusCode;
  if (typeof code === 'number') return new ApiStatusError(code, code === 410 ? 'Expired' : '', `watch: HTTP ${code} ${(err as Error).message}`);
  return err instanceof Error ? err : new Error(String(err));
}

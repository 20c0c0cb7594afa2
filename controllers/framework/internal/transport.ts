/**
 * HTTP to the API server as a kubeconfig describes it: server URL, CA, client
 * certificates and bearer tokens all come from the `ClusterAccess`
 * (`@kubernetes/client-node`'s `KubeConfig`, or the CLI's lean kubeconfig reader);
 * requests and watches (newline-delimited JSON, as the API streams them) go over
 * one keep-alive agent.
 */
import http from 'node:http';
import https from 'node:https';
import { ApiStatusError } from '../api-status-error.ts';
import type { ClusterAccess } from '../cluster-access.ts';

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

  constructor(readonly kubeConfig: ClusterAccess) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new TypeError('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    if (this.server.protocol === 'http:' && !cluster.skipTLSVerify)
      throw new TypeError('kubeconfig: http:// servers need skipTLSVerify: true');
  }

  /** Sends one request; resolves with the parsed JSON body, rejects with `ApiStatusError` on HTTP ≥ 400. */
  async request<T>(method: string, path: string, req: TransportRequest = {}): Promise<T> {
    const { url, headers, agent } = await this.prepare(path, req.query);
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
   * Opens a watch (`?watch=true`). Resolves once the server has answered (`done`
   * already settled if it refused: `ApiStatusError`); `onEvent` gets each event in
   * order. `done` settles with null when the server ends the stream, with the error
   * when the connection fails, and with null after `abort()`.
   */
  async watch(path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: RawWatchEvent) => void): Promise<WatchStream> {
    const { url, headers, agent } = await this.prepare(path, { ...query, watch: true });
    const mod = url.protocol === 'http:' ? http : https;
    let settle!: (e: Error | null) => void;
    let settled = false;
    const done = new Promise<Error | null>((r) => (settle = (e) => {
      if (settled) return;
      settled = true;
      r(e);
    }));
    let aborted = false;
    let answered!: () => void;
    const answer = new Promise<void>((r) => (answered = r));
    const r = mod.request(url, { method: 'GET', headers, agent }, (res) => {
      answered();
      const code = res.statusCode ?? 0;
      res.setEncoding('utf8');
      if (code >= 400 || code < 200) {
        let text = '';
        res.on('data', (c: string) => (text += c));
        res.on('end', () => settle(ApiStatusError.fromResponse(code, parseOrText(text), `watch ${url.pathname}`)));
        res.on('error', (err) => settle(aborted ? null : err));
        return;
      }
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line || aborted) continue;
          let event: RawWatchEvent;
          try {
            event = JSON.parse(line) as RawWatchEvent;
          } catch {
            r.destroy(new Error(`watch ${url.pathname}: not a JSON event: ${line.slice(0, 200)}`));
            return;
          }
          onEvent(event);
        }
      });
      res.on('end', () => settle(null));
      res.on('error', (err) => settle(aborted ? null : err));
      res.on('close', () => settle(aborted ? null : res.complete ? null : new Error(`watch ${url.pathname}: connection closed`)));
    });
    r.on('error', (err) => {
      answered();
      settle(aborted ? null : err);
    });
    r.end();
    await answer;
    return {
      done,
      abort: () => {
        aborted = true;
        r.destroy();
        settle(null);
      },
    };
  }

  /** The URL, headers (credentials, `accept`) and agent of a request to `path`. */
  private async prepare(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<{ url: URL; headers: Record<string, string>; agent: http.Agent }> {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    return { url, headers, agent: this.agentFor(opts) };
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

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

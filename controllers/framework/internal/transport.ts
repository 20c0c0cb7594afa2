/**
 * HTTP to the API server as a kubeconfig describes it: server URL, CA, client
 * certificates and bearer tokens all come from the `ClusterAccess`
 * (`@kubernetes/client-node`'s `KubeConfig`, or the CLI's lean kubeconfig reader);
 * requests, raw streams and watches (newline-delimited JSON, as the API streams them)
 * go over one keep-alive agent — or, when the `ClusterAccess` names a local socket of
 * the same server, over that socket without TLS (the cost of a Node TLS context and
 * handshake is most of a short CLI command's time on the wire).
 */
import http, { type IncomingMessage } from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
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

/** A raw request: the caller reads the response body as it streams. */
export interface StreamRequest {
  readonly headers?: Readonly<Record<string, string>>;
  /** A whole body, or chunks sent with back-pressure. */
  readonly body?: Buffer | AsyncIterable<Uint8Array>;
  readonly signal?: AbortSignal;
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

// node:https (and TLS with it) is loaded on the first HTTPS request: a CLI command
// over the local socket never needs it, and loading it costs ~5 ms of start-up.
const requireBuiltin = createRequire(import.meta.url);
let httpsModule: typeof https | undefined;
const loadHttps = (): typeof https => (httpsModule ??= requireBuiltin('node:https') as typeof https);

/** Sends requests and opens watches against the kubeconfig's current cluster. */
export class KubeTransport {
  private agent: http.Agent | undefined;
  private readonly server: URL;
  /** The local socket requests go to instead of the server URL's host; undefined: the URL. */
  readonly socketPath: string | undefined;

  /** `socketPath` defaults to the local socket the `ClusterAccess` names, if any. */
  constructor(readonly kubeConfig: ClusterAccess, socketPath: string | undefined = kubeConfig.localSocketPath?.()) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new TypeError('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    if (this.server.protocol === 'http:' && !cluster.skipTLSVerify)
      throw new TypeError('kubeconfig: http:// servers need skipTLSVerify: true');
    this.socketPath = socketPath;
  }

  /** How requests travel, for messages: `unix:/var/lib/berth/api.sock` or the server URL. */
  get via(): string {
    return this.socketPath ? `unix:${this.socketPath}` : this.server.origin;
  }

  /** Sends one request; resolves with the parsed JSON body, rejects with `ApiStatusError` on HTTP ≥ 400. */
  async request<T>(method: string, path: string, req: TransportRequest = {}): Promise<T> {
    const { url, headers, options } = await this.prepare(path, req.query);
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body));
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const what = `${method} ${url.pathname}`;
    const callerSignal = req.signal;
    // A timer and one listener, not AbortSignal.timeout + AbortSignal.any: those cost more
    // than the rest of a request's client side and keep garbage alive until a full GC.
    return new Promise<T>((resolve, reject) => {
      if (callerSignal?.aborted) return reject(abortError(callerSignal.reason));
      const r = this.module.request(url, { ...options, method, headers }, (res) => {
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
    const { url, headers, options } = await this.prepare(path, { ...query, watch: true });
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
    const r = this.module.request(url, { ...options, method: 'GET', headers }, (res) => {
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

  /**
   * Sends one request and resolves with the response once its headers arrive, for the
   * caller to stream (logs, uploads). HTTP ≥ 400 rejects with `ApiStatusError` (the
   * body read). No timeout: streams are long; abort with `signal`.
   */
  async stream(method: string, path: string, req: StreamRequest = {}): Promise<IncomingMessage> {
    const { url, headers, options } = await this.prepare(path);
    const what = `${method} ${url.pathname}`;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const r = this.module.request(url, { ...options, method, headers: { ...headers, ...req.headers }, ...(req.signal ? { signal: req.signal } : {}) }, (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 400) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => reject(ApiStatusError.fromResponse(code, parseOrText(Buffer.concat(chunks).toString('utf8')), what)));
      });
      r.on('error', reject);
      const body = req.body;
      if (body === undefined || Buffer.isBuffer(body)) return void r.end(body);
      void (async () => {
        try {
          for await (const chunk of body) if (!r.write(chunk)) await new Promise((d) => r.once('drain', d));
          r.end();
        } catch (err) {
          r.destroy(err as Error);
        }
      })();
    });
  }

  /** `http` over the local socket or for an `http:` server, else `https`. */
  private get module(): typeof http | typeof https {
    return this.socketPath || this.server.protocol === 'http:' ? http : loadHttps();
  }

  /** The URL, headers (credentials, `accept`) and connection options (agent, socket) of a request to `path`. */
  private async prepare(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<{ url: URL; headers: Record<string, string>; options: http.RequestOptions }> {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    if (this.socketPath) url.protocol = 'http:';
    return { url, headers, options: { agent: this.agentFor(opts), ...(this.socketPath ? { socketPath: this.socketPath } : {}) } };
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private agentFor(opts: https.RequestOptions): http.Agent {
    if (this.agent) return this.agent;
    if (this.socketPath || this.server.protocol === 'http:') this.agent = new http.Agent({ keepAlive: true });
    else {
      const tls: https.AgentOptions = { keepAlive: true };
      if (opts.ca) tls.ca = opts.ca;
      if (opts.cert) tls.cert = opts.cert;
      if (opts.key) tls.key = opts.key;
      if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
      if (opts.servername) tls.servername = opts.servername;
      this.agent = new (loadHttps().Agent)(tls);
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

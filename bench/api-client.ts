/**
 * A minimal HTTPS client for the berth API as the benchmarks drive it: one keep-alive
 * agent that trusts the server's CA, the bearer token on every request, and no
 * client library in between, so the numbers measure the server and not a client.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';

/** Where the server is and how to authenticate to it. */
export interface ApiEndpoint {
  /** `https://127.0.0.1:PORT`. */
  readonly url: string;
  readonly token: string;
  readonly caPem: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

export interface RequestOptions {
  readonly body?: string;
  readonly contentType?: string;
  readonly accept?: string;
}

/** `Accept` header that asks for server-side printing, as kubectl does. */
export const ACCEPT_TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

/** Path of the Container collection in a namespace. */
export const containersPath = (namespace: string): string => `/apis/berth.dev/v1/namespaces/${namespace}/containers`;

/** An HTTP error response, with the `Status` body for the report. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/** Sends API requests over keep-alive HTTPS connections; safe for many concurrent requests. */
export class ApiClient {
  private readonly agent: https.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(readonly endpoint: ApiEndpoint) {
    const u = new URL(endpoint.url);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new https.Agent({ keepAlive: true, ca: endpoint.caPem, maxSockets: Infinity, maxFreeSockets: 256 });
  }

  /** Sends one request and reads the whole body; resolves for any HTTP status. */
  request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {
        authorization: `Bearer ${this.endpoint.token}`,
        accept: opts.accept ?? 'application/json',
      };
      if (opts.body !== undefined) {
        headers['content-type'] = opts.contentType ?? 'application/json';
        headers['content-length'] = Buffer.byteLength(opts.body);
      }
      const req = https.request({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  /** Like `request`, but rejects with `ApiRequestError` unless the status is 2xx. */
  async expectOk(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const res = await this.request(method, path, opts);
    if (res.status < 200 || res.status > 299) throw new ApiRequestError(res.status, method, path, res.body);
    return res;
  }

  /**
   * Opens a watch (`path` must carry `?watch=true…`) and calls `onEvent` with each
   * decoded event line and the time it was parsed (`performance.now()` of this process).
   * Resolves once the response headers arrived with status 200; `close()` ends the stream.
   */
  watch(path: string, onEvent: (event: WatchEventLine, receivedAt: number) => void): Promise<{ close(): void }> {
    return this.watchLines(path, (line, receivedAt) => onEvent(JSON.parse(line) as WatchEventLine, receivedAt));
  }

  /**
   * Like `watch`, but hands over each event line undecoded, for watchers that only
   * need a field or two and should not spend their CPU on decoding whole objects.
   */
  watchLines(path: string, onLine: (line: string, receivedAt: number) => void): Promise<{ close(): void }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.host,
          port: this.port,
          method: 'GET',
          path,
          // A watch holds its connection for its whole life: keep it out of the request pool.
          agent: false,
          ca: this.endpoint.caPem,
          headers: { authorization: `Bearer ${this.endpoint.token}`, accept: 'application/json' },
        },
        (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => reject(new ApiRequestError(res.statusCode ?? 0, 'GET', path, Buffer.concat(chunks).toString('utf8'))));
            return;
          }
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const receivedAt = performance.now();
            buffered += chunk;
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (line.trim()) onLine(line, receivedAt);
            }
          });
          res.on('error', () => undefined); // closing the stream ourselves aborts it
          resolve({ close: () => req.destroy() });
        },
      );
      req.on('error', reject); // after `resolve`, errors (such as our own close) are ignored
      req.end();
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** One line of a watch stream. */
export interface WatchEventLine {
  readonly type: string;
  readonly object: { metadata?: { name?: string; resourceVersion?: string } } & Record<string, unknown>;
}

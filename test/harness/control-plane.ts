/**
 * An in-process `berth server` for tests (our envtest): a temporary data directory,
 * a free port, real HTTPS with the generated CA and token, and helpers to call the
 * API and to run the real `kubectl` against it. `stop()` removes everything.
 */
import type { RegistryConfig } from '../../runtime/cri/index.ts';
import { execFile } from 'node:child_process';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../cli/server.ts';
import type { NodeNetworkOptions } from '../../cli/agent.ts';
import { createLogger } from '../../cli/logger.ts';

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: T;
  readonly text: string;
}

export interface RequestOptions {
  readonly body?: unknown;
  /** Raw body bytes/text, sent as is. */
  readonly raw?: string | Buffer;
  readonly contentType?: string;
  readonly accept?: string;
  /** Bearer token; default the admin token; `null` sends none. */
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ControlPlane {
  readonly server: RunningServer;
  readonly url: string;
  readonly dataDir: string;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse<T>>;
  /** Opens a streaming GET (watch, logs); `lines()` yields parsed JSON lines. */
  stream(path: string, opts?: RequestOptions): Promise<WatchStream>;
  kubectl(args: readonly string[], opts?: { bin?: string; stdin?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<KubectlResult>;
  /** Restarts the server on the same data directory and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface WatchStream {
  readonly status: number;
  /** Waits for the next JSON line (event); rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<any>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

export interface ControlPlaneOptions {
  readonly storage?: 'sqlite' | 'memory';
  readonly minWatchTimeoutMs?: number;
  readonly logLevel?: string;
  /**
   * The in-process node agent's runtime. Default `none`: no agent, so API tests stay
   * fast. With `fake`, `server.runtime` is the agent's `FakeRuntimeService` (a new,
   * empty one after `restart()`); `runc` needs root.
   */
  readonly runtime?: 'none' | 'fake' | 'runc';
  /** Run the control-plane controllers (scheduler, node lifecycle). Default false. */
  readonly controllers?: boolean;
  /** The agent's Node name. Default `node-1`. */
  readonly nodeName?: string;
  /** Default 40 s, as in production. */
  readonly nodeGracePeriodMs?: number;
  /** Default 1 s (production: 10 s). */
  readonly heartbeatIntervalMs?: number;
  /** How the agent reaches registries (e.g. a test registry on plain HTTP). */
  readonly registry?: RegistryConfig;
  /**
   * Container networks of the runc agent. Default `false` (loopback-only namespaces), so
   * tests never touch a real berth0; network tests pass their own names and subnets.
   */
  readonly network?: NodeNetworkOptions | false;
  /** Host paths Containers may bind-mount (`berth server --allow-bind-mount`). Default none. */
  readonly allowedBindMountPaths?: readonly string[];
}

/** Starts a control plane; call `stop()` (e.g. in `onTestFinished`). */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-test-'));
  const cacheDir = join(dataDir, 'kubectl-cache');
  const logger = createLogger({ level: opts.logLevel ?? process.env.BERTH_TEST_LOG ?? 'silent', name: 'berth' });
  const start = (listen: string) =>
    startServer({
      dataDir,
      listen,
      logger,
      ...(opts.storage ? { storage: opts.storage } : {}),
      ...(opts.minWatchTimeoutMs ? { minWatchTimeoutMs: opts.minWatchTimeoutMs } : {}),
      runtime: opts.runtime ?? 'none',
      controllers: opts.controllers ?? false,
      nodeName: opts.nodeName ?? 'node-1',
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1_000,
      ...(opts.nodeGracePeriodMs !== undefined ? { nodeGracePeriodMs: opts.nodeGracePeriodMs } : {}),
      ...(opts.registry ? { registry: opts.registry } : {}),
      network: opts.network ?? false,
      ...(opts.allowedBindMountPaths ? { allowedBindMountPaths: opts.allowedBindMountPaths } : {}),
    });
  let server = await start('127.0.0.1:0');
  let agent = new https.Agent({ ca: server.caPem, keepAlive: true });
  const streams = new Set<WatchStream>();

  const send = (method: string, path: string, o: RequestOptions, onResponse: (res: import('node:http').IncomingMessage) => void, onError: (e: Error) => void) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? server.token : o.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (o.accept) headers.accept = o.accept;
    let payload: Buffer | undefined;
    if (o.raw !== undefined) payload = Buffer.from(o.raw);
    else if (o.body !== undefined) payload = Buffer.from(JSON.stringify(o.body));
    if (payload) {
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = https.request(new URL(path, server.url), { method, headers, agent }, onResponse);
    req.on('error', onError);
    req.end(payload);
    return req;
  };

  const cp: ControlPlane = {
    get server() {
      return server;
    },
    get url() {
      return server.url;
    },
    dataDir,
    request: (method, path, o = {}) =>
      new Promise((resolve, reject) => {
        send(
          method,
          path,
          o,
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let body: any = text;
              try {
                body = JSON.parse(text);
              } catch {
                /* not JSON */
              }
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
            });
            res.on('error', reject);
          },
          reject,
        );
      }),
    stream: (path, o = {}) =>
      new Promise((resolve, reject) => {
        const req = send(
          'GET',
          path,
          o,
          (res) => {
            const queue: any[] = [];
            const waiters: { resolve: (v: any) => void; reject: (e: Error) => void }[] = [];
            let buf = '';
            let endedResolve!: () => void;
            const ended = new Promise<void>((r) => (endedResolve = r));
            let done = false;
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              buf += c;
              let i: number;
              while ((i = buf.indexOf('\n')) >= 0) {
                const line = buf.slice(0, i);
                buf = buf.slice(i + 1);
                if (!line.trim()) continue;
                const ev = JSON.parse(line);
                const w = waiters.shift();
                if (w) w.resolve(ev);
                else queue.push(ev);
              }
            });
            const finish = () => {
              done = true;
              endedResolve();
              for (const w of waiters.splice(0)) w.reject(new Error('stream ended'));
            };
            res.on('end', finish);
            res.on('close', finish);
            res.on('error', finish);
            const ws: WatchStream = {
              status: res.statusCode ?? 0,
              ended,
              next: (timeoutMs = 5_000) =>
                new Promise((res2, rej2) => {
                  if (queue.length) return res2(queue.shift());
                  if (done) return rej2(new Error('stream ended'));
                  const t = setTimeout(() => {
                    const idx = waiters.findIndex((w) => w.resolve === wrapped);
                    if (idx >= 0) waiters.splice(idx, 1);
                    rej2(new Error(`no watch event within ${timeoutMs} ms`));
                  }, timeoutMs);
                  const wrapped = (v: any) => {
                    clearTimeout(t);
                    res2(v);
                  };
                  waiters.push({
                    resolve: wrapped,
                    reject: (e) => {
                      clearTimeout(t);
                      rej2(e);
                    },
                  });
                }),
              close: () => {
                req.destroy();
                streams.delete(ws);
              },
            };
            streams.add(ws);
            resolve(ws);
          },
          reject,
        );
      }),
    kubectl: (args, o = {}) =>
      new Promise((resolve) => {
        const child = execFile(
          o.bin ?? 'kubectl',
          ['--kubeconfig', server.kubeconfigPath, '--cache-dir', cacheDir, ...args],
          { timeout: o.timeoutMs ?? 60_000, env: { ...process.env, KUBECONFIG: server.kubeconfigPath, ...(o.env ?? {}) }, maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
          },
        );
        if (o.stdin !== undefined) child.stdin?.end(o.stdin);
        else child.stdin?.end();
      }),
    restart: async () => {
      for (const s of streams) s.close();
      agent.destroy();
      const port = server.port;
      await server.close();
      server = await start(`127.0.0.1:${port}`);
      agent = new https.Agent({ ca: server.caPem, keepAlive: true });
    },
    stop: async () => {
      for (const s of streams) s.close();
      agent.destroy();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return cp;
}

/**
 * How the client verbs reach the API server, found as kubectl finds it:
 * `--kubeconfig`, else `$KUBECONFIG` (a `:`-separated list, merged), else the
 * kubeconfig `berth server` writes in its default data directory, else
 * `~/.kube/config`; `--context` picks a context and `-n/--namespace` overrides its
 * namespace. The CLI is an API client only: everything goes through `ApiClient`
 * — its typed calls, or raw streams (logs, uploads) with the same credentials.
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { ApiClient } from '../../controllers/framework/client.ts';
import { ApiStatusError } from '../../controllers/framework/api-status-error.ts';
import { adminKubeconfigPath, defaultServerDataDir } from '../data-dir.ts';
import { KubeconfigAccess, type KubeconfigSource } from './kubeconfig-access.ts';

/** The connection flags every client verb accepts. */
export interface ConnectionFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
  readonly debug?: boolean;
}

/** Where the kubeconfig comes from, in kubectl's order with berth's own file before `~/.kube/config`. */
export function kubeconfigSource(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): KubeconfigSource {
  if (flags.kubeconfig) return { kind: 'file', path: flags.kubeconfig };
  if (env.KUBECONFIG) return { kind: 'env', path: env.KUBECONFIG };
  const berth = adminKubeconfigPath(defaultServerDataDir(env));
  if (exists(berth)) return { kind: 'file', path: berth };
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (exists(home)) return { kind: 'file', path: home };
  return { kind: 'file', path: berth };
}

/** An open connection: the typed client, the kubeconfig context, the namespace verbs act in. */
export interface Connection {
  readonly client: ApiClient;
  /** The kubeconfig context in use. */
  readonly context: string;
  readonly namespace: string;
  /** The server URL, for messages. */
  readonly server: string;
  /** Writes `msg` to stderr when `--debug` is on. */
  debug(msg: string): void;
  /**
   * One HTTPS request with the kubeconfig's credentials; resolves with the response
   * once headers arrive (for streaming). HTTP ≥ 400 rejects with `ApiStatusError`.
   */
  request(method: string, path: string, opts?: RawRequestOptions): Promise<IncomingMessage>;
  /**
   * Opens a WebSocket (exec, attach) at `path` with the same credentials and connection
   * (the local socket when there is one), offering `protocols`. Rejects with
   * `ApiStatusError` when the server refuses the upgrade.
   */
  websocket(path: string, protocols: readonly string[]): Promise<WebSocket>;
  close(): void;
}

export interface RawRequestOptions {
  readonly body?: Buffer | AsyncIterable<Uint8Array>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

const LOGGED = new Set(['get', 'list', 'create', 'update', 'updateStatus', 'patch', 'apply', 'delete', 'watch']);

function describeArg(a: unknown): string {
  if (a && typeof a === 'object') {
    const o = a as { plural?: string; kind?: string; metadata?: { name?: string } };
    if (o.plural) return o.plural;
    if (o.kind && o.metadata) return `${o.kind}/${o.metadata.name ?? ''}`;
    return JSON.stringify(a).slice(0, 400);
  }
  return JSON.stringify(a);
}

/** Logs each `ApiClient` call (verb, arguments, outcome, time) through `debug`. */
function withDebug(client: ApiClient, debug: (msg: string) => void): ApiClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || !LOGGED.has(prop) || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: unknown[]) => {
        const t0 = performance.now();
        const what = `${prop} ${args.filter((a) => typeof a !== 'function').map(describeArg).join(' ')}`;
        debug(`→ ${what}`);
        try {
          const out = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          const rv = (out as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
          debug(`← ${prop} ok${rv ? ` resourceVersion=${rv}` : ''} (${(performance.now() - t0).toFixed(0)} ms)`);
          return out;
        } catch (err) {
          debug(`← ${prop} failed: ${(err as Error).message} (${(performance.now() - t0).toFixed(0)} ms)`);
          throw err;
        }
      };
    },
  });
}

/** Opens a connection as the flags say. Throws with a clear message when no kubeconfig or context is usable. */
export function connect(flags: ConnectionFlags): Connection {
  const debug = (msg: string) => {
    // Prefixed with the time since the process started: where a slow command spends it.
    if (flags.debug) process.stderr.write(`berth: debug: [${performance.now().toFixed(0).padStart(4)} ms] ${msg}\n`);
  };
  const source = kubeconfigSource(flags);
  let access: KubeconfigAccess;
  try {
    access = KubeconfigAccess.load(source, flags.context);
  } catch (err) {
    const hint = source.kind === 'env' ? '$KUBECONFIG' : source.path;
    throw new Error((err as NodeJS.ErrnoException).code === 'ENOENT' ? `cannot read the kubeconfig ${hint}: no such file (is \`berth server\` running? pass --kubeconfig)` : (err as Error).message);
  }
  const cluster = access.getCurrentCluster();
  const namespace = flags.namespace ?? access.namespace ?? 'default';
  debug(`kubeconfig ${source.path}, context ${access.context}, server ${cluster.server}, namespace ${namespace}${access.needsClientNode ? ' (auth through client-node)' : ''}`);
  const raw = new ApiClient({ kubeConfig: access, fieldManager: 'berth-cli' });
  const client = flags.debug ? withDebug(raw, debug) : raw;
  if (raw.via.startsWith('unix:')) debug(`via the server's local socket ${raw.via.slice('unix:'.length)}`);

  const request = async (method: string, path: string, opts: RawRequestOptions = {}): Promise<IncomingMessage> => {
    const t0 = performance.now();
    debug(`→ ${method} ${path}`);
    try {
      const res = await raw.stream(method, path, opts);
      debug(`← ${res.statusCode} ${method} ${path.split('?')[0]} (${(performance.now() - t0).toFixed(0)} ms)`);
      return res;
    } catch (err) {
      debug(`← ${method} ${path.split('?')[0]} failed: ${(err as Error).message} (${(performance.now() - t0).toFixed(0)} ms)`);
      throw err;
    }
  };

  const websocket = async (path: string, protocols: readonly string[]): Promise<WebSocket> => {
    const { default: WebSocketClient } = await import('ws');
    const o: https.RequestOptions = {};
    await access.applyToHTTPSOptions(o);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (o.auth) headers.authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
    const server = new URL(cluster.server);
    const base = server.pathname.replace(/\/$/, '');
    const socket = raw.via.startsWith('unix:') ? raw.via.slice('unix:'.length) : undefined;
    const url = socket ? `ws+unix://${socket}:${base}${path}` : `${server.protocol === 'https:' ? 'wss' : 'ws'}://${server.host}${base}${path}`;
    const tls = socket ? {} : Object.fromEntries(Object.entries({ ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized, servername: o.servername }).filter(([, v]) => v !== undefined));
    const what = `${path.split('?')[0]}`;
    const t0 = performance.now();
    debug(`→ WebSocket ${path}`);
    const ws = new WebSocketClient(url, [...protocols], { headers, ...tls });
    return new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => {
        debug(`← open ${ws.protocol} ${what} (${(performance.now() - t0).toFixed(0)} ms)`);
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // plain text
          }
          debug(`← ${res.statusCode} ${what} (${(performance.now() - t0).toFixed(0)} ms)`);
          reject(ApiStatusError.fromResponse(res.statusCode ?? 500, body, what));
        });
      });
      ws.once('error', reject);
    });
  };

  return {
    client,
    context: access.context,
    websocket,
    namespace,
    server: cluster.server,
    debug,
    request,
    close: () => raw.close(),
  };
}

/** Reads a whole response body as text. */
export async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One line for a failure, as Docker prints it after `Error response from daemon:` —
 * here the API's `Status` message, which names the object and the field.
 */
export function errorLine(err: unknown, server?: string): string {
  if (err instanceof ApiStatusError) return err.status?.message ?? err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'EHOSTUNREACH') {
    return `cannot connect to the berth server${server ? ` at ${server}` : ''} (${e.code}): is \`berth server\` running?`;
  }
  return e instanceof Error ? e.message : String(err);
}

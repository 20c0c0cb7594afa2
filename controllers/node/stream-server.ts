/**
 * The node agent's stream server (kubelet's streaming server): container logs and
 * stats over plain HTTP, exec and attach over WebSocket with the Kubernetes channel protocols,
 * for the API server to proxy to. Only the API server calls it, with a shared bearer token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { RuntimeService } from '../../runtime/cri/runtime-service.ts';
import type { ImageService } from '../../runtime/cri/image-service.ts';
import { isRuntimeError, type RuntimeErrorCode } from '../../runtime/cri/errors.ts';
import type { ExecRequest, LogLine, RuntimeContainer, StdioStreams, TerminalSize } from '../../runtime/cri/types.ts';
import { silentLogger, type Logger } from '../framework/logger.ts';
import { readIoCounters, statsReport, type IoCounterReader } from './container-stats-report.ts';
import { parseExecOptions, parseStreamOptions, type ContainerExecOptions } from '../../api/types/exec-options.ts';

/** Label of a runtime container: the namespace of its `Container` object. */
export const NAMESPACE_LABEL = 'berth.dev/namespace';
/** Label of a runtime container: the name of its `Container` object. */
export const NAME_LABEL = 'berth.dev/name';

/** Channel protocols served, in order of preference (client-go and client-node offer v5 first). */
export const STREAM_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** Channel numbers of the Kubernetes streaming protocols. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** Above this many bytes queued on the WebSocket, output streams pause until it drains. */
const HIGH_WATER_BYTES = 1 << 20;

/**
 * How long a TTY exec waits for the client's first resize message before it starts the
 * process without a size (client-go and client-node send one as soon as the connection opens).
 */
export const FIRST_RESIZE_WAIT_MS = 200;

export interface StreamServerOptions {
  readonly runtime: RuntimeService;
  /** Shared secret the API server presents as `Authorization: Bearer <token>`. */
  readonly token: string;
  readonly logger?: Logger;
  /** Serve HTTPS with this certificate chain and key (PEM); absent: plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Exports images (`/images/NS/NAME/export`); absent: 404 there. */
  readonly images?: Pick<ImageService, 'exportImages' | 'checkRegistryLogin'>;
  /** Where build logs are kept, `<namespace>_<name>.log` (`/images/NS/NAME/log`); absent: 404 there. */
  readonly buildLogDir?: string;
  /** Reads the network and block I/O counters of a container (`/containers/NS/NAME/stats`); default: its pid's, on this host. */
  readonly ioCounters?: IoCounterReader;
  /** Time between two readings of a `stats?stream=true`. Default 1 s, as `docker stats`. */
  readonly statsIntervalMs?: number;
  /** How long a TTY exec waits for the first resize message before it starts; default `FIRST_RESIZE_WAIT_MS`. */
  readonly firstResizeWaitMs?: number;
}

export interface StreamServer {
  /** Not yet listening: the caller calls `server.listen(...)`. */
  readonly server: http.Server | https.Server;
  /**
   * The same streams in plain HTTP, for an API server on this machine to reach over a
   * Unix socket (no TLS hop); not listening unless the caller makes it listen.
   */
  readonly localServer: http.Server;
  /** Ends every open log stream and exec session (killing the exec'd processes), then closes the server. */
  close(): Promise<void>;
}

/** A Kubernetes `Status` (apimachinery `metav1.Status`), as sent on the error channel and in error responses. */
export interface StreamStatus {
  readonly kind?: 'Status';
  readonly apiVersion?: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: { readonly causes?: readonly { readonly reason: string; readonly message: string }[] };
}

class StreamError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates the agent's stream server. Routes, all `GET` but `kill` and `registry-login` (`POST`), all behind the bearer token:
 *
 * - `/containers/NS/NAME/log?follow&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes&stream=All|Stdout|Stderr`:
 *   the log of the newest runtime container labelled `NAMESPACE_LABEL=NS`,
 *   `NAME_LABEL=NAME`, as plain text lines (each prefixed with its UTC RFC3339
 *   timestamp with nanoseconds and a space when `timestamps=true`, as kubelet does);
 *   with `follow`, until the container exits or the client goes. `container` is accepted and ignored.
 * - `/containers/NS/NAME/stats?stream`: the newest runtime container's counters as one JSON
 *   `ContainerStatsReport` (`container-stats-report.ts`: the runtime's CPU, memory, pids; the
 *   network and block I/O read on this host); with `stream=true`, one per line every
 *   `statsIntervalMs` until the container stops or the client goes. A container that is not
 *   running or paused, or has no runtime container here, is 409 Conflict.
 * - `POST /registry-login` with `{serveraddress, username, password}`: checks a registry
 *   login as this node reaches the registry (`docker login`); see `serveRegistryLogin`.
 * - `POST /containers/NS/NAME/kill?signal=HUP`: sends the signal (a Linux signal's name, with or
 *   without `SIG`, or its number) to the newest runtime container's main process, as
 *   `docker kill -s`; answers 200 with a `Success` Status. A bad signal is 400; a container that
 *   is paused, not running, or has no runtime container here is 409 Conflict.
 * - `/containers/NS/NAME/exec?command=…&command=…&stdin&stdout&stderr&tty`, and berth's
 *   `user=`, `env=NAME=VALUE` (repeatable) and `workingDir=` (`ExecRequest.user/env/workingDir`,
 *   Docker's `exec -u/-e/-w`), upgraded to
 *   WebSocket with `v5.channel.k8s.io` or `v4.channel.k8s.io`: channel 0 stdin, 1 stdout,
 *   2 stderr, 3 the final `Status` (Success, or Failure with reason `NonZeroExitCode` and
 *   the exit code as cause `ExitCode`, or the runtime's refusal such as
 *   `cannot exec into a paused container`), 4 resize `{"Width","Height"}`, and (v5) 255 to
 *   half-close stdin. The connection closes after the Status; a client that goes first
 *   kills the process. With `tty`, the process starts once the first resize message has
 *   come (or after `firstResizeWaitMs` without one), in a terminal of that size from its
 *   first instruction on, as Docker's `exec -it` (`ExecRequest.consoleSize`).
 * - `/containers/NS/NAME/attach?stdin&stdout&stderr&tty`, upgraded the same way: attaches to
 *   the container's main process (its output from now on; stdin when asked, which needs
 *   a container created with `stdin: true`; the container's own TTY, whatever `tty` says),
 *   with the same channels. The session ends with a `Success` Status when the process
 *   exits (as kubelet's); a client that goes first only detaches.
 *
 * Resize messages are read as kubelet reads them: JSON with case-insensitive keys, so both
 * `{"Width":80,"Height":24}` (client-go) and `{"width":80,"height":24}` (client-node) work.
 *
 * Request errors (bad token 401, no such container 404, missing upgrade or bad
 * parameters 400) are answered with a `Status` body before any upgrade.
 */
export function createStreamServer(opts: StreamServerOptions): StreamServer {
  const log = opts.logger ?? silentLogger;
  const expected = sha256(opts.token);
  const sessions = new Set<Session>();
  const logStreams = new Set<ServerResponse>();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => STREAM_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void serveHttp(req, res).catch((err) => replyError(res, err));
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  const localServer = http.createServer(handler);
  for (const s of [server, localServer]) {
    s.requestTimeout = 0; // followed logs are long
    s.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void serveUpgrade(req, socket, head).catch((err) => rejectUpgrade(socket, err));
    });
  }

  function authorize(req: IncomingMessage): void {
    const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(sha256(m[1]!), expected)) throw new StreamError(401, 'Unauthorized', 'Unauthorized');
  }

  async function serveHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    authorize(req);
    if (new URL(req.url ?? '/', 'http://agent').pathname === '/registry-login') return serveRegistryLogin(req, res);
    const image = parseImageRoute(req);
    if (image) return serveImage(image, req, res);
    const route = parseRoute(req);
    if (req.method !== (route.verb === 'kill' ? 'POST' : 'GET')) throw new StreamError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${route.path}`);
    if (route.verb === 'kill') return serveKill(route, res);
    if (route.verb === 'stats') return serveStats(route, res);
    if (route.verb !== 'log') throw new StreamError(400, 'BadRequest', 'Upgrade request required');
    const container = await findContainer(route.namespace, route.name);
    logStreams.add(res);
    res.on('close', () => logStreams.delete(res));
    await streamLog(opts.runtime, container, route.query, res);
  }

  async function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    authorize(req);
    const route = parseRoute(req);
    if (route.verb === 'log' || route.verb === 'stats' || route.verb === 'kill') throw new StreamError(400, 'BadRequest', `${route.verb} is not served over WebSocket`);
    const query = route.verb === 'exec' ? parseExecQuery(route.query) : parseStreamQuery(route.query);
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const protocol = STREAM_PROTOCOLS.find((p) => offered.includes(p));
    if (!protocol) throw new StreamError(400, 'BadRequest', `unsupported streaming protocol: offer one of ${STREAM_PROTOCOLS.join(', ')}`);
    const container = await findContainer(route.namespace, route.name);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new Session(ws, protocol, query, log.child({ container: `${route.namespace}/${route.name}`, id: container.id, verb: route.verb }));
      sessions.add(session);
      const start = async (size: TerminalSize | undefined): Promise<Started> => {
        if (route.verb === 'exec') {
          const { command, user, env, workingDir, detach } = query as ExecQuery;
          const req: ExecRequest = {
            cmd: command,
            tty: query.tty,
            stdin: query.stdin,
            ...(user ? { user } : {}),
            ...(env ? { env } : {}),
            ...(workingDir ? { workingDir } : {}),
            ...(query.tty && size ? { consoleSize: size } : {}),
          };
          if (detach) {
            // `exec -d`: started in the background; the session ends at once, the process stays.
            await opts.runtime.execDetached(container.id, req, { signal: session.signal });
            return { streams: noStreams(), outcome: Promise.resolve(SUCCESS) };
          }
          const streams = await opts.runtime.exec(container.id, req, { signal: session.signal });
          return { streams, outcome: streams.exit.then((code) => (code === 0 ? SUCCESS : nonZeroExit(command, code))) };
        }
        // The container's process (and its terminal) already exists: the first resize just goes to it.
        const streams = await opts.runtime.attach(container.id, { stdin: query.stdin }, { signal: session.signal });
        return { streams, outcome: streams.ended.then(() => SUCCESS) };
      };
      // An exec's own terminal gets its size when the process starts (the CLI sends it at once); an attach's exists already.
      const sizeWaitMs = route.verb === 'exec' && query.tty ? (opts.firstResizeWaitMs ?? FIRST_RESIZE_WAIT_MS) : 0;
      void session.run(start, sizeWaitMs).finally(() => sessions.delete(session));
    });
  }

  /** A container's counters: one reading, or (`stream=true`) one per line until it stops or the client goes. */
  async function serveStats(route: Route, res: ServerResponse): Promise<void> {
    const stream = flag(route.query, 'stream');
    const who = `${route.namespace}/${route.name}`;
    const notRunning = (state: string): StreamError => new StreamError(409, 'Conflict', `container ${who} is not running (${state})`);
    // The API server asks only for Containers that exist: without a runtime container here, it has not started (or was cleaned up).
    const container = await findContainer(route.namespace, route.name).catch((err: unknown) => {
      throw err instanceof StreamError && err.code === 404 ? notRunning('no runtime container on this node') : err;
    });
    if (container.state !== 'running' && container.state !== 'paused') throw notRunning(container.state);
    const readIo = opts.ioCounters ?? ((s) => readIoCounters(s.id, s.pid));
    const read = async (signal?: AbortSignal): Promise<string> => {
      try {
        const [stats, status] = await Promise.all([opts.runtime.containerStats(container.id, { signal }), opts.runtime.containerStatus(container.id, { signal })]);
        const io = await readIo(status).catch(() => ({}));
        return `${JSON.stringify(statsReport({ namespace: route.namespace, name: route.name }, stats, io))}\n`;
      } catch (err) {
        // exited (or removed) since the lookup: say so with the container's name
        if (isRuntimeError(err) && (err.code === 'FailedPrecondition' || err.code === 'NotFound')) throw notRunning(err.code === 'NotFound' ? 'removed' : 'exited');
        throw err;
      }
    };
    const first = await read();
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(first), 'cache-control': 'no-cache' });
      res.end(first);
      return;
    }
    const ac = new AbortController();
    logStreams.add(res);
    res.on('close', () => {
      logStreams.delete(res);
      ac.abort();
    });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    let line = first;
    try {
      for (;;) {
        if (!res.write(line)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        await sleep(opts.statsIntervalMs ?? 1000, undefined, { signal: ac.signal });
        line = await read(ac.signal);
      }
    } catch {
      // the client went, or the container stopped: end the stream
    }
    if (!res.destroyed) res.end();
  }

  /**
   * `POST /registry-login` with a JSON `{serveraddress, username, password}` (Docker's
   * `AuthConfig` names): checks the credentials against the registry as this node reaches
   * it (`docker login`), nothing stored. 200 with a `Success` Status; refused: 409 naming the
   * registry; unreachable: 503; a malformed body: 400.
   */
  async function serveRegistryLogin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new StreamError(405, 'MethodNotAllowed', `${req.method} is not allowed on /registry-login`);
    if (!opts.images) throw new StreamError(404, 'NotFound', 'this node has no image service');
    const body = await readJsonBody(req, REGISTRY_LOGIN_MAX_BYTES);
    const field = (name: string): string => {
      const v = body[name];
      if (typeof v !== 'string' || v === '') throw new StreamError(400, 'BadRequest', `${name}: Required value: a non-empty string`);
      return v;
    };
    const registry = field('serveraddress');
    await opts.images.checkRegistryLogin(registry, { username: field('username'), password: field('password') });
    const ok = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', message: 'Login Succeeded', code: 200 } satisfies StreamStatus);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ok) }).end(ok);
  }

  /** Sends `?signal=` to a container's main process (`docker kill -s`): 200 with a `Success` Status. */
  async function serveKill(route: Route, res: ServerResponse): Promise<void> {
    const signal = route.query.get('signal');
    if (!signal) throw new StreamError(400, 'BadRequest', 'signal is required');
    const notRunning = (): StreamError => new StreamError(409, 'Conflict', `container ${route.name} is not running`);
    const container = await findContainer(route.namespace, route.name).catch((err: unknown) => {
      throw err instanceof StreamError && err.code === 404 ? notRunning() : err;
    });
    if (container.state === 'paused') throw new StreamError(409, 'Conflict', `container ${route.name} is paused. Unpause the container before stopping or killing`);
    if (container.state !== 'running') throw notRunning();
    try {
      await opts.runtime.signalContainer(container.id, signal);
    } catch (err) {
      // exited (or removed) since the lookup; a bad signal stays a 400 (InvalidArgument)
      if (isRuntimeError(err) && (err.code === 'FailedPrecondition' || err.code === 'NotFound')) throw notRunning();
      throw err;
    }
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 } satisfies StreamStatus);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  /** An Image's build log (as kept) or its export (a tarball of the `ref` query's references). */
  async function serveImage(route: ImageRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') throw new StreamError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${route.path}`);
    if (route.verb === 'log') {
      if (!opts.buildLogDir) throw new StreamError(404, 'NotFound', 'this node keeps no build logs');
      const file = join(opts.buildLogDir, `${route.namespace}_${route.name}.log`);
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) throw new StreamError(404, 'NotFound', `image ${route.namespace}/${route.name} has no build log on this node`);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': st.size });
      await pipeline(createReadStream(file, { end: st.size - 1 }), res).catch(() => res.destroy());
      return;
    }
    if (!opts.images) throw new StreamError(404, 'NotFound', 'this node cannot export images');
    const refs = route.query.getAll('ref');
    if (refs.length === 0) throw new StreamError(400, 'BadRequest', 'export needs at least one ref');
    const format = route.query.get('format') ?? 'docker-archive';
    if (format !== 'docker-archive' && format !== 'oci-archive') throw new StreamError(400, 'BadRequest', `format must be docker-archive or oci-archive, not ${JSON.stringify(format)}`);
    // The export writes the tarball as it reads the blobs: headers go out with the first byte.
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const out = new PassThrough();
    let started = false;
    const sending = once(out, 'readable').then(() => {
      started = true;
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="${route.name}.tar"` });
      out.pipe(res);
    });
    try {
      await opts.images.exportImages(refs, format, out, { signal: ac.signal });
      out.end();
      await sending;
      await finished(res).catch(() => undefined);
    } catch (err) {
      if (started || res.headersSent) return void res.destroy();
      throw err;
    }
  }

  async function findContainer(namespace: string, name: string): Promise<RuntimeContainer> {
    const found = await opts.runtime.listContainers({ labels: { [NAMESPACE_LABEL]: namespace, [NAME_LABEL]: name } });
    const newest = found.sort((a, b) => b.createdAtMs - a.createdAtMs)[0];
    if (!newest) throw new StreamError(404, 'NotFound', `container ${namespace}/${name} has no runtime container on this node`);
    return newest;
  }

  function replyError(res: ServerResponse, err: unknown): void {
    const e = toStreamError(err);
    if (e.code >= 500) log.error({ err }, 'stream request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify(failure(e));
    res.writeHead(e.code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  function rejectUpgrade(socket: Duplex, err: unknown): void {
    const e = toStreamError(err);
    if (e.code >= 500) log.error({ err }, 'stream upgrade failed');
    writeHttpError(socket, e.code, failure(e));
  }

  return {
    server,
    localServer,
    close: async () => {
      for (const s of sessions) s.abort();
      for (const r of logStreams) r.destroy();
      wss.close();
      await Promise.all(
        [server, localServer].map((s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
        ),
      );
    },
  };
}

interface Route {
  readonly path: string;
  readonly namespace: string;
  readonly name: string;
  readonly verb: 'log' | 'stats' | 'exec' | 'attach' | 'kill';
  readonly query: URLSearchParams;
}

interface ImageRoute {
  readonly path: string;
  readonly namespace: string;
  readonly name: string;
  readonly verb: 'log' | 'export';
  readonly query: URLSearchParams;
}

function parseImageRoute(req: IncomingMessage): ImageRoute | undefined {
  const url = new URL(req.url ?? '/', 'http://agent');
  const m = /^\/images\/([^/]+)\/([^/]+)\/(log|export)$/.exec(url.pathname);
  if (!m) return undefined;
  return { path: url.pathname, namespace: decodeURIComponent(m[1]!), name: decodeURIComponent(m[2]!), verb: m[3] as ImageRoute['verb'], query: url.searchParams };
}

function parseRoute(req: IncomingMessage): Route {
  const url = new URL(req.url ?? '/', 'http://agent');
  const m = /^\/containers\/([^/]+)\/([^/]+)\/(log|stats|exec|attach|kill)$/.exec(url.pathname);
  if (!m) throw new StreamError(404, 'NotFound', 'the server could not find the requested resource');
  return { path: url.pathname, namespace: decodeURIComponent(m[1]!), name: decodeURIComponent(m[2]!), verb: m[3] as Route['verb'], query: url.searchParams };
}

/** The streams an exec or attach asks for. */
type StreamQuery = Pick<ContainerExecOptions, 'stdin' | 'stdout' | 'stderr' | 'tty'>;
type ExecQuery = ContainerExecOptions;

const badRequest = (message: string): StreamError => new StreamError(400, 'BadRequest', message);
const parseStreamQuery = (q: URLSearchParams): StreamQuery => parseStreamOptions(q, badRequest);
const parseExecQuery = (q: URLSearchParams): ExecQuery => parseExecOptions(q, badRequest);

/** A session's runtime streams, and the Status it ends with once they are done. */
interface Started {
  readonly streams: StdioStreams & { close(): void };
  readonly outcome: Promise<StreamStatus>;
}

const SUCCESS: StreamStatus = { metadata: {}, status: 'Success' };

/** Serves one log request: headers at once (a followed log may be silent for long), then lines as they come. */
async function streamLog(runtime: RuntimeService, container: RuntimeContainer, q: URLSearchParams, res: ServerResponse): Promise<void> {
  const tailLines = intParam(q, 'tailLines');
  const sinceSeconds = intParam(q, 'sinceSeconds');
  const limitBytes = intParam(q, 'limitBytes');
  const sinceTime = q.get('sinceTime');
  if (sinceSeconds !== undefined && sinceTime) throw new StreamError(400, 'BadRequest', 'at most one of sinceTime or sinceSeconds may be specified');
  const sinceTimeMs = sinceTime ? Date.parse(sinceTime) : undefined;
  if (Number.isNaN(sinceTimeMs)) throw new StreamError(400, 'BadRequest', `sinceTime must be an RFC3339 time, got ${JSON.stringify(sinceTime)}`);
  const sinceMs = sinceSeconds !== undefined ? Date.now() - sinceSeconds * 1000 : sinceTimeMs;
  const timestamps = flag(q, 'timestamps');
  // Kubernetes' `stream` of pod logs (1.32, PodLogsQuerySplitStreams): one of the two streams, or both.
  const which = q.get('stream') ?? 'All';
  const wanted = ({ All: undefined, Stdout: 'stdout', Stderr: 'stderr' } as const)[which as 'All' | 'Stdout' | 'Stderr'];
  if (!['All', 'Stdout', 'Stderr'].includes(which)) throw new StreamError(400, 'BadRequest', `stream must be All, Stdout or Stderr, got ${JSON.stringify(which)}`);

  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const lines = runtime.logs(
    container.id,
    { follow: flag(q, 'follow'), ...(tailLines !== undefined ? { tailLines } : {}), ...(sinceMs !== undefined ? { sinceMs } : {}) },
    { signal: abort.signal },
  );
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  res.flushHeaders();
  let atLineStart = true;
  let budget = limitBytes ?? Infinity;
  try {
    for await (const line of lines) {
      if (wanted && line.stream !== wanted) continue;
      const text = `${timestamps && atLineStart ? `${toRfc3339NanoUtc(line.timestamp)} ` : ''}${line.text}${line.partial ? '' : '\n'}`;
      atLineStart = !line.partial;
      let bytes = Buffer.from(text);
      if (bytes.length > budget) bytes = bytes.subarray(0, budget);
      budget -= bytes.length;
      if (!res.write(bytes)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
      if (budget <= 0 || res.destroyed) break;
    }
  } catch (err) {
    // headers are out: all a stream error can do is end the response early
    if (!res.destroyed) res.destroy(err as Error);
    return;
  }
  res.end();
}

/** The streams of a session with nothing to relay (a detached exec): output already ended, closing does nothing. */
function noStreams(): StdioStreams & { close(): void } {
  const stdout = new PassThrough();
  stdout.end();
  return { stdout, tty: false, resize() {}, close() {} };
}

/**
 * One exec or attach session on a WebSocket speaking a channel protocol: relays stdin
 * and resize in, stdout and stderr out, and ends with one `Status` on the error channel.
 */
class Session {
  private readonly abortController = new AbortController();
  readonly signal = this.abortController.signal;
  /** Set once the final Status is decided: a client that closes after this did not cut the process short. */
  private done = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly protocol: string,
    private readonly query: StreamQuery,
    private readonly log: Logger,
  ) {}

  abort(): void {
    this.abortController.abort();
    this.ws.terminate();
  }

  /**
   * Starts the runtime session with `start` and relays until it ends. With `sizeWaitMs` > 0,
   * first waits that long at most for the client's first resize message and gives `start`
   * its size (still relayed as a resize once started, which changes nothing then).
   */
  async run(start: (size: TerminalSize | undefined) => Promise<Started>, sizeWaitMs = 0): Promise<void> {
    const ws = this.ws;
    let gone = false;
    const clientGone = new Promise<void>((resolve) => ws.once('close', () => ((gone = true), resolve())));
    ws.on('error', (err) => this.log.debug({ err }, 'stream websocket error'));
    // Frames that arrive while the runtime starts (client-node sends the first resize at once) wait for it.
    const early: [Buffer, boolean][] = [];
    let firstSize: TerminalSize | undefined;
    let sizeCame = (): void => {};
    const onEarly = (data: RawData, isBinary: boolean): void => {
      const buf = toBuffer(data);
      early.push([buf, isBinary]);
      if (!firstSize && isBinary && buf[0] === Channel.resize && (firstSize = parseTerminalSize(buf.subarray(1)))) sizeCame();
    };
    ws.on('message', onEarly);
    if (sizeWaitMs > 0 && !firstSize) {
      const t0 = Date.now();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sizeWaitMs);
        sizeCame = () => (clearTimeout(timer), resolve());
        void clientGone.then(sizeCame);
      });
      if (!firstSize) this.log.debug({ waitedMs: Date.now() - t0 }, 'no resize message before the start: the terminal starts without a size');
    }
    if (gone) {
      // the client went while we waited: nothing to start
      this.done = true;
      return;
    }
    let started: Started;
    try {
      started = await start(firstSize);
    } catch (err) {
      ws.off('message', onEarly);
      this.finish(refusal(err));
      return;
    }
    const { streams, outcome } = started;
    void clientGone.then(() => {
      if (!this.done) streams.close(); // the client went first: kill the exec'd process (as kubelet does), or detach
    });
    ws.off('message', onEarly);
    for (const [data, isBinary] of early) this.onMessage(data, isBinary, streams);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(toBuffer(data), isBinary, streams));
    const outputs = [this.pump(streams.stdout, Channel.stdout, this.query.stdout)];
    if (streams.stderr) outputs.push(this.pump(streams.stderr, streams.tty ? Channel.stdout : Channel.stderr, this.query.stderr));
    try {
      const [status] = await Promise.all([outcome, ...outputs]);
      this.finish(status);
    } catch (err) {
      this.finish(refusal(err));
    }
  }

  private finish(status: StreamStatus): void {
    this.done = true;
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(frame(Channel.error, Buffer.from(JSON.stringify(status))));
    this.ws.close(1000);
  }

  private onMessage(data: Buffer, isBinary: boolean, streams: StdioStreams): void {
    if (!isBinary || data.length === 0) return; // the base64 protocols are not served
    const payload = data.subarray(1);
    switch (data[0]) {
      case Channel.stdin:
        if (streams.stdin && payload.length > 0) (streams.stdin as Writable).write(payload);
        return;
      case Channel.resize: {
        const size = parseTerminalSize(payload);
        if (size) streams.resize(size.width, size.height);
        else this.log.debug({ payload: payload.toString('utf8') }, 'ignoring a malformed resize message');
        return;
      }
      case Channel.close:
        if (this.protocol === 'v5.channel.k8s.io' && payload[0] === Channel.stdin) streams.stdin?.end();
        return;
      default:
        return;
    }
  }

  /** Sends a runtime stream on `channel` (or drains it when the client did not ask for it); resolves when it ends. */
  private async pump(stream: NodeJS.ReadableStream, channel: number, wanted: boolean): Promise<void> {
    const r = stream as Readable;
    if (!wanted) {
      r.resume();
      await finished(r).catch(() => {});
      return;
    }
    r.on('data', (chunk: Buffer) => {
      if (this.ws.readyState !== this.ws.OPEN) return;
      this.ws.send(frame(channel, chunk), () => {
        if (r.isPaused() && this.ws.bufferedAmount < HIGH_WATER_BYTES / 2) r.resume();
      });
      if (this.ws.bufferedAmount > HIGH_WATER_BYTES) r.pause();
    });
    await finished(r).catch(() => {});
  }
}

/**
 * A resize message (`TerminalSize`): JSON whose keys match `width`/`height` in any case,
 * as Go's encoding/json matches them for kubelet; both positive integers up to 65535.
 */
export function parseTerminalSize(payload: Buffer): { width: number; height: number } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const fields = new Map(Object.entries(parsed).map(([k, v]) => [k.toLowerCase(), v as unknown]));
  const width = fields.get('width');
  const height = fields.get('height');
  const valid = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) <= 0xffff;
  return valid(width) && valid(height) ? { width, height } : undefined;
}

function frame(channel: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = channel;
  payload.copy(out, 1);
  return out;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The error-channel Status kubelet sends for a non-zero exit; client-node reads the code from `details.causes`. */
export function nonZeroExit(command: readonly string[], exitCode: number): StreamStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

function refusal(err: unknown): StreamStatus {
  const e = toStreamError(err);
  return { metadata: {}, status: 'Failure', message: e.message, reason: e.reason, code: e.code };
}

const RUNTIME_CODES: Record<RuntimeErrorCode, [number, string]> = {
  NotFound: [404, 'NotFound'],
  AlreadyExists: [409, 'AlreadyExists'],
  FailedPrecondition: [409, 'Conflict'],
  InvalidArgument: [400, 'BadRequest'],
  Unavailable: [503, 'ServiceUnavailable'],
  Internal: [500, 'InternalError'],
};

/** The largest `/registry-login` body: a registry host and a username and password. */
const REGISTRY_LOGIN_MAX_BYTES = 16 * 1024;

/** A request's body as a JSON object; 413 past `maxBytes`, 400 when it is not a JSON object. */
async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) throw new StreamError(413, 'RequestEntityTooLarge', `the body is larger than ${maxBytes} bytes`);
    chunks.push(c);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new StreamError(400, 'BadRequest', `the body is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new StreamError(400, 'BadRequest', 'the body must be a JSON object');
  return doc as Record<string, unknown>;
}

function toStreamError(err: unknown): StreamError {
  if (err instanceof StreamError) return err;
  if (isRuntimeError(err)) {
    const [code, reason] = RUNTIME_CODES[err.code];
    return new StreamError(code, reason, err.message);
  }
  return new StreamError(500, 'InternalError', `internal error: ${(err as Error)?.message ?? String(err)}`);
}

function failure(e: StreamError): StreamStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, code: e.code };
}

/** Writes a whole HTTP error response with a `Status` body on a not-yet-upgraded socket, then closes it. */
export function writeHttpError(socket: Duplex, code: number, status: StreamStatus): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(status);
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** `true`/`1` are true, as Kubernetes' query-parameter conversion reads booleans. */
function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v === 'true' || v === '1';
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new StreamError(400, 'BadRequest', `${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * A CRI log timestamp (RFC3339 with nanoseconds and any offset) as kubelet prints it with
 * `timestamps=true`: UTC, exactly nine fractional digits (`2024-05-01T10:00:00.120000000Z`).
 */
export function toRfc3339NanoUtc(ts: LogLine['timestamp']): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/i.exec(ts);
  if (!m) return ts;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return ts;
  return `${new Date(ms).toISOString().slice(0, 19)}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}Z`;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

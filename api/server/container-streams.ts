/**
 * The streaming subresources of a Container — `log`, `stats`, `exec`, `attach` — as
 * kube-apiserver serves `pods/log`, `pods/exec`, `pods/attach`: authenticate the
 * user, find the container's node, and proxy to that node agent's stream server
 * (`controllers/node/stream-server.ts`). Logs and stats (a JSON `ContainerStatsReport`,
 * or one per line with `stream=true`, as Docker's stats API) are proxied as a plain HTTP stream;
 * exec and attach as a WebSocket upgrade, passed through byte for byte as
 * kube-apiserver's UpgradeAwareHandler does (the sub-protocol the agent picks, the
 * frames, and the close travel unchanged in both directions). `kill` (`POST …/kill?signal=HUP`,
 * `docker kill -s`) is no stream but an imperative call routed the same way: the signal is
 * checked here, sent by the agent, and the agent's `Status` comes back. An exec's query is
 * checked here too (`parseExecOptions`: Kubernetes' options plus berth's `user`, `env`,
 * `workingDir`) and goes to the agent as is.
 */
import http, { type IncomingMessage } from 'node:http';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ApiError, badRequest, internalError, methodNotAllowed, notFound } from '../errors.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import { findResource } from '../registry/resources.ts';
import { parseExecOptions as parseExecQuery, type ContainerExecOptions } from '../types/exec-options.ts';
import { nodeStreamPath, postNode, proxyNodeGet, requestNode, unreachable, type DialNode, type NodeEndpoint } from './node-proxy.ts';
import type { RequestInfo } from './request-info.ts';

/** The streaming subresources of `containers`, for discovery (kube lists `pods/log` as kind Pod, `pods/exec` as PodExecOptions). */
export const CONTAINER_STREAM_SUBRESOURCES: readonly { readonly name: string; readonly kind: string; readonly verbs: readonly string[] }[] = [
  { name: 'log', kind: 'Container', verbs: ['get'] },
  { name: 'stats', kind: 'ContainerStats', verbs: ['get'] },
  { name: 'exec', kind: 'ContainerExecOptions', verbs: ['create', 'get'] },
  { name: 'attach', kind: 'ContainerAttachOptions', verbs: ['create', 'get'] },
  { name: 'kill', kind: 'ContainerKillOptions', verbs: ['create'] },
];

/**
 * Paths served for each subresource: berth's own, and the core `pods` path that
 * `@kubernetes/client-node`'s `Log`, `Exec` and `Attach` hard-code — berth has no Pod
 * kind, so `pods/NAME/{log,exec,attach}` names the Container NAME. `stats` has no
 * `pods` counterpart (kubelet's stats are not an API server path), nor has `kill`: berth's path only.
 */
const pathsOf = (sub: string): string[] =>
  sub === 'stats' || sub === 'kill'
    ? [`/apis/berth.dev/v1/namespaces/:namespace/containers/:name/${sub}`]
    : [`/apis/berth.dev/v1/namespaces/:namespace/containers/:name/${sub}`, `/api/v1/namespaces/:namespace/pods/:name/${sub}`];

export interface ContainerStreamsOptions {
  readonly store: ObjectStore;
  /** Finds the stream server of a node (see `node-proxy.ts`: `storeDialNode`, or the all-in-one's own agent). */
  readonly dialNode: DialNode;
  /**
   * Authenticates WebSocket upgrades: pass the same middleware given to
   * `createApiServer` as `authenticate` (it sees an express request and response over
   * the upgrading socket; a refusal is written there as an HTTP error). Plain HTTP
   * requests (logs) are authenticated by the API server app itself. Absent: none (tests only).
   */
  readonly authenticate?: RequestHandler;
}

export interface ContainerStreams {
  /** Serves `log` and `stats` (and refuses exec/attach without an upgrade): mount it before the resource routes (`extraRouters`). */
  readonly router: express.Router;
  /** Serves exec and attach: attach to the HTTPS server with `server.on('upgrade', streams.handleUpgrade)`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

interface UpgradeConnection {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/**
 * Builds the router and the upgrade handler of the container streaming subresources.
 *
 * A request for a Container that does not exist gets 404, one not bound to a node
 * 400 (`container NAME is not running on a node yet`), one whose node cannot be
 * reached 503 — all as `Status`. Whatever the agent answers (including its own
 * refusals — `stats` of a stopped container is 409 — and the error-channel `Status`
 * of an exec) reaches the client unchanged.
 */
export function containerStreams(opts: ContainerStreamsOptions): ContainerStreams {
  const containers = findResource('berth.dev', 'v1', 'containers');
  if (!containers) throw new Error('the containers resource is not served');

  const resolve = async (namespace: string, name: string): Promise<NodeEndpoint> => {
    const obj = await opts.store.tryGet(containers, namespace, name);
    if (!obj) throw notFound({ group: containers.group, resource: containers.plural }, name);
    const nodeName = (obj.status?.nodeName ?? obj.spec?.nodeName) as string | undefined;
    if (!nodeName) throw badRequest(`container ${name} is not running on a node yet`);
    let endpoint: NodeEndpoint | undefined;
    try {
      endpoint = await opts.dialNode(nodeName);
    } catch (err) {
      throw new ApiError('ServiceUnavailable', 503, `cannot reach node ${nodeName}: ${(err as Error).message}`, undefined, { cause: err });
    }
    if (!endpoint) throw new ApiError('ServiceUnavailable', 503, `node ${nodeName} has no stream endpoint: is its agent running?`);
    return endpoint;
  };

  const router = express.Router();
  for (const sub of ['log', 'stats', 'exec', 'attach']) {
    router.all(pathsOf(sub), (req: Request, res: Response, next: NextFunction) => {
      res.locals.requestInfo = requestInfoOf(req, sub);
      if (sub !== 'log' && sub !== 'stats') return next(badRequest('Upgrade request required'));
      if (req.method !== 'GET') return next(methodNotAllowed('the server does not allow this method on the requested resource'));
      return proxyGet(req, res, sub).catch(next);
    });
  }

  router.all(pathsOf('kill'), (req: Request, res: Response, next: NextFunction) => {
    res.locals.requestInfo = requestInfoOf(req, 'kill');
    if (req.method !== 'POST') return next(methodNotAllowed('the server does not allow this method on the requested resource'));
    return proxyKill(req, res).catch(next);
  });

  /** `kill?signal=SIG`: one valid signal, sent by the container's node; its answer (a `Status`) as is. */
  async function proxyKill(req: Request, res: Response): Promise<void> {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const given = new URLSearchParams(searchOf(req)).getAll('signal');
    const signal = given.length === 1 ? linuxSignalName(given[0]!) : undefined;
    if (!signal) {
      const message =
        given.length === 0 || given[0] === ''
          ? 'signal: Required value: a Linux signal, by name (HUP, SIGTERM) or number'
          : given.length > 1
            ? 'signal: Invalid value: give one signal'
            : `signal: Invalid value: ${JSON.stringify(given[0])}: not a Linux signal (a name such as HUP or SIGTERM, or its number)`;
      throw badRequest(message, [{ reason: given.length === 0 ? 'FieldValueRequired' : 'FieldValueInvalid', field: 'signal', message }]);
    }
    const endpoint = await resolve(namespace, name).catch((err: unknown) => {
      // never scheduled: nothing runs to be signalled (Docker's "is not running")
      throw err instanceof ApiError && err.code === 400 ? new ApiError('Conflict', 409, `container ${name} is not running`) : err;
    });
    const answer = await postNode(endpoint, nodeStreamPath(namespace, name, 'kill', `?signal=${signal}`));
    res.status(answer.status).type(answer.type).send(answer.body);
  }

  async function proxyGet(req: Request, res: Response, sub: 'log' | 'stats'): Promise<void> {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const endpoint = await resolve(namespace, name);
    await proxyNodeGet(endpoint, nodeStreamPath(namespace, name, sub, searchOf(req)), res, sub === 'log' ? 'text/plain' : 'application/json');
  }

  // Upgrades run through their own express app, so `authenticate` sees the request and response it expects.
  const connections = new WeakMap<IncomingMessage, UpgradeConnection>();
  const upgradeApp = express();
  upgradeApp.disable('x-powered-by');
  upgradeApp.disable('etag');
  upgradeApp.set('query parser', 'simple');
  if (opts.authenticate) upgradeApp.use(opts.authenticate);
  for (const sub of ['exec', 'attach']) {
    upgradeApp.all(pathsOf(sub), (req: Request, res: Response, next: NextFunction) => {
      if (req.method !== 'GET' && req.method !== 'POST') return next(methodNotAllowed('the server does not allow this method on the requested resource'));
      return proxyUpgrade(req, res, sub).catch(next);
    });
  }
  upgradeApp.use((_req: Request, _res: Response, next: NextFunction) => next(new ApiError('NotFound', 404, 'the server could not find the requested resource')));
  upgradeApp.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err instanceof ApiError ? err : internalError(err);
    if (res.headersSent) return void res.destroy();
    res.status(e.code).type('application/json').send(JSON.stringify(e.toStatus()));
  });

  async function proxyUpgrade(req: Request, res: Response, sub: string): Promise<void> {
    const conn = connections.get(req);
    if (!conn) throw internalError(new Error('upgrade request without its socket'));
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      throw badRequest('only WebSocket upgrades are served, with v5.channel.k8s.io or v4.channel.k8s.io (SPDY is not supported)');
    }
    // Bad exec options are refused here, before the node is looked up; the query goes to the agent as is.
    if (sub === 'exec') parseExecOptions(new URLSearchParams(searchOf(req)));
    const { namespace, name } = req.params as { namespace: string; name: string };
    const endpoint = await resolve(namespace, name);
    const headers: http.OutgoingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket' };
    for (const h of ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions']) {
      if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    }
    const upstream = requestNode(endpoint, nodeStreamPath(namespace, name, sub, searchOf(req)), headers);
    upstream.on('upgrade', (agentRes, agentSocket, agentHead) => {
      res.detachSocket(conn.socket as Socket);
      const lines = ['HTTP/1.1 101 Switching Protocols'];
      for (let i = 0; i + 1 < agentRes.rawHeaders.length; i += 2) lines.push(`${agentRes.rawHeaders[i]}: ${agentRes.rawHeaders[i + 1]}`);
      conn.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (agentHead.length) conn.socket.write(agentHead);
      if (conn.head.length) agentSocket.write(conn.head);
      splice(conn.socket, agentSocket);
    });
    // The agent refused the upgrade: its answer (a Status) goes to the client as is.
    upstream.on('response', (agentRes) => {
      res.status(agentRes.statusCode ?? 502);
      res.setHeader('Content-Type', agentRes.headers['content-type'] ?? 'application/json');
      agentRes.pipe(res);
    });
    upstream.on('error', (err) => {
      if (res.headersSent || !res.socket) return void conn.socket.destroy();
      const e = unreachable(endpoint, err);
      res.status(e.code).type('application/json').send(JSON.stringify(e.toStatus()));
    });
    conn.socket.on('close', () => {
      if (res.socket) upstream.destroy(); // gone before the agent answered
    });
    upstream.end();
  }

  return {
    router,
    handleUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      const res = new http.ServerResponse(req);
      res.assignSocket(socket as Socket);
      // An answer written here (a refusal) ends the connection: no keep-alive on an upgrade request.
      res.shouldKeepAlive = false;
      res.on('finish', () => socket.end());
      connections.set(req, { socket, head });
      upgradeApp(req as Request, res as Response);
    },
  };
}

function requestInfoOf(req: Request, subresource: string): RequestInfo {
  return {
    verb: subresource === 'log' || subresource === 'stats' ? 'get' : req.method === 'POST' ? 'create' : 'get',
    group: 'berth.dev',
    resource: 'containers',
    subresource,
    scope: 'resource',
  };
}

/** Reads and checks an exec's query as the node agent does; throws a 400 `ApiError` naming what is wrong. */
export function parseExecOptions(q: URLSearchParams): ContainerExecOptions {
  return parseExecQuery(q, badRequest);
}

/**
 * A signal as the `kill` subresource takes it — a Linux signal's name, with or without `SIG`,
 * in any case, or its number — as its `SIG…` name (`hup` → `SIGHUP`, `15` → `SIGTERM`);
 * undefined when Linux has no such signal.
 */
export function linuxSignalName(value: string): string | undefined {
  const s = value.trim().toUpperCase();
  const table = constants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) return Object.keys(table).find((k) => table[k] === Number(s));
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  return Object.hasOwn(table, name) ? name : undefined;
}

export function searchOf(req: Request): string {
  const i = req.originalUrl.indexOf('?');
  return i < 0 ? '' : req.originalUrl.slice(i);
}

/** Joins two upgraded connections; when either ends or fails, both go. */
function splice(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', end);
    s.on('close', end);
  }
}

/**
 * The API server's HTTP application: authentication, request logging and metrics,
 * health, version, discovery, OpenAPI, and the REST handler for every resource.
 * `api/server` is the only place where errors become `Status` responses.
 */
import { setMaxListeners } from 'node:events';
import { parse as parseQuery } from 'node:querystring';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { ApiError, internalError, methodNotAllowed, type Status } from '../errors.ts';
import { isStoreError } from '../../store/revision-log.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import { aggregatedDiscovery, apiGroup, apiGroupList, apiResourceList, apiVersions, negotiateAggregated, VERSION_INFO } from './discovery.ts';
import { groupsOf } from '../registry/resources.ts';
import { parseResourcePath, verbOf, type RequestInfo } from './request-info.ts';
import { handleResource } from './resource-handler.ts';
import { mediaType } from './body.ts';
import { openApiRouter } from './openapi.ts';
import type { WatchHooks } from './watch.ts';
import { endJson, isPlainNode, pathOf } from './plain-node.ts';

export interface ApiServerOptions {
  readonly store: ObjectStore;
  readonly logger: Logger;
  /** Authenticates every request (after the observers); absent: no authentication (tests only). */
  readonly authenticate?: express.RequestHandler;
  /** Middleware that observes every request (logs, metrics), including refused ones; run first. */
  readonly observers?: readonly express.RequestHandler[];
  /** Serves `/metrics`. */
  readonly metricsHandler?: express.RequestHandler;
  readonly watchHooks?: WatchHooks;
  /** Readiness: false until the server is ready, then true. */
  readonly isReady?: () => boolean;
  readonly minWatchTimeoutMs?: number;
  readonly bookmarkIntervalMs?: number;
  /**
   * Extra routers mounted before the API (e.g. the registry at /v2). They never see
   * requests for a served resource or its `status` (those go straight to the API).
   */
  readonly extraRouters?: readonly express.Router[];
}

export interface ApiServer {
  readonly app: express.Express;
  /** Ends every open watch (the streams end cleanly) so that the HTTP server can close. */
  shutdown(): void;
}

const sendStatus = (res: Response, err: ApiError): void => {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  endJson(res, err.code, JSON.stringify(err.toStatus()));
};

/** Converts any error to an `ApiError` (the single conversion point). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isStoreError(err, 'Compacted')) return new ApiError('Expired', 410, `too old resource version: ${err.message}`);
  // A write that lost a race with another writer (e.g. a PUT whose precondition held when read): the client retries.
  if (isStoreError(err, 'RevisionMismatch')) return new ApiError('Conflict', 409, `Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again`);
  if ((err as { type?: string }).type === 'entity.too.large') return new ApiError('RequestEntityTooLarge', 413, 'request entity too large');
  return internalError(err);
}

/** Builds the express application of the API server. */
export function createApiServer(opts: ApiServerOptions): ApiServer {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const shutdown = new AbortController();
  // every open watch listens for shutdown (and removes its listener when it ends): no limit to warn at
  setMaxListeners(0, shutdown.signal);

  for (const o of opts.observers ?? []) app.use(o);
  if (opts.authenticate) app.use(opts.authenticate);

  const ok = (_req: Request, res: Response) => res.type('text/plain').send('ok');
  app.get('/healthz', ok);
  app.get('/livez', ok);
  app.get('/readyz', (_req, res) => {
    if (opts.isReady && !opts.isReady()) return res.status(503).type('text/plain').send('not ready');
    return res.type('text/plain').send('ok');
  });
  app.get('/version', (_req, res) => res.json(VERSION_INFO));
  if (opts.metricsHandler) app.get('/metrics', opts.metricsHandler);
  app.use(openApiRouter());
  for (const r of opts.extraRouters ?? []) app.use(r);

  const discovery = (which: 'api' | 'apis') => (req: Request, res: Response) => {
    const v = negotiateAggregated(req.headers.accept);
    if (v) {
      res.setHeader('Content-Type', `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`);
      res.setHeader('Vary', 'Accept');
      // end(), not send(): express would rewrite the media type's parameters and add a charset.
      return res.end(JSON.stringify(aggregatedDiscovery(which, v)));
    }
    res.setHeader('Vary', 'Accept');
    return res.json(which === 'api' ? apiVersions() : apiGroupList());
  };
  app.get('/api', discovery('api'));
  app.get('/apis', discovery('apis'));

  const watchDeps = {
    store: opts.store,
    shutdown: shutdown.signal,
    ...(opts.watchHooks ? { hooks: opts.watchHooks } : {}),
    ...(opts.minWatchTimeoutMs ? { minWatchTimeoutMs: opts.minWatchTimeoutMs } : {}),
    ...(opts.bookmarkIntervalMs ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
  };

  /** Serves a request below a group-version; uses only Node's http API, as `handleResource` does. */
  const route = async (req: Request, res: Response, group: string, version: string, rest: string[], query: Record<string, unknown>) => {
    if (!SERVED_GROUP_VERSIONS.has(`${group}/${version}`)) return notFoundPath(res);
    if (rest.length === 0) {
      if (req.method !== 'GET') throw methodNotAllowed('the server does not allow this method on the requested resource');
      return endJson(res, 200, JSON.stringify(apiResourceList(group, version)));
    }
    const rr = parseResourcePath(group, version, rest);
    if (!rr) return notFoundPath(res);
    const verb = verbOf(req.method, rr, query, mediaType(req.headers['content-type']));
    const r = rr.resource;
    const info: RequestInfo = {
      verb: verb ?? req.method.toLowerCase(),
      group: r.group,
      resource: r.plural,
      subresource: rr.subresource ?? '',
      scope: rr.name ? 'resource' : rr.namespace ? 'namespace' : 'cluster',
    };
    res.locals.requestInfo = info;
    if (!verb) throw methodNotAllowed(`the server does not allow this method on the requested resource`);
    await handleResource(watchDeps, req, res, rr, verb, query);
  };

  const query = (req: Request) => req.query as Record<string, unknown>;
  app.all('/api/v1', (req, res, next) => route(req, res, '', 'v1', [], query(req)).catch(next));
  app.all('/api/v1/*rest', (req, res, next) => route(req, res, '', 'v1', (req.params as { rest: string[] }).rest, query(req)).catch(next));
  app.get('/apis/:group', (req, res) => {
    const g = apiGroup(req.params.group);
    if (!g) return notFoundPath(res);
    return res.json(g);
  });
  app.all('/apis/:group/:version', (req, res, next) => route(req, res, req.params.group!, req.params.version!, [], query(req)).catch(next));
  app.all('/apis/:group/:version/*rest', (req, res, next) =>
    route(req, res, req.params.group!, req.params.version!, (req.params as { rest: string[] }).rest, query(req)).catch(next),
  );

  const failed = (err: unknown, req: Request, res: Response): void => {
    const e = toApiError(err);
    if (e.code >= 500) opts.logger.error({ err: (e.cause as Error | undefined) ?? err, path: pathOf(req.url), method: req.method }, 'request failed');
    sendStatus(res, e);
  };
  app.use((_req: Request, res: Response) => notFoundPath(res));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => failed(err, req, res));

  // Requests for resources, nearly all of the traffic, skip express's router: they run
  // the observers and authentication, then their handler, directly. The router would
  // match each of them against every route and router above, for a few percent of the
  // CPU of a request. Other paths, and unusual resource paths, take the router.
  // When the observers and authentication need nothing of express either (plain-node.ts),
  // the request and response also keep their own prototypes: giving them express's
  // costs more than the router (see plain-node.ts).
  const chain: readonly express.RequestHandler[] = [...(opts.observers ?? []), ...(opts.authenticate ? [opts.authenticate] : [])];
  const plain = chain.every(isPlainNode);
  const routed = app as unknown as { handle: (req: Request, res: Response, callback?: NextFunction) => void };
  const viaRouter = routed.handle.bind(app);
  routed.handle = (req, res, callback) => {
    const target = resourceTarget(req.url);
    if (!target) return viaRouter(req, res, callback);
    if (!plain) {
      // What express's `app.handle` does before its router runs.
      req.res = res;
      res.req = req;
      Object.setPrototypeOf(req, app.request);
      Object.setPrototypeOf(res, app.response);
    }
    if (!res.locals) res.locals = Object.create(null);
    // Express's 'simple' query parser.
    const q = req.url.indexOf('?');
    const query = q < 0 ? {} : parseQuery(req.url.slice(q + 1));
    let i = 0;
    const fail = (e: unknown): void => failed(e, req, res);
    const next = (err?: unknown): void => {
      if (err) return fail(err);
      const h = chain[i++];
      if (!h) return void route(req, res, target.group, target.version, target.rest, query).catch(fail);
      try {
        // As express 5 does, a handler's rejected promise is its error.
        const r = h(req, res, next) as unknown;
        if (r instanceof Promise) r.catch(fail);
      } catch (e) {
        fail(e);
      }
    };
    next();
  };

  return { app, shutdown: () => shutdown.abort() };
}

/** `group/version` of every served group-version ('' group for core). */
const SERVED_GROUP_VERSIONS = new Set(groupsOf().flatMap((g) => g.versions.map((v) => `${g.group}/${v}`)));

/**
 * The group, version and decoded path segments of a request for a served resource (a
 * collection, an object or its `status`), as the `/api/v1/*rest` and
 * `/apis/:group/:version/*rest` routes would pass them, or undefined for every other
 * path and for unusual ones (empty segments, bad escapes), which take the routes.
 */
function resourceTarget(url: string): { group: string; version: string; rest: string[] } | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  let group: string;
  let version: string;
  let rest: string[];
  if (path.startsWith('/api/v1/')) {
    group = '';
    version = 'v1';
    rest = path.slice('/api/v1/'.length).split('/');
  } else if (path.startsWith('/apis/')) {
    const parts = path.slice('/apis/'.length).split('/');
    if (parts.length < 3) return undefined;
    group = parts[0]!;
    version = parts[1]!;
    rest = parts.slice(2);
  } else return undefined;
  if (!SERVED_GROUP_VERSIONS.has(`${group}/${version}`)) return undefined;
  try {
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '') return undefined;
      if (rest[i]!.includes('%')) rest[i] = decodeURIComponent(rest[i]!);
    }
  } catch {
    return undefined;
  }
  const rr = parseResourcePath(group, version, rest);
  if (!rr || (rr.subresource !== undefined && rr.subresource !== 'status')) return undefined;
  return { group, version, rest };
}

function notFoundPath(res: Response): void {
  const body: Status = {
    apiVersion: 'v1',
    kind: 'Status',
    metadata: {},
    status: 'Failure',
    message: 'the server could not find the requested resource',
    reason: 'NotFound',
    details: {},
    code: 404,
  };
  endJson(res, 404, JSON.stringify(body));
}

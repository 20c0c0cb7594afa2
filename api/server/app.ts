/**
 * The API server's HTTP application: authentication, request logging and metrics,
 * health, version, discovery, OpenAPI, and the REST handler for every resource.
 * `api/server` is the only place where errors become `Status` responses.
 */
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
  /** Extra routers mounted before the API (e.g. the registry at /v2). */
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
  res.status(err.code).type('application/json').send(JSON.stringify(err.toStatus()));
};

/** Converts any error to an `ApiError` (the single conversion point). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isStoreError(err, 'Compacted')) return new ApiError('Expired', 410, `too old resource version: ${err.message}`);
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

  const route = async (req: Request, res: Response, group: string, version: string, rest: string[]) => {
    if (!groupsOf().some((g) => g.group === group && g.versions.includes(version))) return notFoundPath(res);
    if (rest.length === 0) {
      if (req.method !== 'GET') throw methodNotAllowed('the server does not allow this method on the requested resource');
      return void res.json(apiResourceList(group, version));
    }
    const rr = parseResourcePath(group, version, rest);
    if (!rr) return notFoundPath(res);
    const verb = verbOf(req.method, rr, req.query as Record<string, unknown>, mediaType(req.headers['content-type']));
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
    await handleResource(watchDeps, req, res, rr, verb);
  };

  app.all('/api/v1', (req, res, next) => route(req, res, '', 'v1', []).catch(next));
  app.all('/api/v1/*rest', (req, res, next) => route(req, res, '', 'v1', (req.params as { rest: string[] }).rest).catch(next));
  app.get('/apis/:group', (req, res) => {
    const g = apiGroup(req.params.group);
    if (!g) return notFoundPath(res);
    return res.json(g);
  });
  app.all('/apis/:group/:version', (req, res, next) => route(req, res, req.params.group!, req.params.version!, []).catch(next));
  app.all('/apis/:group/:version/*rest', (req, res, next) =>
    route(req, res, req.params.group!, req.params.version!, (req.params as { rest: string[] }).rest).catch(next),
  );

  app.use((_req: Request, res: Response) => notFoundPath(res));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toApiError(err);
    if (e.code >= 500) opts.logger.error({ err: (e.cause as Error | undefined) ?? err, path: req.path, method: req.method }, 'request failed');
    sendStatus(res, e);
  });

  return { app, shutdown: () => shutdown.abort() };
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
  res.status(404).type('application/json').send(JSON.stringify(body));
}

/**
 * The API server's access log: one structured line per finished request.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { plainNode } from './plain-node.ts';

/** Query parameters whose values never reach the log. */
const SECRET_QUERY_KEY = /token|password|passwd|secret|key|auth|credential|signature/i;

export const REDACTED = '[Redacted]';

/** One access log entry, as logged (`msg` is `request`). */
export interface RequestLogEntry {
  /** kube's request verb from `res.locals.requestInfo`, else the HTTP method in lower case. */
  readonly verb: string;
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The query string with secret-looking values replaced by `[Redacted]`; absent when empty. */
  readonly query?: string;
  /** `res.locals.user.name`, absent when the request was not authenticated. */
  readonly user?: string;
  /** HTTP status; 0 when the client left before any response. */
  readonly code: number;
  readonly durationMs: number;
  readonly userAgent?: string;
  readonly remoteAddress?: string;
  /** Present on watches, which are logged when they end. */
  readonly watch?: true;
  /** Present when the connection closed before the response was complete. */
  readonly aborted?: true;
}

/**
 * Express middleware, mounted first, that logs one line per request when its
 * response is closed — so a watch is logged when it ends, not when it starts.
 * Level `error` for codes from 500 up, `info` otherwise (code 0 included).
 * Never logs headers or bodies; query values whose key looks like a secret
 * are redacted.
 */
export function requestLogger(logger: Logger): RequestHandler {
  // Node's http API only (see plain-node.ts).
  return plainNode((req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const code = res.headersSent ? res.statusCode : 0;
      if (!logger.isLevelEnabled(code >= 500 ? 'error' : 'info')) return;
      const info = res.locals.requestInfo as { verb?: string } | undefined;
      const user = res.locals.user as { name?: string } | undefined;
      const url = req.originalUrl || req.url;
      const q = url.indexOf('?');
      const query = q < 0 ? '' : redactQuery(url.slice(q + 1));
      const entry: Record<string, unknown> = {
        verb: info?.verb ?? req.method.toLowerCase(),
        method: req.method,
        path: q < 0 ? url : url.slice(0, q),
        code,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
      };
      if (query) entry.query = query;
      if (user?.name) entry.user = user.name;
      if (req.headers['user-agent']) entry.userAgent = req.headers['user-agent'];
      if (req.socket.remoteAddress) entry.remoteAddress = req.socket.remoteAddress;
      if (info?.verb === 'watch' || info?.verb === 'watchlist') entry.watch = true;
      if (!res.writableFinished) entry.aborted = true;
      if (code >= 500) logger.error(entry, 'request');
      else logger.info(entry, 'request');
    });
    next();
  });
}

function redactQuery(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = key;
      try {
        decoded = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // keep the raw key; a malformed escape is no reason to lose the line
      }
      return eq >= 0 && SECRET_QUERY_KEY.test(decoded) ? `${key}=${REDACTED}` : pair;
    })
    .join('&');
}

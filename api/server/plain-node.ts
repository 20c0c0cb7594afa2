/**
 * Middleware that needs nothing of express on the request and response: only Node's
 * `http` API, and `res.locals`. The API server calls such middleware, and its resource
 * handlers, on Node's own request and response objects. Giving each request express's
 * prototypes (`Object.setPrototypeOf`, as express does) makes V8 keep much of every
 * request alive through a young-generation collection: scavenges of several
 * milliseconds and a growing heap, at a fifth of the throughput.
 */
import type { RequestHandler } from 'express';

const PLAIN_NODE = Symbol.for('berth.plainNodeMiddleware');

/** Marks `handler` as using only Node's `http` API (and `res.locals`) on its arguments. */
export function plainNode<T extends RequestHandler>(handler: T): T {
  (handler as unknown as Record<symbol, boolean>)[PLAIN_NODE] = true;
  return handler;
}

/** Whether `handler` was marked by `plainNode`. */
export const isPlainNode = (handler: unknown): boolean =>
  typeof handler === 'function' && (handler as unknown as Record<symbol, unknown>)[PLAIN_NODE] === true;

/** The path of a request target, without the query (express's `req.path`). */
export function pathOf(url: string): string {
  if (url.startsWith('/')) {
    const q = url.indexOf('?');
    return q < 0 ? url : url.slice(0, q);
  }
  try {
    return new URL(url, 'http://localhost').pathname;
  } catch {
    return url;
  }
}

/** Sends a JSON body with Node's API: `Content-Type: application/json`, as kube-apiserver does. */
export function endJson(res: { statusCode: number; setHeader(name: string, value: string | number): unknown; end(body: string): unknown }, code: number, text: string): void {
  res.statusCode = code;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

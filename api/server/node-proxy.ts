/**
 * How the API server reaches a node agent's stream server (logs, exec) — the
 * apiserver → kubelet connection: which URL, which CA, which bearer token.
 */
import http, { type ServerResponse } from 'node:http';
import https from 'node:https';
import { ApiError } from '../errors.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import { findResource } from '../registry/resources.ts';

/** Where a node's stream server listens and how to trust and authenticate to it. */
export interface NodeEndpoint {
  /** Base URL of the agent's stream server, `https://10.0.0.5:10250`. */
  readonly url: string;
  /** PEM CA bundle that signed the agent's serving certificate; absent: the system roots. */
  readonly ca?: string;
  /** Bearer token the agent accepts from the API server. */
  readonly token: string;
  /**
   * A Unix socket of the same stream server in plain HTTP (an agent on this machine,
   * as in `berth server`): dialled instead of `url`, with no TLS handshake per stream.
   */
  readonly socketPath?: string;
}

/** Finds the stream server of a node by its name; undefined when the node has none (yet). */
export type DialNode = (nodeName: string) => Promise<NodeEndpoint | undefined>;

/**
 * Annotation on a `Node` with the URL of its agent's stream server. The agent sets it
 * when it registers; `storeDialNode` reads it. (Node status has no `daemonEndpoints`.)
 */
export const STREAM_ENDPOINT_ANNOTATION = 'berth.dev/stream-endpoint';
/**
 * Annotation on a `Node` with the PEM CA certificate its stream server's serving
 * certificate chains to (each agent makes its own). Trusted because only an
 * authenticated API client can have written it.
 */
export const STREAM_CA_ANNOTATION = 'berth.dev/stream-ca';

export interface StoreDialNodeOptions {
  readonly store: ObjectStore;
  /** CA to trust for a node whose Node carries no `STREAM_CA_ANNOTATION`; absent: the system roots. */
  readonly ca?: string;
  /** The token every agent accepts from the API server. */
  readonly token: string;
}

/** A `DialNode` that reads the `STREAM_ENDPOINT_ANNOTATION` (and `STREAM_CA_ANNOTATION`) of the `Node` object from the store. */
export function storeDialNode(opts: StoreDialNodeOptions): DialNode {
  const nodes = findResource('berth.dev', 'v1', 'nodes');
  if (!nodes) throw new Error('the nodes resource is not served');
  return async (nodeName) => {
    const node = await opts.store.tryGet(nodes, '', nodeName);
    const url = node?.metadata?.annotations?.[STREAM_ENDPOINT_ANNOTATION] as string | undefined;
    if (!url) return undefined;
    const ca = (node?.metadata?.annotations?.[STREAM_CA_ANNOTATION] as string | undefined) ?? opts.ca;
    return { url, token: opts.token, ...(ca ? { ca } : {}) };
  };
}

/**
 * Starts a request (`GET` unless `method` says otherwise) of `pathAndQuery` on the node's stream server with its bearer token
 * (and `headers`, e.g. a WebSocket upgrade's); HTTP or HTTPS by the endpoint's URL, plain HTTP over its local socket if it has one.
 * The caller listens for `response`/`upgrade`/`error` and calls `end()`.
 */
export function requestNode(endpoint: NodeEndpoint, pathAndQuery: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET'): http.ClientRequest {
  const base = new URL(endpoint.url);
  const url = new URL(base.pathname.replace(/\/+$/, '') + pathAndQuery, base);
  const options: https.RequestOptions = {
    method,
    headers: { ...headers, authorization: `Bearer ${endpoint.token}` },
    agent: false,
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
  };
  if (endpoint.socketPath) {
    url.protocol = 'http:';
    return http.request(url, { ...options, socketPath: endpoint.socketPath });
  }
  return url.protocol === 'https:' ? https.request(url, options) : http.request(url, options);
}

/** The path of a container's stream on its node's stream server (see `controllers/node/stream-server.ts`). */
export function nodeStreamPath(namespace: string, name: string, subresource: string, search: string): string {
  return `/containers/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${subresource}${search}`;
}

/**
 * A `POST` of `pathAndQuery` on the node's stream server with its bearer token (and a
 * JSON `body` if given); resolves with the whole (small) answer. Rejects with 503 when
 * the node cannot be reached.
 */
export function postNode(endpoint: NodeEndpoint, pathAndQuery: string, body?: Buffer): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/json', 'content-length': body.length } : { 'content-length': 0 };
    const req = requestNode(endpoint, pathAndQuery, headers, 'POST');
    req.on('response', (agentRes) => {
      const chunks: Buffer[] = [];
      agentRes.on('data', (c: Buffer) => chunks.push(c));
      agentRes.on('end', () => resolve({ status: agentRes.statusCode ?? 502, type: agentRes.headers['content-type'] ?? 'application/json', body: Buffer.concat(chunks) }));
      agentRes.on('error', (err) => reject(unreachable(endpoint, err)));
    });
    req.on('error', (err) => reject(unreachable(endpoint, err)));
    req.end(body);
  });
}

/** The 503 for a node whose stream server cannot be reached. */
export function unreachable(endpoint: NodeEndpoint, err: Error): ApiError {
  return new ApiError('ServiceUnavailable', 503, `error dialing the node's stream server ${endpoint.url}: ${err.message}`, undefined, { cause: err });
}

/**
 * Proxies a `GET` of `pathAndQuery` on the node's stream server to `res`, streaming
 * (follow, large downloads) with back-pressure; the agent's status, content type and
 * headers that describe the body pass through, its refusals (a `Status`) too. Stops
 * when the client goes. Rejects with 503 when the node cannot be reached.
 */
export async function proxyNodeGet(endpoint: NodeEndpoint, pathAndQuery: string, res: ServerResponse, defaultType: string): Promise<void> {
  const upstream = requestNode(endpoint, pathAndQuery);
  res.on('close', () => upstream.destroy()); // the client went: stop following
  await new Promise<void>((done, fail) => {
    upstream.on('response', (agentRes) => {
      res.statusCode = agentRes.statusCode ?? 502;
      res.setHeader('Content-Type', agentRes.headers['content-type'] ?? defaultType);
      for (const h of ['content-length', 'content-disposition']) if (agentRes.headers[h] !== undefined) res.setHeader(h, agentRes.headers[h]!);
      res.setHeader('Cache-Control', 'no-cache');
      res.flushHeaders();
      agentRes.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          agentRes.pause();
          res.once('drain', () => agentRes.resume());
        }
      });
      agentRes.on('end', () => res.end());
      agentRes.on('error', () => res.destroy());
      done();
    });
    upstream.on('error', (err) => {
      if (res.headersSent) res.destroy();
      else fail(unreachable(endpoint, err));
    });
    upstream.end();
  });
}

/** Path on a node's stream server of an Image's `log` or `export`. */
export function nodeImagePath(namespace: string, name: string, subresource: 'log' | 'export', search: string): string {
  return `/images/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${subresource}${search}`;
}

/**
 * How the API server reaches a node agent's stream server (logs, exec) — the
 * apiserver → kubelet connection: which URL, which CA, which bearer token.
 */
import http from 'node:http';
import https from 'node:https';
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
 * Starts a `GET` of `pathAndQuery` on the node's stream server with its bearer token
 * (and `headers`, e.g. a WebSocket upgrade's); HTTP or HTTPS by the endpoint's URL.
 * The caller listens for `response`/`upgrade`/`error` and calls `end()`.
 */
export function requestNode(endpoint: NodeEndpoint, pathAndQuery: string, headers: http.OutgoingHttpHeaders = {}): http.ClientRequest {
  const base = new URL(endpoint.url);
  const url = new URL(base.pathname.replace(/\/+$/, '') + pathAndQuery, base);
  const options: https.RequestOptions = {
    method: 'GET',
    headers: { ...headers, authorization: `Bearer ${endpoint.token}` },
    agent: false,
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
  };
  return url.protocol === 'https:' ? https.request(url, options) : http.request(url, options);
}

/** The path of a container's stream on its node's stream server (see `controllers/node/stream-server.ts`). */
export function nodeStreamPath(namespace: string, name: string, subresource: string, search: string): string {
  return `/containers/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${subresource}${search}`;
}

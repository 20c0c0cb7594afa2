/**
 * Resolves a request path to a resource request, as apiserver's `RequestInfoFactory`:
 * group, version, namespace, resource, name, subresource and the Kubernetes verb.
 */
import { RESOURCES, type ResourceInfo } from '../registry/resources.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'apply' | 'delete' | 'deletecollection';

/** A request for one resource (or one object of it). */
export interface ResourceRequest {
  readonly resource: ResourceInfo;
  /** '' for cluster-scoped resources and all-namespace lists. */
  readonly namespace: string;
  readonly name?: string;
  readonly subresource?: string;
}

/** The labels of a request for metrics and logs. */
export interface RequestInfo {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly scope: 'namespace' | 'cluster' | 'resource' | '';
}

/**
 * Parses `/api/v1/...` or `/apis/<group>/<version>/...` below the group-version.
 * Returns undefined when the path names no served resource (404).
 */
export function parseResourcePath(group: string, version: string, rest: readonly string[]): ResourceRequest | undefined {
  const inGv = (plural: string) => RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const r = inGv(rest[2]!);
    if (r?.namespaced) {
      if (rest.length > 5) return undefined;
      return { resource: r, namespace: rest[1]!, ...(rest[3] ? { name: rest[3] } : {}), ...(rest[4] ? { subresource: rest[4] } : {}) };
    }
  }
  const r = inGv(rest[0] ?? '');
  if (!r || rest.length > 3) return undefined;
  if (r.namespaced && rest.length > 1) return undefined;
  return { resource: r, namespace: '', ...(rest[1] ? { name: rest[1] } : {}), ...(rest[2] ? { subresource: rest[2] } : {}) };
}

/** The Kubernetes verb of an HTTP method on a resource path. */
export function verbOf(method: string, rr: ResourceRequest, query: Record<string, unknown>, contentType: string): Verb | undefined {
  const watch = query.watch === 'true' || query.watch === '1';
  switch (method) {
    case 'GET':
      return rr.name ? 'get' : watch ? 'watch' : 'list';
    case 'POST':
      return rr.name ? undefined : 'create';
    case 'PUT':
      return rr.name ? 'update' : undefined;
    case 'PATCH':
      return rr.name ? (contentType.startsWith('application/apply-patch') ? 'apply' : 'patch') : undefined;
    case 'DELETE':
      return rr.name ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}

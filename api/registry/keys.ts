/**
 * Storage keys of objects. One prefix per resource, then namespace and name:
 * `/berth.dev/containers/default/web`, `/core/namespaces/default` (cluster-scoped).
 * A resource's keys all start with `resourcePrefix(r)`, a namespace's with `namespacePrefix`.
 */
import type { ResourceInfo } from './resources.ts';

/** The key prefix of every object of one resource, ending in `/`. */
export const resourcePrefix = (r: Pick<ResourceInfo, 'group' | 'plural'>): string => `/${r.group || 'core'}/${r.plural}/`;

/** The key prefix of one namespace's objects of one resource, ending in `/`. */
export const namespacePrefix = (r: Pick<ResourceInfo, 'group' | 'plural'>, namespace: string): string =>
  `${resourcePrefix(r)}${namespace}/`;

/** The key of one object. */
export const objectKey = (r: Pick<ResourceInfo, 'group' | 'plural' | 'namespaced'>, namespace: string, name: string): string =>
  r.namespaced ? `${resourcePrefix(r)}${namespace}/${name}` : `${resourcePrefix(r)}${name}`;

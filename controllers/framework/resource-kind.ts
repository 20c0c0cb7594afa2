/**
 * Descriptors of the kinds controllers read and write, and the REST paths and keys
 * derived from them. Each constant doubles as the object's type, so
 * `import { Container } from '.../framework'` gives both `client.get(Container, …)`
 * and `const c: Container`.
 */
import type * as api from '../../api/types/index.ts';
import type { KubeObject } from '../../api/types/index.ts';

/**
 * One served kind: where it lives in the API and whether it is namespaced.
 * `T` is the object type; it exists only for type inference.
 */
export interface ResourceKind<T extends KubeObject = KubeObject> {
  /** API group; '' for core (`v1`). */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural: the path segment. */
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Phantom: never set. */
  readonly __object?: T;
}

/** The object type of a `ResourceKind`. */
export type ObjectOf<K> = K extends ResourceKind<infer T> ? T : never;

/** Declares a kind. */
export function resourceKind<T extends KubeObject>(
  group: string,
  version: string,
  plural: string,
  kind: string,
  namespaced: boolean,
): ResourceKind<T> {
  return Object.freeze({ group, version, plural, kind, namespaced });
}

const BERTH = 'berth.dev';

/** berth.dev/v1 Container: one container, reconciled by the node agent. */
export const Container = resourceKind<api.Container>(BERTH, 'v1', 'containers', 'Container', true);
export type Container = api.Container;
/** berth.dev/v1 Image. */
export const Image = resourceKind<api.Image>(BERTH, 'v1', 'images', 'Image', true);
export type Image = api.Image;
/** berth.dev/v1 Volume. */
export const Volume = resourceKind<api.Volume>(BERTH, 'v1', 'volumes', 'Volume', true);
export type Volume = api.Volume;
/** berth.dev/v1 Network. */
export const Network = resourceKind<api.Network>(BERTH, 'v1', 'networks', 'Network', true);
export type Network = api.Network;
/** berth.dev/v1 Service (Swarm-style replicated containers). */
export const Service = resourceKind<api.Service>(BERTH, 'v1', 'services', 'Service', true);
export type Service = api.Service;
/** berth.dev/v1 Node; cluster-scoped. */
export const Node = resourceKind<api.Node>(BERTH, 'v1', 'nodes', 'Node', false);
export type Node = api.Node;
/** coordination.k8s.io/v1 Lease: heartbeats and leader election. */
export const Lease = resourceKind<api.Lease>('coordination.k8s.io', 'v1', 'leases', 'Lease', true);
export type Lease = api.Lease;
/** core v1 Event. */
export const Event = resourceKind<api.Event>('', 'v1', 'events', 'Event', true);
export type Event = api.Event;
/** core v1 Namespace; cluster-scoped. */
export const Namespace = resourceKind<api.Namespace>('', 'v1', 'namespaces', 'Namespace', false);
export type Namespace = api.Namespace;
/** core v1 Secret: registry credentials for Images. */
export const Secret = resourceKind<api.Secret>('', 'v1', 'secrets', 'Secret', true);
export type Secret = api.Secret;

/** Every kind above, for looking a kind up from an object's apiVersion and kind. */
export const KNOWN_KINDS: readonly ResourceKind[] = [Container, Image, Volume, Network, Service, Node, Lease, Event, Namespace, Secret];

/** `berth.dev/v1`, or `v1` for core. */
export const apiVersionOf = (k: ResourceKind): string => (k.group ? `${k.group}/${k.version}` : k.version);

/** `containers.berth.dev`, or `events` for core: the resource's name in logs and metrics. */
export const resourceName = (k: ResourceKind): string => (k.group ? `${k.plural}.${k.group}` : k.plural);

/**
 * The collection path: `/apis/berth.dev/v1/namespaces/ns/containers`, or across all
 * namespaces when `namespace` is empty or undefined. Cluster-scoped kinds ignore `namespace`.
 */
export function collectionPath(k: ResourceKind, namespace?: string): string {
  const root = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  const ns = k.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${root}${ns}/${k.plural}`;
}

/** The path of one object, with an optional subresource (`status`). */
export function objectPath(k: ResourceKind, namespace: string, name: string, subresource?: string): string {
  if (k.namespaced && !namespace) throw new TypeError(`${k.kind} is namespaced: a namespace is required for ${JSON.stringify(name)}`);
  if (!name) throw new TypeError(`${k.kind}: a name is required`);
  return `${collectionPath(k, namespace)}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
}

/** The cache and queue key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** `keyOf` for an object. */
export const objectKey = (obj: KubeObject): string => keyOf(obj.metadata.namespace, obj.metadata.name ?? '');

/** Splits a key made by `keyOf`. */
export function parseKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

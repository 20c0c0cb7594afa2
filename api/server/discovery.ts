/**
 * Discovery documents: legacy (`/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`)
 * and aggregated (`APIGroupDiscoveryList`, v2 and v2beta1), all derived from `RESOURCES`.
 * See kubectl.md §3 for what each kubectl version asks for.
 */
import { createHash } from 'node:crypto';
import { groupsOf, RESOURCES, type ResourceInfo } from '../registry/resources.ts';
import { parseAccept } from './accept.ts';
import { CONTAINER_STREAM_SUBRESOURCES } from './container-streams.ts';
import { IMAGE_STREAM_SUBRESOURCES } from './image-streams.ts';
import { NODE_SUBRESOURCES } from './registry-login.ts';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

const storageVersionHash = (r: ResourceInfo): string =>
  createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11);

/** The subresources served by routers of their own for `r`: container and image streams (log, exec, attach…), a node's registrylogin. */
const SUBRESOURCES: Readonly<Record<string, readonly { readonly name: string; readonly kind: string; readonly verbs: readonly string[] }[]>> = {
  containers: CONTAINER_STREAM_SUBRESOURCES,
  images: IMAGE_STREAM_SUBRESOURCES,
  nodes: NODE_SUBRESOURCES,
};
const streamSubresourcesOf = (r: ResourceInfo) => (r.group === 'berth.dev' ? (SUBRESOURCES[r.plural] ?? []) : []);

/** `APIResourceList` for one group-version. */
export function apiResourceList(group: string, version: string) {
  const resources = [];
  for (const r of RESOURCES.filter((x) => x.group === group && x.version === version)) {
    resources.push({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length ? { categories: r.categories } : {}),
      storageVersionHash: storageVersionHash(r),
    });
    if (r.hasStatus) resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: STATUS_VERBS });
    // streaming subresources (container-streams.ts), as kube lists pods/log, pods/exec, pods/attach
    for (const sub of streamSubresourcesOf(r)) resources.push({ name: `${r.plural}/${sub.name}`, singularName: '', namespaced: r.namespaced, kind: sub.kind, verbs: sub.verbs });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

const groupEntry = (g: { group: string; versions: string[] }) => {
  const versions = g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v }));
  return { name: g.group, versions, preferredVersion: versions[0] };
};

/** `APIGroupList` for `/apis` (named groups only). */
export function apiGroupList() {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groupsOf().filter((g) => g.group !== '').map(groupEntry) };
}

/** `APIGroup` for `/apis/<group>`, or undefined. */
export function apiGroup(group: string) {
  const g = groupsOf().find((x) => x.group === group && group !== '');
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g) } : undefined;
}

/** `APIVersions` for `/api`. */
export function apiVersions() {
  return { kind: 'APIVersions', apiVersion: 'v1', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] };
}

/** The aggregated discovery document for `/api` (core) or `/apis` (named groups). */
export function aggregatedDiscovery(which: 'api' | 'apis', version: 'v2' | 'v2beta1') {
  const items = groupsOf()
    .filter((g) => (which === 'api' ? g.group === '' : g.group !== ''))
    .map((g) => ({
      metadata: { name: g.group },
      versions: g.versions.map((v) => ({
        version: v,
        freshness: 'Current',
        resources: RESOURCES.filter((r) => r.group === g.group && r.version === v).map((r) => ({
          resource: r.plural,
          responseKind: { group: r.group, version: r.version, kind: r.kind },
          scope: r.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: r.singular,
          verbs: VERBS,
          ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
          ...(r.categories.length ? { categories: r.categories } : {}),
          ...(r.hasStatus || streamSubresourcesOf(r).length
            ? {
                subresources: [
                  ...(r.hasStatus ? [{ subresource: 'status', responseKind: { group: r.group, version: r.version, kind: r.kind }, verbs: STATUS_VERBS }] : []),
                  // streaming subresources (container-streams.ts)
                  ...streamSubresourcesOf(r).map((sub) => ({ subresource: sub.name, responseKind: { group: r.group, version: r.version, kind: sub.kind }, verbs: sub.verbs })),
                ],
              }
            : {}),
        })),
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}

/**
 * Which aggregated discovery version the Accept header asks for, in its order of
 * preference, or undefined for legacy discovery (kubectl.md §3.3).
 */
export function negotiateAggregated(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const { type, params } of parseAccept(accept)) {
    if (params.get('g') === 'apidiscovery.k8s.io' && params.get('as') === 'APIGroupDiscoveryList') {
      const v = params.get('v');
      if (v === 'v2' || v === 'v2beta1') return v;
    }
    if (type.startsWith('application/json') && !params.has('g')) return undefined;
  }
  return undefined;
}

/** The `/version` document; `minor` selects the kubectl binary of gcloud's dispatcher (kubectl.md §3.4). */
export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-berth.0.1.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-11-28T00:00:00Z',
  goVersion: `node${process.versions.node}`,
  compiler: 'tsc',
  platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
};

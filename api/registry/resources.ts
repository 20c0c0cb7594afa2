/**
 * The resources the API server serves: names, scope, discovery facts, printer columns
 * and the field selectors each supports. One entry per kind; everything that lists
 * resources (routing, discovery, OpenAPI paths, CRDs) derives from `RESOURCES`.
 */

/** A column of server-side printing (`Table`), as kubectl shows it. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly format?: string;
  readonly description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  readonly priority: 0 | 1;
  /** The cell for one object. */
  readonly cell: (obj: KubeObjectLike) => unknown;
}

/** What every stored object looks like, seen without its kind's schema. */
export interface KubeObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, any>;
  spec?: any;
  status?: any;
  [k: string]: any;
}

/** One served resource (a kind and its REST path). */
export interface ResourceInfo {
  /** API group; '' for core. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly listKind: string;
  /** Plural, lower case: the path segment. */
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly namespaced: boolean;
  /** Has a `status` subresource: writes to the main resource keep status, and `/status` writes keep spec. */
  readonly hasStatus: boolean;
  /** Bump `metadata.generation` when this changes; kinds without spec (Event, Namespace) use none. */
  readonly generationFrom?: 'spec';
  /** The component schema in openapi.yaml, e.g. `Container`. */
  readonly schema: string;
  /** Extra fields usable in `fieldSelector`, beyond `metadata.name` and `metadata.namespace`. */
  readonly selectableFields: readonly string[];
  readonly columns: readonly PrinterColumn[];
}

/** `apiVersion` as written in objects: `berth.dev/v1`, or `v1` for core. */
export const apiVersionOf = (r: Pick<ResourceInfo, 'group' | 'version'>): string =>
  r.group ? `${r.group}/${r.version}` : r.version;

/** Human age as kube-apiserver prints it for `date` columns: 9s, 5m10s, 3h, 12d. */
export function humanAge(iso: string | undefined, nowMs: number = Date.now()): string {
  if (!iso) return '<unknown>';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((nowMs - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const nameCol: PrinterColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
  cell: (o) => o.metadata?.name ?? '',
};
const ageCol: PrinterColumn = {
  name: 'Age',
  type: 'date',
  description: 'CreationTimestamp is the time the object was created.',
  priority: 0,
  cell: (o) => humanAge(o.metadata?.creationTimestamp),
};
const condition = (o: KubeObjectLike, type: string): string | undefined =>
  (o.status?.conditions as { type: string; status: string }[] | undefined)?.find((c) => c.type === type)?.status;

const portsOf = (o: KubeObjectLike): string =>
  ((o.spec?.ports as { containerPort: number; hostPort?: number; hostIP?: string; protocol?: string }[] | undefined) ?? [])
    .map((p) => {
      const host = p.hostPort ? `${p.hostIP ?? '127.0.0.1'}:${p.hostPort}->` : '';
      return `${host}${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`;
    })
    .join(',');

const shortDigest = (d: unknown): string => (typeof d === 'string' ? d.replace(/^sha256:/, '').slice(0, 12) : '');

/** `12.3MB`, as `docker images` prints sizes (SI units). */
export function humanSize(bytes: unknown): string {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)}${units[i]}`;
}

const BERTH = 'berth.dev';

/** Every resource served, in discovery order. */
export const RESOURCES: readonly ResourceInfo[] = [
  {
    group: BERTH,
    version: 'v1',
    kind: 'Container',
    listKind: 'ContainerList',
    plural: 'containers',
    singular: 'container',
    shortNames: ['ctr'],
    categories: ['all', 'berth'],
    namespaced: true,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Container',
    selectableFields: ['spec.nodeName', 'spec.image', 'spec.state', 'status.phase', 'status.nodeName'],
    columns: [
      nameCol,
      { name: 'Image', type: 'string', description: 'The image the container runs.', priority: 0, cell: (o) => o.spec?.image ?? '' },
      { name: 'State', type: 'string', description: 'Observed lifecycle phase (status.phase).', priority: 0, cell: (o) => (o.metadata?.deletionTimestamp ? 'Terminating' : (o.status?.phase ?? 'Pending')) },
      { name: 'Restarts', type: 'integer', description: 'How many times the container was restarted.', priority: 0, cell: (o) => o.status?.restartCount ?? 0 },
      { name: 'Node', type: 'string', description: 'The node the container runs on.', priority: 0, cell: (o) => o.status?.nodeName ?? o.spec?.nodeName ?? '<none>' },
      ageCol,
      { name: 'Desired', type: 'string', description: 'Desired state (spec.state).', priority: 1, cell: (o) => o.spec?.state ?? 'Running' },
      { name: 'IP', type: 'string', description: 'Address on its first network.', priority: 1, cell: (o) => o.status?.ip ?? '<none>' },
      { name: 'Ports', type: 'string', description: 'Published ports.', priority: 1, cell: (o) => portsOf(o) || '<none>' },
      { name: 'Container-ID', type: 'string', description: 'Runtime container ID.', priority: 1, cell: (o) => (o.status?.containerID ? String(o.status.containerID).slice(0, 12) : '<none>') },
    ],
  },
  {
    group: BERTH,
    version: 'v1',
    kind: 'Image',
    listKind: 'ImageList',
    plural: 'images',
    singular: 'image',
    shortNames: ['img'],
    categories: ['berth'],
    namespaced: true,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Image',
    selectableFields: ['status.phase'],
    columns: [
      nameCol,
      { name: 'Tags', type: 'string', description: 'Local references this image answers to.', priority: 0, cell: (o) => ((o.spec?.tags as string[] | undefined) ?? [`${o.metadata?.name}:latest`]).join(',') },
      { name: 'Phase', type: 'string', description: 'Pending, Pulling, Building, Pushing, Ready or Failed.', priority: 0, cell: (o) => o.status?.phase ?? 'Pending' },
      { name: 'Digest', type: 'string', description: 'Manifest digest.', priority: 0, cell: (o) => shortDigest(o.status?.digest) || '<none>' },
      { name: 'Size', type: 'string', description: 'Size of the image content.', priority: 0, cell: (o) => humanSize(o.status?.size) || '<none>' },
      ageCol,
      { name: 'Source', type: 'string', description: 'Where the content comes from.', priority: 1, cell: (o) => Object.keys(o.spec?.source ?? {})[0] ?? '<none>' },
    ],
  },
  {
    group: BERTH,
    version: 'v1',
    kind: 'Volume',
    listKind: 'VolumeList',
    plural: 'volumes',
    singular: 'volume',
    shortNames: ['vol'],
    categories: ['berth'],
    namespaced: true,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Volume',
    selectableFields: ['status.phase', 'status.nodeName'],
    columns: [
      nameCol,
      { name: 'Driver', type: 'string', description: 'Volume driver.', priority: 0, cell: (o) => o.spec?.driver ?? 'local' },
      { name: 'Phase', type: 'string', description: 'Pending, Available or InUse.', priority: 0, cell: (o) => o.status?.phase ?? 'Pending' },
      { name: 'Node', type: 'string', description: 'The node the data lives on.', priority: 0, cell: (o) => o.status?.nodeName ?? '<none>' },
      ageCol,
      { name: 'Mountpoint', type: 'string', description: 'Host directory.', priority: 1, cell: (o) => o.status?.mountpoint ?? '<none>' },
    ],
  },
  {
    group: BERTH,
    version: 'v1',
    kind: 'Network',
    listKind: 'NetworkList',
    plural: 'networks',
    singular: 'network',
    shortNames: ['net'],
    categories: ['berth'],
    namespaced: true,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Network',
    selectableFields: ['status.phase'],
    columns: [
      nameCol,
      { name: 'Driver', type: 'string', description: 'Network driver.', priority: 0, cell: (o) => o.spec?.driver ?? 'bridge' },
      { name: 'Subnet', type: 'string', description: 'IPv4 subnet.', priority: 0, cell: (o) => o.status?.subnet ?? o.spec?.subnet ?? '<auto>' },
      { name: 'Phase', type: 'string', description: 'Pending, Ready or Failed.', priority: 0, cell: (o) => o.status?.phase ?? 'Pending' },
      ageCol,
      { name: 'Gateway', type: 'string', description: 'Gateway address.', priority: 1, cell: (o) => o.status?.gateway ?? '<none>' },
      { name: 'Bridge', type: 'string', description: 'Linux bridge device.', priority: 1, cell: (o) => o.status?.bridge ?? '<none>' },
    ],
  },
  {
    group: BERTH,
    version: 'v1',
    kind: 'Service',
    listKind: 'ServiceList',
    plural: 'services',
    singular: 'service',
    shortNames: ['bsvc'],
    categories: ['all', 'berth'],
    namespaced: true,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Service',
    selectableFields: [],
    columns: [
      nameCol,
      { name: 'Mode', type: 'string', description: 'Replicated or Global.', priority: 0, cell: (o) => o.spec?.mode ?? 'Replicated' },
      { name: 'Ready', type: 'string', description: 'Ready replicas / desired.', priority: 0, cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.mode === 'Global' ? (o.status?.replicas ?? 0) : (o.spec?.replicas ?? 1)}` },
      { name: 'Image', type: 'string', description: 'Image of the task template.', priority: 0, cell: (o) => o.spec?.template?.spec?.image ?? '' },
      ageCol,
      { name: 'Up-to-date', type: 'integer', description: 'Replicas running the current template.', priority: 1, cell: (o) => o.status?.updatedReplicas ?? 0 },
    ],
  },
  {
    group: BERTH,
    version: 'v1',
    kind: 'Node',
    listKind: 'NodeList',
    plural: 'nodes',
    singular: 'node',
    shortNames: ['no'],
    categories: ['berth'],
    namespaced: false,
    hasStatus: true,
    generationFrom: 'spec',
    schema: 'Node',
    selectableFields: ['spec.role', 'spec.availability'],
    columns: [
      nameCol,
      { name: 'Status', type: 'string', description: 'Ready condition.', priority: 0, cell: (o) => ({ True: 'Ready', False: 'NotReady' } as Record<string, string>)[condition(o, 'Ready') ?? ''] ?? 'Unknown' },
      { name: 'Role', type: 'string', description: 'manager or worker.', priority: 0, cell: (o) => o.spec?.role ?? 'worker' },
      { name: 'Availability', type: 'string', description: 'Active, Pause or Drain.', priority: 0, cell: (o) => o.spec?.availability ?? 'Active' },
      ageCol,
      { name: 'Runtime', type: 'string', description: 'Container runtime.', priority: 1, cell: (o) => (o.status?.runtime ? `${o.status.runtime.name} ${o.status.runtime.version}` : '<none>') },
      { name: 'CPU', type: 'string', description: 'CPU capacity.', priority: 1, cell: (o) => o.status?.capacity?.cpu ?? '<none>' },
      { name: 'Memory', type: 'string', description: 'Memory capacity.', priority: 1, cell: (o) => o.status?.capacity?.memory ?? '<none>' },
    ],
  },
  {
    group: '',
    version: 'v1',
    kind: 'Namespace',
    listKind: 'NamespaceList',
    plural: 'namespaces',
    singular: 'namespace',
    shortNames: ['ns'],
    categories: [],
    namespaced: false,
    hasStatus: true,
    schema: 'Namespace',
    selectableFields: ['status.phase'],
    columns: [
      nameCol,
      { name: 'Status', type: 'string', description: 'Active or Terminating.', priority: 0, cell: (o) => o.status?.phase ?? 'Active' },
      ageCol,
    ],
  },
  {
    group: '',
    version: 'v1',
    kind: 'Event',
    listKind: 'EventList',
    plural: 'events',
    singular: 'event',
    shortNames: ['ev'],
    categories: [],
    namespaced: true,
    hasStatus: false,
    schema: 'Event',
    selectableFields: [
      'involvedObject.kind',
      'involvedObject.namespace',
      'involvedObject.name',
      'involvedObject.uid',
      'involvedObject.apiVersion',
      'involvedObject.resourceVersion',
      'involvedObject.fieldPath',
      'reason',
      'source',
      'type',
    ],
    columns: [
      { name: 'Last Seen', type: 'string', description: 'Time since the last occurrence.', priority: 0, cell: (o) => humanAge(o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp) },
      { name: 'Type', type: 'string', description: 'Normal or Warning.', priority: 0, cell: (o) => o.type ?? '' },
      { name: 'Reason', type: 'string', description: 'Short machine-readable reason.', priority: 0, cell: (o) => o.reason ?? '' },
      { name: 'Object', type: 'string', description: 'The object the event is about.', priority: 0, cell: (o) => `${String(o.involvedObject?.kind ?? '').toLowerCase()}/${o.involvedObject?.name ?? ''}` },
      { name: 'Message', type: 'string', description: 'Human-readable description.', priority: 0, cell: (o) => o.message ?? '' },
      { ...nameCol, priority: 1 },
      { name: 'Count', type: 'integer', description: 'How many times it happened.', priority: 1, cell: (o) => o.count ?? 1 },
    ],
  },
  {
    group: '',
    version: 'v1',
    kind: 'Secret',
    listKind: 'SecretList',
    plural: 'secrets',
    singular: 'secret',
    shortNames: [],
    categories: [],
    namespaced: true,
    hasStatus: false,
    schema: 'Secret',
    selectableFields: ['type'],
    columns: [
      nameCol,
      { name: 'Type', type: 'string', description: 'The type of the secret.', priority: 0, cell: (o) => o.type ?? 'Opaque' },
      { name: 'Data', type: 'integer', description: 'Number of entries in data.', priority: 0, cell: (o) => Object.keys(o.data ?? {}).length },
      ageCol,
    ],
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    kind: 'Lease',
    listKind: 'LeaseList',
    plural: 'leases',
    singular: 'lease',
    shortNames: [],
    categories: [],
    namespaced: true,
    hasStatus: false,
    generationFrom: 'spec',
    schema: 'Lease',
    selectableFields: [],
    columns: [
      nameCol,
      { name: 'Holder', type: 'string', description: 'Current holder.', priority: 0, cell: (o) => o.spec?.holderIdentity ?? '' },
      ageCol,
    ],
  },
];

/** Groups served, in discovery order, each with its versions. */
export function groupsOf(resources: readonly ResourceInfo[] = RESOURCES): { group: string; versions: string[] }[] {
  const out: { group: string; versions: string[] }[] = [];
  for (const r of resources) {
    let g = out.find((x) => x.group === r.group);
    if (!g) out.push((g = { group: r.group, versions: [] }));
    if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}

/** Finds a resource by group, version and plural. */
export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

/** Finds a resource by apiVersion and kind, as written in objects. */
export function findByKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
}

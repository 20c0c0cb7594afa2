/**
 * The OpenAPI documents the server serves, built from `openapi.yaml` and `RESOURCES`:
 * the `/openapi/v3` index, one OpenAPI 3.0 document per group-version (schemas renamed
 * to Kubernetes definition names, paths generated per resource), and `/openapi/v2`
 * (the tiny protobuf document kubectl ≤ 1.28 insists on). See
 * `/work/shared/notes/kubectl.md` §4 for what kubectl reads from them.
 */
import { createHash } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { ApiError } from '../errors.ts';
import { RESOURCES, apiVersionOf, type ResourceInfo } from '../registry/resources.ts';
import { loadOpenApiSpec, refClosure, rewriteRefs, type OpenApiSpec, type SchemaObject } from '../validation/openapi-spec.ts';

/** Content type of `/openapi/v2` protobuf; without the `@` of the Accept header, which Go's mime parser rejects. */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

/**
 * A valid gnostic `openapi.v2.Document` with no definitions: `swagger: "2.0"`,
 * `info {title: "berth", version: "v1"}`. kubectl ≤ 1.28 needs any valid document.
 */
export const OPENAPI_V2_BYTES: Uint8Array = Uint8Array.from([
  0x0a, 0x03, 0x32, 0x2e, 0x30, 0x12, 0x0b, 0x0a, 0x05, 0x62, 0x65, 0x72, 0x74, 0x68, 0x12, 0x02, 0x76, 0x31,
]);

/** Component schemas that belong to meta/v1, with everything they refer to. */
export const META_SCHEMAS: readonly string[] = ['ObjectMeta', 'ListMeta', 'Status', 'DeleteOptions', 'Condition'];

const META_PACKAGE = 'io.k8s.apimachinery.pkg.apis.meta.v1';

/** The Kubernetes definition-name prefix of a group-version: `dev.berth.v1`, `io.k8s.api.core.v1`, `io.k8s.api.coordination.v1`. */
export function definitionPackage(group: string, version: string): string {
  if (group === '') return `io.k8s.api.core.${version}`;
  if (group.endsWith('.k8s.io')) return `io.k8s.api.${group.slice(0, -'.k8s.io'.length).split('.')[0]}.${version}`;
  return `${group.split('.').reverse().join('.')}.${version}`;
}

/** `apis/berth.dev/v1`, or `api/v1` for core: the key of a group-version in the v3 index. */
export const groupVersionPath = (group: string, version: string): string => (group ? `apis/${group}/${version}` : `api/${version}`);

/** One served OpenAPI v3 group-version document. */
export interface GroupVersionDocument {
  readonly group: string;
  readonly version: string;
  /** The key in the index and the URL path under `/openapi/v3/`, e.g. `apis/berth.dev/v1`. */
  readonly path: string;
  readonly document: OpenApiV3Document;
  /** The exact bytes served (JSON). */
  readonly body: string;
  /** Upper-case hex SHA-512 of `body`: the `?hash=` of its URL and its ETag. */
  readonly hash: string;
}

/** The parts of an OpenAPI 3.0 document generated here. */
export interface OpenApiV3Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, SchemaObject> };
}

/** Everything `openApiRouter` serves, built once. */
export interface OpenApiDocuments {
  /** The `/openapi/v3` body: `{paths: {"apis/berth.dev/v1": {serverRelativeURL}}}`. */
  readonly index: { paths: Record<string, { serverRelativeURL: string }> };
  /** Per group-version documents, keyed by `path` (`apis/berth.dev/v1`). */
  readonly groupVersions: ReadonlyMap<string, GroupVersionDocument>;
  /** openapi.yaml schema name → served definition name (`Container` → `dev.berth.v1.Container`). */
  readonly definitionNames: ReadonlyMap<string, string>;
  /** The `/openapi/v2` protobuf body. */
  readonly v2Protobuf: Uint8Array;
  /** Swagger 2.0 JSON with every definition and no paths, for `Accept: application/json` on `/openapi/v2`. */
  readonly v2Json: Record<string, unknown>;
}

export interface OpenApiDocumentsOptions {
  /** Defaults to the repository's `openapi.yaml`. */
  readonly spec?: OpenApiSpec;
  /** Defaults to `RESOURCES`. */
  readonly resources?: readonly ResourceInfo[];
}

/**
 * Maps every component schema to its Kubernetes definition name. meta/v1 schemas
 * (and what they refer to) go to `io.k8s.apimachinery.pkg.apis.meta.v1`; the rest go
 * to the package of the group-version whose kinds refer to them. Throws if a schema is
 * shared by two group-versions or a resource's schema is missing.
 */
export function definitionNames(spec: OpenApiSpec, resources: readonly ResourceInfo[] = RESOURCES): Map<string, string> {
  const schemas = spec.components.schemas;
  const names = new Map<string, string>();
  for (const s of refClosure(schemas, META_SCHEMAS)) names.set(s, `${META_PACKAGE}.${s}`);
  for (const r of resources) {
    const pkg = definitionPackage(r.group, r.version);
    for (const s of refClosure(schemas, [r.schema, r.listKind])) {
      const prev = names.get(s);
      if (prev?.startsWith(`${META_PACKAGE}.`)) continue;
      if (prev && prev !== `${pkg}.${s}`) throw new Error(`openapi.yaml: schema ${s} is used by two group-versions (${prev}, ${pkg}.${s})`);
      names.set(s, `${pkg}.${s}`);
    }
  }
  return names;
}

const hashOf = (body: string): string => createHash('sha512').update(body).digest('hex').toUpperCase();

const groupCamel = (group: string): string =>
  group === ''
    ? 'Core'
    : group
        .replace(/\.k8s\.io$/, '')
        .split(/[.-]/)
        .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
        .join('');

const queryParam = (name: string, type: 'string' | 'integer' | 'boolean', description: string): Record<string, unknown> => ({
  name,
  in: 'query',
  description,
  schema: { type },
});
const pathParam = (name: string, description: string): Record<string, unknown> => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

const P = {
  pretty: queryParam('pretty', 'string', "If 'true', then the output is pretty printed."),
  dryRun: queryParam('dryRun', 'string', 'When present, indicates that modifications should not be persisted. The only valid value is All: validate and answer, but store nothing and emit no watch event.'),
  fieldManager: queryParam('fieldManager', 'string', 'A name associated with the actor or entity that is making these changes. Required for apply requests (application/apply-patch+yaml).'),
  fieldValidation: queryParam('fieldValidation', 'string', 'How the server handles fields of the request body that its schema does not declare: Ignore drops them, Warn drops them and adds a Warning header per field, Strict fails the request with 400 BadRequest. Default Warn.'),
  force: queryParam('force', 'boolean', 'Force an apply request to take ownership of fields that other managers own. Must be unset for patches that are not apply requests.'),
  labelSelector: queryParam('labelSelector', 'string', 'A selector to restrict the list of returned objects by their labels. Defaults to everything.'),
  fieldSelector: queryParam('fieldSelector', 'string', 'A selector to restrict the list of returned objects by their fields. Defaults to everything.'),
  limit: queryParam('limit', 'integer', 'Maximum number of items to return; metadata.continue then names the rest.'),
  continue: queryParam('continue', 'string', 'The continue token of a previous list response with a limit, to get the next page.'),
  resourceVersion: queryParam('resourceVersion', 'string', 'For list: 0 or unset means the most recent state. For watch: send the changes after this version.'),
  resourceVersionMatch: queryParam('resourceVersionMatch', 'string', 'How resourceVersion applies to list calls: Exact or NotOlderThan.'),
  watch: queryParam('watch', 'boolean', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.'),
  allowWatchBookmarks: queryParam('allowWatchBookmarks', 'boolean', 'Requests watch events with type BOOKMARK, which carry only a resourceVersion.'),
  timeoutSeconds: queryParam('timeoutSeconds', 'integer', 'Timeout for the list/watch call: the server ends the watch after this many seconds.'),
  sendInitialEvents: queryParam('sendInitialEvents', 'boolean', 'With watch=true, start the stream with an ADDED event per existing object, then a BOOKMARK.'),
  gracePeriodSeconds: queryParam('gracePeriodSeconds', 'integer', 'The duration in seconds before the object should be deleted. Zero deletes immediately.'),
  propagationPolicy: queryParam('propagationPolicy', 'string', "Whether and how garbage collection is performed: 'Orphan', 'Background' or 'Foreground'."),
  orphanDependents: queryParam('orphanDependents', 'boolean', 'Deprecated: use propagationPolicy. Whether dependents are orphaned.'),
} as const;

const LIST_PARAMS = [P.allowWatchBookmarks, P.continue, P.fieldSelector, P.labelSelector, P.limit, P.resourceVersion, P.resourceVersionMatch, P.sendInitialEvents, P.timeoutSeconds, P.watch];
const WRITE_PARAMS = [P.dryRun, P.fieldManager, P.fieldValidation];
const DELETE_PARAMS = [P.dryRun, P.gracePeriodSeconds, P.orphanDependents, P.propagationPolicy];

/** The PATCH request content types served. Never strategic merge: kubectl would send one. */
export const PATCH_CONTENT_TYPES: readonly string[] = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'];

const ref = (def: string): SchemaObject => ({ $ref: `#/components/schemas/${def}` });
const jsonContent = (def: string, watch = false): Record<string, unknown> => ({
  'application/json': { schema: ref(def) },
  'application/yaml': { schema: ref(def) },
  ...(watch ? { 'application/json;stream=watch': { schema: ref(def) } } : {}),
});
const responses = (codes: Record<string, string>, def: string, watch = false): Record<string, unknown> =>
  Object.fromEntries(Object.entries(codes).map(([code, description]) => [code, { description, content: jsonContent(def, watch) }]));

/** The generated paths of one resource: get/list/create/replace/patch/delete, all-namespaces list, `/status`. */
function resourcePaths(r: ResourceInfo, def: (schema: string) => string): Record<string, Record<string, unknown>> {
  const prefix = `/${groupVersionPath(r.group, r.version)}`;
  const gvk = { group: r.group, version: r.version, kind: r.kind };
  const stem = `${groupCamel(r.group)}${r.version.charAt(0).toUpperCase()}${r.version.slice(1)}`;
  const scoped = r.namespaced ? 'Namespaced' : '';
  const id = (verb: string, suffix = ''): string => `${verb}${stem}${scoped}${r.kind}${suffix}`;
  const collection = r.namespaced ? `${prefix}/namespaces/{namespace}/${r.plural}` : `${prefix}/${r.plural}`;
  const item = `${collection}/{name}`;
  const nsParam = pathParam('namespace', 'object name and auth scope, such as for teams and projects');
  const nameParam = pathParam('name', `name of the ${r.kind}`);
  const kind = def(r.schema);
  const list = def(r.listKind);
  const status = def('Status');
  const deleteOptions = def('DeleteOptions');
  const op = (action: string, operationId: string, description: string, extra: Record<string, unknown>): Record<string, unknown> => ({
    tags: [`${stem.charAt(0).toLowerCase()}${stem.slice(1)}`],
    description,
    operationId,
    ...extra,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
  });
  const body = (schema: string): Record<string, unknown> => ({ required: true, content: { '*/*': { schema: ref(schema) } } });
  const patchBody = { required: true, content: Object.fromEntries(PATCH_CONTENT_TYPES.map((t) => [t, { schema: { type: 'object' } }])) };
  const deleteBody = { content: { '*/*': { schema: ref(deleteOptions) } } };
  const ok = { '200': 'OK' };
  const where = r.namespaced ? ' in a namespace' : '';

  const paths: Record<string, Record<string, unknown>> = {
    [collection]: {
      get: op('list', id('list'), `list or watch objects of kind ${r.kind}${where}`, { parameters: LIST_PARAMS, responses: responses(ok, list, true) }),
      post: op('post', id('create'), `create a ${r.kind}`, {
        parameters: WRITE_PARAMS,
        requestBody: body(kind),
        responses: responses({ '200': 'OK', '201': 'Created', '202': 'Accepted' }, kind),
      }),
      delete: op('deletecollection', id('deleteCollection'), `delete collection of ${r.kind}`, {
        parameters: [...LIST_PARAMS.filter((p) => p !== P.watch && p !== P.allowWatchBookmarks && p !== P.sendInitialEvents), ...DELETE_PARAMS],
        requestBody: deleteBody,
        responses: responses(ok, status),
      }),
      parameters: r.namespaced ? [nsParam, P.pretty] : [P.pretty],
    },
    [item]: {
      get: op('get', id('read'), `read the specified ${r.kind}`, { responses: responses(ok, kind) }),
      put: op('put', id('replace'), `replace the specified ${r.kind}`, {
        parameters: WRITE_PARAMS,
        requestBody: body(kind),
        responses: responses({ '200': 'OK', '201': 'Created' }, kind),
      }),
      patch: op('patch', id('patch'), `partially update the specified ${r.kind}`, {
        parameters: [...WRITE_PARAMS, P.force],
        requestBody: patchBody,
        responses: responses({ '200': 'OK', '201': 'Created' }, kind),
      }),
      delete: op('delete', id('delete'), `delete a ${r.kind}`, {
        parameters: DELETE_PARAMS,
        requestBody: deleteBody,
        responses: { ...responses({ '200': 'OK', '202': 'Accepted' }, status) },
      }),
      parameters: r.namespaced ? [nameParam, nsParam, P.pretty] : [nameParam, P.pretty],
    },
  };
  if (r.hasStatus) {
    paths[`${item}/status`] = {
      get: op('get', id('read', 'Status'), `read status of the specified ${r.kind}`, { responses: responses(ok, kind) }),
      put: op('put', id('replace', 'Status'), `replace status of the specified ${r.kind}`, {
        parameters: WRITE_PARAMS,
        requestBody: body(kind),
        responses: responses({ '200': 'OK', '201': 'Created' }, kind),
      }),
      patch: op('patch', id('patch', 'Status'), `partially update status of the specified ${r.kind}`, {
        parameters: [...WRITE_PARAMS, P.force],
        requestBody: patchBody,
        responses: responses({ '200': 'OK', '201': 'Created' }, kind),
      }),
      parameters: paths[item]!.parameters,
    };
  }
  if (r.namespaced) {
    paths[`${prefix}/${r.plural}`] = {
      get: op('list', `list${stem}${r.kind}ForAllNamespaces`, `list or watch objects of kind ${r.kind} in all namespaces`, {
        parameters: LIST_PARAMS,
        responses: responses(ok, list, true),
      }),
      parameters: [P.pretty],
    };
  }
  return paths;
}

/** Swagger 2.0 form of an OpenAPI 3.0 schema, as kube-openapi writes int-or-string and nullable there. */
function toSwagger2(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toSwagger2);
  if (!s || typeof s !== 'object') return s;
  const o = s as SchemaObject;
  if (o['x-kubernetes-int-or-string']) return { type: 'string', format: 'int-or-string', description: o.description, 'x-kubernetes-int-or-string': true };
  if (Array.isArray(o.allOf) && o.allOf.length === 1 && o.allOf[0].$ref) return { ...o, allOf: undefined, $ref: o.allOf[0].$ref };
  const out: SchemaObject = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'nullable') out['x-nullable'] = v;
    else if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as SchemaObject).map(([p, ps]) => [p, toSwagger2(ps)]));
    else if (k === 'enum' || k === 'default' || k === 'x-kubernetes-group-version-kind' || k === 'required') out[k] = v;
    else out[k] = toSwagger2(v);
  }
  return out;
}

/**
 * Builds everything `openApiRouter` serves. Without options the result is computed once
 * and shared (it is immutable by convention: do not mutate it).
 */
export function openApiDocuments(opts: OpenApiDocumentsOptions = {}): OpenApiDocuments {
  if (!opts.spec && !opts.resources) return (cached ??= buildDocuments(loadOpenApiSpec(), RESOURCES));
  return buildDocuments(opts.spec ?? loadOpenApiSpec(), opts.resources ?? RESOURCES);
}
let cached: OpenApiDocuments | undefined;

function buildDocuments(spec: OpenApiSpec, resources: readonly ResourceInfo[]): OpenApiDocuments {
  const schemas = spec.components.schemas;
  const names = definitionNames(spec, resources);
  const def = (s: string): string => {
    const n = names.get(s);
    if (!n) throw new Error(`openapi.yaml: no schema ${s}`);
    return n;
  };
  const rename = (s: string): string => `#/components/schemas/${def(s)}`;

  const groupVersions = new Map<string, GroupVersionDocument>();
  const index: Record<string, { serverRelativeURL: string }> = {};
  const gvs: { group: string; version: string }[] = [];
  for (const r of resources) if (!gvs.some((g) => g.group === r.group && g.version === r.version)) gvs.push({ group: r.group, version: r.version });

  for (const { group, version } of gvs) {
    const served = resources.filter((r) => r.group === group && r.version === version);
    const roots = [...META_SCHEMAS, ...served.flatMap((r) => [r.schema, r.listKind])];
    const componentSchemas: Record<string, SchemaObject> = {};
    for (const s of refClosure(schemas, roots).sort((a, b) => def(a).localeCompare(def(b)))) componentSchemas[def(s)] = rewriteRefs(schemas[s]!, rename);
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of served) Object.assign(paths, resourcePaths(r, def));
    const document: OpenApiV3Document = {
      openapi: '3.0.0',
      info: { title: 'Berth', version: apiVersionOf({ group, version }) },
      paths,
      components: { schemas: componentSchemas },
    };
    const body = JSON.stringify(document);
    const hash = hashOf(body);
    const path = groupVersionPath(group, version);
    groupVersions.set(path, { group, version, path, document, body, hash });
    index[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }

  const definitions: Record<string, unknown> = {};
  for (const [s, n] of [...names].sort((a, b) => a[1].localeCompare(b[1])))
    definitions[n] = toSwagger2(rewriteRefs(schemas[s]!, (x) => `#/definitions/${def(x)}`));
  const v2Json = { swagger: '2.0', info: { title: 'Berth', version: 'v1' }, paths: {}, definitions };

  return { index: { paths: index }, groupVersions, definitionNames: names, v2Protobuf: OPENAPI_V2_BYTES, v2Json };
}

const NOT_FOUND = new ApiError('NotFound', 404, 'the server could not find the requested resource', {});

function sendNotFound(res: Response): void {
  res.status(404).json(NOT_FOUND.toStatus());
}

/**
 * An express router serving `GET /openapi/v3`, `GET /openapi/v3/<group-version path>`
 * and `GET /openapi/v2`. Group-version documents requested with the current `?hash=`
 * are served as immutable for a year (kubectl then fetches them once); a stale hash is
 * redirected (301) to the current URL; no hash is served uncached. Mount it at the root.
 */
export function openApiRouter(docs: OpenApiDocuments = openApiDocuments()): Router {
  const router = Router();
  const indexBody = JSON.stringify(docs.index);
  const v2JsonBody = JSON.stringify(docs.v2Json);

  router.get('/openapi/v3', (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-cache, private').type('application/json').send(indexBody);
  });

  router.get('/openapi/v3/*splat', (req: Request, res: Response) => {
    const splat = (req.params as Record<string, string | string[]>).splat;
    const path = Array.isArray(splat) ? splat.join('/') : String(splat ?? '');
    const gv = docs.groupVersions.get(path);
    if (!gv) return sendNotFound(res);
    const hash = typeof req.query.hash === 'string' ? req.query.hash : undefined;
    if (hash !== undefined && hash !== gv.hash) {
      res.set('Cache-Control', 'no-cache, private').redirect(301, `/openapi/v3/${gv.path}?hash=${gv.hash}`);
      return;
    }
    const etag = `"${gv.hash}"`;
    res.set('ETag', etag);
    res.set('Cache-Control', hash ? 'public, immutable, max-age=31536000' : 'no-cache, private');
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    res.type('application/json').send(gv.body);
  });

  router.get('/openapi/v2', (req: Request, res: Response) => {
    const accept = req.headers.accept ?? '';
    if (!accept.includes('protobuf') && accept.includes('application/json')) {
      res.type('application/json').send(v2JsonBody);
      return;
    }
    res.set('Content-Type', OPENAPI_V2_PROTOBUF).send(Buffer.from(docs.v2Protobuf));
  });

  return router;
}

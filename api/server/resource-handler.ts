/**
 * The REST handler for every resource: decodes the request, calls the `ObjectStore`,
 * and writes the response in the shape the client asked for (object, list, Table,
 * metadata), with `Warning` headers. Errors propagate to the app's error handler.
 * It uses only Node's http API on the request and response (see plain-node.ts).
 */
import type { Request, Response } from 'express';
import { ApiError, badRequest, isNotFound, methodNotAllowed, notFound } from '../errors.ts';
import { apiVersionOf, type ResourceInfo } from '../registry/resources.ts';
import type { DeleteOptions, FieldValidation, ListOptions, ObjectStore, WriteOptions, WriteResult } from '../registry/object-store.ts';
import { parseFieldSelector, parseLabelSelector } from '../registry/selectors.ts';
import { readObjectBody, readPatchBody, readRawBody, decodeDocument, mediaType } from './body.ts';
import { negotiateShape, shapeObject, toMetadataList, toTable, type IncludeObject } from './table.ts';
import { serveWatch, type WatchServeOptions } from './watch.ts';
import type { ResourceRequest, Verb } from './request-info.ts';
import { endJson } from './plain-node.ts';

type Query = Record<string, unknown>;

const str = (q: Query, k: string): string | undefined => {
  const v = q[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`query parameter ${k} must be given once`);
  return v;
};

const int = (q: Query, k: string, min = 0): number | undefined => {
  const v = str(q, k);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw badRequest(`invalid value for query parameter ${k}: ${JSON.stringify(v)}`);
  return n;
};

const bool = (q: Query, k: string): boolean => {
  const v = str(q, k);
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw badRequest(`invalid value for query parameter ${k}: ${JSON.stringify(v)}`);
};

function dryRunOf(q: Query): boolean {
  const v = q.dryRun;
  if (v === undefined) return false;
  const values = Array.isArray(v) ? v : [v];
  for (const x of values) if (x !== 'All') throw badRequest(`Invalid dryRun value: ${JSON.stringify(x)}: supported values: "All"`);
  return true;
}

function fieldValidationOf(q: Query): FieldValidation {
  const v = str(q, 'fieldValidation');
  if (v === undefined || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation parameter unsupported: ${v}; supported values: "Strict", "Warn", "Ignore"`);
}

function includeObjectOf(q: Query): IncludeObject | undefined {
  const v = str(q, 'includeObject');
  if (v === undefined || v === '') return undefined;
  if (v === 'None' || v === 'Metadata' || v === 'Object') return v;
  throw badRequest(`includeObject parameter unsupported: ${v}`);
}

function selectors(r: ResourceInfo, q: Query) {
  const ls = str(q, 'labelSelector');
  const fs = str(q, 'fieldSelector');
  return {
    ...(ls ? { labelSelector: parseLabelSelector(ls) } : {}),
    ...(fs ? { fieldSelector: parseFieldSelector(fs, r.selectableFields) } : {}),
  };
}

const writeOptions = (req: Request, q: Query, sub?: string): WriteOptions => ({
  dryRun: dryRunOf(q),
  fieldValidation: fieldValidationOf(q),
  ...(str(q, 'fieldManager') ? { fieldManager: str(q, 'fieldManager')! } : {}),
  ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
  ...(sub === 'status' ? { subresource: 'status' as const } : {}),
});

function sendJson(res: Response, code: number, body: unknown, warnings: readonly string[] = []): void {
  sendJsonText(res, code, JSON.stringify(body), warnings);
}

/** Sends the object of a write, as the text it was stored as when the store has it. */
const sendWritten = (res: Response, code: number, out: WriteResult): void =>
  out.json !== undefined ? sendJsonText(res, code, out.json, out.warnings) : sendJson(res, code, out.object, out.warnings);

/** Sends JSON text as it is (kube-apiserver's `Content-Type: application/json`, no charset). */
function sendJsonText(res: Response, code: number, text: string, warnings: readonly string[] = []): void {
  if (warnings.length) {
    const prev = res.getHeader('Warning');
    const before = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
    res.setHeader('Warning', [...before, ...warnings.map((w) => `299 - ${JSON.stringify(w)}`)]);
  }
  endJson(res, code, text);
}

/** Reads `DeleteOptions` from the body (JSON) and the query string. */
async function deleteOptionsOf(req: Request, q: Query): Promise<DeleteOptions> {
  const raw = await readRawBody(req);
  let body: Record<string, any> = {};
  if (raw.length > 0) {
    const v = decodeDocument(raw, mediaType(req.headers['content-type']).includes('yaml') ? 'yaml' : 'json');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw badRequest('DeleteOptions must be an object');
    body = v as Record<string, any>;
  }
  const policy = body.propagationPolicy ?? str(q, 'propagationPolicy');
  if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy))
    throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(policy)}: supported values: "Foreground", "Background", "Orphan"`);
  const orphan = body.orphanDependents ?? (q.orphanDependents !== undefined ? bool(q, 'orphanDependents') : undefined);
  const grace = body.gracePeriodSeconds ?? int(q, 'gracePeriodSeconds');
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) throw badRequest('gracePeriodSeconds must be a non-negative integer');
  const dryRun = dryRunOf(q) || (Array.isArray(body.dryRun) && body.dryRun.includes('All'));
  const pre = body.preconditions;
  return {
    dryRun,
    ...(policy ? { propagationPolicy: policy } : orphan === true ? { propagationPolicy: 'Orphan' as const } : {}),
    ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
    ...(pre && typeof pre === 'object' ? { preconditions: { ...(pre.uid ? { uid: String(pre.uid) } : {}), ...(pre.resourceVersion ? { resourceVersion: String(pre.resourceVersion) } : {}) } } : {}),
  };
}

export interface ResourceHandlerDeps extends WatchServeOptions {
  readonly shutdown: AbortSignal;
}

/** Handles one resource request whose verb is known; `query` is its parsed query string. */
export async function handleResource(deps: ResourceHandlerDeps, req: Request, res: Response, rr: ResourceRequest, verb: Verb, query: Query): Promise<void> {
  const { store } = deps;
  const r = rr.resource;
  const q = query;
  const ns = rr.namespace;
  const sub = rr.subresource;
  if (sub !== undefined && !(sub === 'status' && r.hasStatus)) throw notFound({ group: r.group, resource: `${r.plural}/${sub}` }, rr.name ?? '');
  if (sub && !['get', 'update', 'patch', 'apply'].includes(verb)) throw methodNotAllowed(`the server does not allow this method on the requested resource`);
  const shape = negotiateShape(req.headers.accept);
  const includeObject = includeObjectOf(q);

  switch (verb) {
    case 'get': {
      // A plain object is sent as stored, without decoding and encoding it again.
      if (shape === 'object') return sendJsonText(res, 200, await store.getJson(r, ns, rr.name!));
      const obj = await store.get(r, ns, rr.name!);
      return sendJson(res, 200, shapeObject(r, obj, shape, includeObject));
    }
    case 'list': {
      const rv = str(q, 'resourceVersion');
      const rvm = str(q, 'resourceVersionMatch');
      if (rvm !== undefined && rvm !== 'Exact' && rvm !== 'NotOlderThan') throw badRequest(`resourceVersionMatch: Unsupported value: "${rvm}"`);
      if (rvm && !rv) throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
      const limit = int(q, 'limit');
      const cont = str(q, 'continue');
      const listOpts: ListOptions = {
        ...selectors(r, q),
        ...(limit ? { limit } : {}),
        ...(cont ? { continue: cont } : {}),
        ...(rv ? { resourceVersion: rv } : {}),
        ...(rvm ? { resourceVersionMatch: rvm } : {}),
      };
      const av = apiVersionOf(r);
      if (shape === 'object') {
        // Items are sent as stored, without decoding and encoding them again.
        const list = await store.listJson(r, ns, listOpts);
        const meta: Record<string, unknown> = { resourceVersion: list.resourceVersion };
        if (list.continue) meta.continue = list.continue;
        if (list.remainingItemCount !== undefined) meta.remainingItemCount = list.remainingItemCount;
        const head = `{"apiVersion":${JSON.stringify(av)},"kind":${JSON.stringify(r.listKind)},"metadata":${JSON.stringify(meta)},"items":[`;
        return sendJsonText(res, 200, `${head}${list.items.join(',')}]}`);
      }
      const list = await store.list(r, ns, listOpts);
      const meta: Record<string, unknown> = { resourceVersion: list.resourceVersion };
      if (list.continue) meta.continue = list.continue;
      if (list.remainingItemCount !== undefined) meta.remainingItemCount = list.remainingItemCount;
      if (shape === 'table')
        return sendJson(res, 200, toTable(r, list.items, { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}), ...(includeObject ? { includeObject } : {}) }));
      return sendJson(res, 200, toMetadataList(list.items, meta));
    }
    case 'watch': {
      const sendInitialEvents = bool(q, 'sendInitialEvents');
      const allowBookmarks = bool(q, 'allowWatchBookmarks');
      if (q.sendInitialEvents !== undefined) {
        if (str(q, 'resourceVersionMatch') !== 'NotOlderThan')
          throw new ApiError('Invalid', 422, 'sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan');
        if (sendInitialEvents && !allowBookmarks)
          throw new ApiError('Invalid', 422, 'sendInitialEvents requires setting allowWatchBookmarks to true');
      }
      const rv = str(q, 'resourceVersion');
      const timeout = int(q, 'timeoutSeconds');
      return serveWatch(
        req,
        res,
        {
          resource: r,
          namespace: ns,
          ...(rv !== undefined ? { resourceVersion: rv } : {}),
          ...selectors(r, q),
          allowBookmarks,
          sendInitialEvents,
          ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
          shape,
          ...(includeObject ? { includeObject } : {}),
        },
        deps,
        deps.shutdown,
      );
    }
    case 'create': {
      const body = await readObjectBody(req);
      const out = await store.create(r, ns, body as any, writeOptions(req, q));
      return sendWritten(res, 201, out);
    }
    case 'update': {
      const body = await readObjectBody(req);
      const out = await store.update(r, ns, rr.name!, body as any, writeOptions(req, q, sub));
      return sendWritten(res, 200, out);
    }
    case 'patch':
    case 'apply': {
      const { type, patch } = await readPatchBody(req);
      const opts = writeOptions(req, q, sub);
      if (type === 'apply' && !opts.fieldManager) throw badRequest('PATCH requests with apply content type must specify fieldManager');
      const force = bool(q, 'force');
      if (force && type !== 'apply') throw badRequest('force may not be set for non-apply patch requests');
      const out = await store.patch(r, ns, rr.name!, patch, { ...opts, type, force });
      return sendWritten(res, out.created ? 201 : 200, out);
    }
    case 'delete': {
      const opts = await deleteOptionsOf(req, q);
      const out = await store.delete(r, ns, rr.name!, opts);
      if (!out.deleted) return sendJson(res, 202, out.object);
      return sendJson(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name: rr.name, group: r.group, kind: r.plural, uid: out.object.metadata?.uid },
      });
    }
    case 'deletecollection': {
      const opts = await deleteOptionsOf(req, q);
      const list = await store.list(r, ns, selectors(r, q));
      const items = [];
      for (const o of list.items) {
        try {
          const out = await store.delete(r, o.metadata!.namespace ?? '', o.metadata!.name, opts);
          items.push(out.object);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
      return sendJson(res, 200, { apiVersion: apiVersionOf(r), kind: r.listKind, metadata: { resourceVersion: list.resourceVersion }, items });
    }
  }
}

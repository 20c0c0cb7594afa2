/**
 * Server-side printing: `Table` (meta.k8s.io/v1) and `PartialObjectMetadata` responses,
 * chosen by the Accept header, as kube-apiserver does (kubectl.md §6.2).
 */
import type { KubeObjectLike, ResourceInfo } from '../registry/resources.ts';
import { parseAccept } from './accept.ts';

/** What the client asked the response to be, from its Accept header. */
export type ResponseShape = 'object' | 'table' | 'metadata';

/** Reads `as=Table` / `as=PartialObjectMetadata(List)` from an Accept header; the first acceptable part wins. */
export function negotiateShape(accept: string | undefined): ResponseShape {
  for (const { params } of parseAccept(accept)) {
    const as = params.get('as');
    if (as === 'Table' && params.get('g') === 'meta.k8s.io') return 'table';
    if ((as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') && params.get('g') === 'meta.k8s.io') return 'metadata';
    if (!as) return 'object';
  }
  return 'object';
}

/** `includeObject` of a Table request. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

const partial = (o: KubeObjectLike) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata });

/** The column definitions of a resource's Table. */
export const columnDefinitions = (r: ResourceInfo) =>
  r.columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description, priority: c.priority }));

/** A Table of the given objects; `resourceVersion` is where a following watch starts. */
export function toTable(
  r: ResourceInfo,
  objects: readonly KubeObjectLike[],
  opts: { resourceVersion?: string; continue?: string; remainingItemCount?: number; includeObject?: IncludeObject; withColumns?: boolean },
) {
  const include = opts.includeObject ?? 'Metadata';
  const metadata: Record<string, unknown> = {};
  if (opts.resourceVersion) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continue) metadata.continue = opts.continue;
  if (opts.remainingItemCount !== undefined) metadata.remainingItemCount = opts.remainingItemCount;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    ...(opts.withColumns === false ? {} : { columnDefinitions: columnDefinitions(r) }),
    rows: objects.map((o) => ({
      cells: r.columns.map((c) => c.cell(o)),
      ...(include === 'None' ? {} : { object: include === 'Object' ? o : partial(o) }),
    })),
  };
}

/** A PartialObjectMetadataList (metadata-only list, for metadata informers). */
export function toMetadataList(objects: readonly KubeObjectLike[], meta: Record<string, unknown>) {
  return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: meta, items: objects.map(partial) };
}

/** The object in the shape the client asked for (for single GETs and watch events). */
export function shapeObject(r: ResourceInfo, o: KubeObjectLike, shape: ResponseShape, includeObject?: IncludeObject) {
  if (shape === 'table') return toTable(r, [o], { ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}), ...(includeObject ? { includeObject } : {}) });
  if (shape === 'metadata') return partial(o);
  return o;
}

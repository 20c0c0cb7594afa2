/**
 * `Lister`: read access to an informer's cache, which is how reconcilers read.
 */
import type { KubeObject } from '../../api/types/index.ts';

/**
 * Reads objects of one kind from a shared cache. Reads never call the API server.
 * The objects returned are shared and deep-frozen: copy before changing
 * (`structuredClone`, or spread the parts you change). May lag the server by the
 * watch delay; the controller waits for its own writes before reconciling a key again.
 */
export interface Lister<T extends KubeObject> {
  /** The object, or `undefined` if the cache does not hold it. Use '' as namespace for cluster-scoped kinds. */
  get(namespace: string, name: string): T | undefined;
  /** All cached objects, or those of one namespace. Order unspecified. */
  list(namespace?: string): T[];
  /** Objects whose indexer `indexName` returned `value`. Throws if there is no such indexer. */
  byIndex(indexName: string, value: string): T[];
}

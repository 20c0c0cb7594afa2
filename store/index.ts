/** The store: the `RevisionLog` port and its backends. `api/` is its only user. */
export {
  StoreError,
  isStoreError,
  type StoreErrorCode,
  type KeyValue,
  type WatchEvent,
  type ListOptions,
  type ListResult,
  type WatchOptions,
  type StoreStats,
  type RevisionLog,
} from './revision-log.ts';
export { MemoryLog } from './memory/memory-log.ts';
export {
  SqliteLog,
  openSqliteLog,
  type SqliteLogOptions,
  type AutoCompactOptions,
} from './sqlite/sqlite-log.ts';

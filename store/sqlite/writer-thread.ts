/**
 * The SQLite writer thread of `SqliteLog`: it owns the write connection, applies
 * group-committed batches of writes (and their fsync) and compactions, so that the
 * event loop of the API server never waits for the disk.
 *
 * The thread runs `writerThread` from source text (`writerThreadSource`) so that it
 * works the same from the TypeScript sources and from the esbuild bundle, which has no
 * separate file to point a `Worker` at. `writerThread` must therefore use nothing from
 * its module scope: everything it needs comes through its argument.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { MessagePort } from 'node:worker_threads';

/** `create`, `update` or `delete`, as a number on the wire. */
export const OP_CREATE = 0;
export const OP_UPDATE = 1;
export const OP_DELETE = 2;

/** One write on the wire: op, key, value ('' for delete), expected modRevision (-1: none). */
export type WireWrite = [op: number, key: string, value: string, expected: number];

/**
 * The outcome of one write on the wire. A number is a failure code index into
 * `FAILURE_CODES`; otherwise `[modRevision, createRevision, prev]`, where `prev` is the
 * key's previous `[value, modRevision, createRevision]`, or null for a create.
 */
export type WireResult = number | [modRevision: number, createRevision: number, prev: [string, number, number] | null];

/** Failure codes of `WireResult`, by index. */
export const FAILURE_CODES = ['KeyExists', 'NotFound', 'RevisionMismatch'] as const;

/** Messages to the writer thread. */
export type ToWriter =
  | { readonly type: 'write'; readonly writes: WireWrite[] }
  | { readonly type: 'compact'; readonly revision: number }
  | { readonly type: 'close' };

/** Messages from the writer thread, in the order things happened. */
export type FromWriter =
  /** The next `results.length` writes sent, in order; durable. `revision` is the latest after them. */
  | { readonly type: 'committed'; readonly results: WireResult[]; readonly revision: number; readonly seconds: number }
  /** The next `count` writes sent failed together (their transaction failed). */
  | { readonly type: 'failed'; readonly count: number; readonly message: string }
  | { readonly type: 'compacted'; readonly removed: number; readonly seconds: number; readonly aborted: boolean }
  | { readonly type: 'compactFailed'; readonly message: string }
  | { readonly type: 'closed' };

/** What the writer thread is told at start (`workerData`). */
export interface WriterConfig {
  readonly path: string;
  readonly maxBatch: number;
  readonly chunkRows: number;
  readonly walAutocheckpointPages: number;
  readonly journalSizeLimitBytes: number;
}

interface WriterDeps {
  readonly Database: typeof BetterSqlite3;
  readonly port: MessagePort;
  readonly config: WriterConfig;
}

/** The body of the writer thread. Self-contained: see the file comment. */
export function writerThread({ Database, port, config }: WriterDeps): void {
  const db = new Database(config.path);
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma(`wal_autocheckpoint = ${config.walAutocheckpointPages}`);
  db.pragma(`journal_size_limit = ${config.journalSizeLimitBytes}`);

  const getCurrent = db.prepare(
    `SELECT l.value AS value, l.id AS modRevision, l.create_revision AS createRevision
     FROM current c JOIN log l ON l.id = c.id WHERE c.key = ?`,
  );
  const insertRow = db.prepare(
    `INSERT INTO log (id, key, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const upsertCurrent = db.prepare(`INSERT INTO current (key, id) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET id = excluded.id`);
  const deleteCurrent = db.prepare(`DELETE FROM current WHERE key = ?`);
  const setMeta = db.prepare(`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`);
  const chunkEnd = db.prepare(`SELECT id FROM log WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?`).pluck();
  const compactChunk = db.prepare(
    `DELETE FROM log WHERE id > @from AND id <= @to AND (deleted = 1 OR EXISTS (
       SELECT 1 FROM log n WHERE n.key = log.key AND n.id > log.id AND n.id <= @rev))`,
  );
  let revision = (db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'log'`).pluck().get() as number | undefined) ?? 0;

  interface Row {
    value: string;
    modRevision: number;
    createRevision: number;
  }

  const applyBatch = db.transaction((batch: readonly [number, string, string, number][]): WireResult[] => {
    let rev = revision;
    const results: WireResult[] = [];
    for (const [op, key, value, expected] of batch) {
      const prev = getCurrent.get(key) as Row | undefined;
      if (op === 0) {
        if (prev) {
          results.push(0);
          continue;
        }
      } else if (!prev) {
        results.push(1);
        continue;
      } else if (expected >= 0 && expected !== prev.modRevision) {
        results.push(2);
        continue;
      }
      rev++;
      if (op === 2) {
        const p = prev!;
        insertRow.run(rev, key, 0, 1, p.createRevision, p.modRevision, p.value);
        deleteCurrent.run(key);
        results.push([rev, p.createRevision, [p.value, p.modRevision, p.createRevision]]);
      } else {
        const createRevision = prev ? prev.createRevision : rev;
        insertRow.run(rev, key, prev ? 0 : 1, 0, createRevision, prev ? prev.modRevision : 0, value);
        upsertCurrent.run(key, rev);
        results.push([rev, createRevision, prev ? [prev.value, prev.modRevision, prev.createRevision] : null]);
      }
    }
    revision = rev;
    return results;
  });

  let queue: [number, string, string, number][] = [];
  let flushScheduled = false;
  let closing = false;
  let compacting = false;

  const post = (m: unknown): void => port.postMessage(m);

  const flush = (): void => {
    flushScheduled = false;
    if (queue.length === 0) return;
    const batch = queue.length <= config.maxBatch ? queue : queue.slice(0, config.maxBatch);
    queue = queue.length <= config.maxBatch ? [] : queue.slice(config.maxBatch);
    if (queue.length > 0) schedule();
    const started = performance.now();
    try {
      const results = applyBatch(batch);
      post({ type: 'committed', results, revision, seconds: (performance.now() - started) / 1000 });
    } catch (err) {
      post({ type: 'failed', count: batch.length, message: err instanceof Error ? err.message : String(err) });
    }
  };

  const schedule = (): void => {
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  const compact = async (target: number): Promise<void> => {
    compacting = true;
    const started = performance.now();
    let removed = 0;
    try {
      // The compacted revision is recorded before rows go, so no reader sees a partial state.
      setMeta.run('compact_revision', target);
      let from = 0;
      while (from < target) {
        if (closing) {
          post({ type: 'compacted', removed, seconds: (performance.now() - started) / 1000, aborted: true });
          return;
        }
        const end = (chunkEnd.get(from, target, config.chunkRows - 1) as number | undefined) ?? target;
        removed += compactChunk.run({ from, to: end, rev: target }).changes;
        from = end;
        // Let queued writes commit between chunks.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (!closing) {
        db.pragma('wal_checkpoint(TRUNCATE)');
        const pages = db.pragma('page_count', { simple: true }) as number;
        const free = db.pragma('freelist_count', { simple: true }) as number;
        if (free * 4 > pages) db.pragma(`incremental_vacuum(${free})`);
      }
      post({ type: 'compacted', removed, seconds: (performance.now() - started) / 1000, aborted: closing });
    } catch (err) {
      post({ type: 'compactFailed', message: err instanceof Error ? err.message : String(err) });
    } finally {
      compacting = false;
      if (closing) finishClose();
    }
  };

  const finishClose = (): void => {
    while (queue.length > 0) flush();
    db.close();
    post({ type: 'closed' });
    port.close();
  };

  port.on('message', (m: ToWriter) => {
    if (m.type === 'write') {
      if (queue.length === 0) queue = m.writes as [number, string, string, number][];
      else for (const w of m.writes) queue.push(w);
      schedule();
    } else if (m.type === 'compact') {
      void compact(m.revision);
    } else if (m.type === 'close') {
      closing = true;
      if (!compacting) finishClose();
    }
  });
}

/**
 * The source text of the writer thread, for `new Worker(source, { eval: true, workerData })`
 * with `workerData` = `{ sqliteModule: <resolved path of better-sqlite3>, config: WriterConfig }`.
 */
export function writerThreadSource(): string {
  // `__name` is the helper esbuild (and so tsx) may wrap named functions in when keeping names.
  return `'use strict';
const __name = (target) => target;
const { parentPort, workerData } = require('node:worker_threads');
(${writerThread.toString()})({ Database: require(workerData.sqliteModule), port: parentPort, config: workerData.config });
`;
}

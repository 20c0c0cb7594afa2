import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  StoreError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type RevisionLog,
  type StoreStats,
  type WatchEvent,
  type WatchOptions,
} from '../revision-log.ts';
import { maxKey, prefixEnd } from '../internal/keys.ts';
import { WatchHub, failedWatch } from '../internal/watch-hub.ts';

/** When and how much history the automatic compactor forgets. */
export interface AutoCompactOptions {
  /** Compact this often. Default 60,000 (one minute). */
  readonly intervalMs?: number;
  /**
   * Keep at least this many recent revisions readable (for lists at old revisions and
   * watches that resume). Default 10,000. The compactor also runs as soon as more than
   * twice this many revisions accumulated since the last compaction, so the retained
   * history stays between `retainRevisions` and 2 × `retainRevisions` revisions.
   */
  readonly retainRevisions?: number;
}

export interface SqliteLogOptions {
  /** The database file; created (with its directory) if missing. Its WAL lives beside it. */
  readonly path: string;
  /** The automatic compactor; `false` turns it off. Default: on, with the defaults above. */
  readonly autoCompact?: AutoCompactOptions | false;
  /** Called after each group commit with the number of writes in it and how long its transaction took, fsync included. */
  readonly onCommit?: (batchSize: number, fsyncSeconds: number) => void;
  /** Called after each compaction with the rows it removed and how long it took. */
  readonly onCompact?: (rowsRemoved: number, seconds: number) => void;
  /** Rows examined per compaction transaction. Default 1000. */
  readonly compactChunkRows?: number;
  /** Writes per group-commit transaction at most. Default 1000. */
  readonly maxBatch?: number;
  /** WAL pages after which SQLite checkpoints (`wal_autocheckpoint`). Default 1000 (about 4 MiB). */
  readonly walAutocheckpointPages?: number;
}

const DEFAULT_AUTO_COMPACT = { intervalMs: 60_000, retainRevisions: 10_000 } as const;
const JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;

type WriteOp =
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  | { readonly op: 'update'; readonly key: string; readonly value: string; readonly expected: number }
  | { readonly op: 'delete'; readonly key: string; readonly expected: number | undefined };

type PendingWrite = WriteOp & {
  readonly resolve: (kv: KeyValue) => void;
  readonly reject: (err: unknown) => void;
};

interface KvRow {
  key: string;
  value: string;
  modRevision: number;
  createRevision: number;
}

interface HistoryRow {
  id: number;
  key: string;
  value: string;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  prev_value: string | null;
  prev_create: number | null;
}

/** Statements whose key range is either [lo, hi) or, for the empty prefix, [lo, ∞). */
interface RangeStatements {
  readonly listLatest: Database.Statement;
  readonly countLatest: Database.Statement;
  readonly listAt: Database.Statement;
  readonly countAt: Database.Statement;
  readonly history: Database.Statement;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_id ON log (key, id);
CREATE TABLE IF NOT EXISTS current (key TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`;

function rangeStatements(db: Database.Database, bounded: boolean): RangeStatements {
  const range = (col: string): string => (bounded ? `${col} >= @lo AND ${col} < @hi` : `${col} >= @lo`);
  const kvCols = 'l.key AS key, l.value AS value, l.id AS modRevision, l.create_revision AS createRevision';
  const atRevision = `SELECT key AS k, max(id) AS mid FROM log WHERE ${range('key')} AND id <= @rev GROUP BY key ORDER BY key`;
  return {
    listLatest: db.prepare(
      `SELECT ${kvCols} FROM current c JOIN log l ON l.id = c.id WHERE ${range('c.key')} ORDER BY c.key LIMIT @limit`,
    ),
    countLatest: db.prepare(`SELECT count(*) FROM current WHERE ${range('key')}`).pluck(),
    // CROSS JOIN keeps the key-ordered subquery as the outer loop, so rows stream in key
    // order and LIMIT stops early instead of sorting the whole range (pages at a fixed revision).
    listAt: db.prepare(
      `SELECT ${kvCols} FROM (${atRevision}) m CROSS JOIN log l ON l.id = m.mid WHERE l.deleted = 0 LIMIT @limit`,
    ),
    countAt: db.prepare(`SELECT count(*) FROM (${atRevision}) m JOIN log l ON l.id = m.mid WHERE l.deleted = 0`).pluck(),
    // The unary + keeps SQLite on the rowid order: replay reads ascending revisions and stops at the limit.
    history: db.prepare(
      `SELECT l.id, l.key, l.value, l.deleted, l.create_revision, l.prev_revision,
              p.value AS prev_value, p.create_revision AS prev_create
       FROM log l LEFT JOIN log p ON p.id = l.prev_revision
       WHERE l.id > @after AND ${range('+l.key')} ORDER BY l.id LIMIT @limit`,
    ),
  };
}

/**
 * A `RevisionLog` in one SQLite file (WAL mode, `synchronous=FULL`), shaped like kine.
 *
 * Layout: `log` holds one row per write (id = revision; key; created/deleted flags;
 * create_revision; prev_revision = the key's previous row, 0 for a create; value,
 * which for a delete is the deleted value), indexed on (key, id). `current` maps each
 * live key to its latest row, so get/list/count at the latest revision never scan
 * history; lists at older revisions use the (key, id) index. `meta` keeps the
 * compacted revision; AUTOINCREMENT keeps revisions from being reused after compaction.
 *
 * Writes are group-committed: those arriving in the same event-loop turn are checked
 * one by one in arrival order and applied in one transaction (one fsync); each
 * promise resolves or rejects on its own once that transaction is durable.
 *
 * One process may open a database at a time. Use `openSqliteLog` to create one.
 */
export class SqliteLog implements RevisionLog {
  private readonly db: Database.Database;
  private readonly file: string;
  private revision: number;
  private compacted: number;
  private closed = false;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private compaction: Promise<void> = Promise.resolve();
  private autoCompacting = false;
  private autoTimer: NodeJS.Timeout | undefined;
  private readonly retainRevisions: number;
  private readonly maxBatch: number;
  private readonly chunkRows: number;
  private readonly hub: WatchHub;
  private readonly bounded: RangeStatements;
  private readonly unbounded: RangeStatements;
  private readonly stmt: {
    readonly getCurrent: Database.Statement;
    readonly insertRow: Database.Statement;
    readonly upsertCurrent: Database.Statement;
    readonly deleteCurrent: Database.Statement;
    readonly setMeta: Database.Statement;
    readonly countKeys: Database.Statement;
    readonly chunkEnd: Database.Statement;
    readonly compactChunk: Database.Statement;
  };
  private readonly applyBatch: (batch: readonly PendingWrite[]) => {
    results: Array<KeyValue | StoreError>;
    events: WatchEvent[];
    revision: number;
  };

  constructor(private readonly options: SqliteLogOptions) {
    this.file = path.resolve(options.path);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.maxBatch = options.maxBatch ?? 1000;
    this.chunkRows = options.compactChunkRows ?? 1000;
    const db = new Database(this.file);
    this.db = db;
    try {
      // auto_vacuum only takes effect before the first table exists.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.pragma(`wal_autocheckpoint = ${options.walAutocheckpointPages ?? 1000}`);
      db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }

    this.stmt = {
      getCurrent: db.prepare(
        `SELECT l.key AS key, l.value AS value, l.id AS modRevision, l.create_revision AS createRevision
         FROM current c JOIN log l ON l.id = c.id WHERE c.key = ?`,
      ),
      insertRow: db.prepare(
        `INSERT INTO log (id, key, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      upsertCurrent: db.prepare(
        `INSERT INTO current (key, id) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET id = excluded.id`,
      ),
      deleteCurrent: db.prepare(`DELETE FROM current WHERE key = ?`),
      setMeta: db.prepare(`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
      countKeys: db.prepare(`SELECT count(*) FROM current`).pluck(),
      chunkEnd: db.prepare(`SELECT id FROM log WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?`).pluck(),
      compactChunk: db.prepare(
        `DELETE FROM log WHERE id > @from AND id <= @to AND (deleted = 1 OR EXISTS (
           SELECT 1 FROM log n WHERE n.key = log.key AND n.id > log.id AND n.id <= @rev))`,
      ),
    };
    this.bounded = rangeStatements(db, true);
    this.unbounded = rangeStatements(db, false);

    const seq = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'log'`).pluck().get() as number | undefined;
    this.revision = seq ?? 0;
    const meta = db.prepare(`SELECT value FROM meta WHERE name = 'compact_revision'`).pluck().get() as
      | number
      | undefined;
    this.compacted = meta ?? 0;

    this.applyBatch = db.transaction((batch: readonly PendingWrite[]) => {
      let rev = this.revision;
      const results: Array<KeyValue | StoreError> = [];
      const events: WatchEvent[] = [];
      for (const w of batch) {
        const prev = this.stmt.getCurrent.get(w.key) as KvRow | undefined;
        const failure = check(w, prev);
        if (failure) {
          results.push(failure);
          continue;
        }
        rev++;
        if (w.op === 'delete') {
          const p = prev!;
          this.stmt.insertRow.run(rev, w.key, 0, 1, p.createRevision, p.modRevision, p.value);
          this.stmt.deleteCurrent.run(w.key);
          const kv: KeyValue = { key: w.key, value: p.value, modRevision: rev, createRevision: p.createRevision };
          results.push(kv);
          events.push({ type: 'delete', kv, prevKv: toKv(p) });
        } else {
          const createRevision = prev ? prev.createRevision : rev;
          this.stmt.insertRow.run(rev, w.key, prev ? 0 : 1, 0, createRevision, prev ? prev.modRevision : 0, w.value);
          this.stmt.upsertCurrent.run(w.key, rev);
          const kv: KeyValue = { key: w.key, value: w.value, modRevision: rev, createRevision };
          results.push(kv);
          events.push(prev ? { type: 'put', kv, prevKv: toKv(prev) } : { type: 'put', kv });
        }
      }
      return { results, events, revision: rev };
    });

    this.hub = new WatchHub({
      readHistory: (prefix, after, limit) => this.readHistory(prefix, after, limit),
      currentRevision: () => this.revision,
      compactRevision: () => this.compacted,
    });

    const auto = options.autoCompact === false ? undefined : { ...DEFAULT_AUTO_COMPACT, ...options.autoCompact };
    this.retainRevisions = auto?.retainRevisions ?? 0;
    if (auto) {
      this.autoTimer = setInterval(() => this.autoCompact(), auto.intervalMs);
      this.autoTimer.unref();
    }
  }

  async currentRevision(): Promise<number> {
    this.ensureOpen();
    return this.revision;
  }

  create(key: string, value: string): Promise<KeyValue> {
    return this.enqueue({ op: 'create', key, value });
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.enqueue({ op: 'update', key, value, expected: expectedModRevision });
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.enqueue({ op: 'delete', key, expected: expectedModRevision });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    const row = this.stmt.getCurrent.get(key) as KvRow | undefined;
    return row && toKv(row);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.ensureOpen();
    const latest = this.revision;
    const revision = opts.revision || latest;
    if (revision > latest) throw new StoreError('FutureRevision', `revision ${revision} is newer than ${latest}`);
    if (revision < this.compacted) {
      throw new StoreError('Compacted', `revision ${revision} is compacted (compacted to ${this.compacted})`);
    }
    const hi = prefixEnd(prefix);
    const st = hi === undefined ? this.unbounded : this.bounded;
    const atLatest = revision === latest;
    const range = { lo: maxKey(prefix, opts.startKey ?? ''), hi, rev: revision };
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    // One row past the limit tells whether the list was cut short.
    const rows = (atLatest ? st.listLatest : st.listAt).all({ ...range, limit: limit === 0 ? -1 : limit + 1 }) as KvRow[];
    if (limit === 0 || rows.length <= limit) {
      return { items: rows.map(toKv), revision, more: false, remaining: 0 };
    }
    const total = (atLatest ? st.countLatest : st.countAt).get(range) as number;
    return { items: rows.slice(0, limit).map(toKv), revision, more: true, remaining: total - limit };
  }

  async count(prefix: string): Promise<number> {
    this.ensureOpen();
    const hi = prefixEnd(prefix);
    if (hi === undefined) return this.unbounded.countLatest.get({ lo: prefix }) as number;
    return this.bounded.countLatest.get({ lo: prefix, hi }) as number;
  }

  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchEvent> {
    if (this.closed) return failedWatch(new StoreError('Closed', 'store is closed'));
    return this.hub.watch(prefix, opts);
  }

  compact(revision: number): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('Closed', 'store is closed'));
    const run = this.compaction.then(() => this.runCompaction(revision));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  async compactRevision(): Promise<number> {
    this.ensureOpen();
    return this.compacted;
  }

  async stats(): Promise<StoreStats> {
    this.ensureOpen();
    return {
      revision: this.revision,
      compactRevision: this.compacted,
      sizeBytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      keys: this.stmt.countKeys.get() as number,
      watchers: this.hub.size,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.pending.length > 0) this.flush();
    this.closed = true;
    this.hub.closeAll();
    if (this.autoTimer) clearInterval(this.autoTimer);
    await this.compaction; // stops at its next chunk boundary
    this.db.close();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }

  private enqueue(op: WriteOp): Promise<KeyValue> {
    if (this.closed) return Promise.reject(new StoreError('Closed', 'store is closed'));
    return new Promise<KeyValue>((resolve, reject) => {
      this.pending.push({ ...op, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending.length <= this.maxBatch ? this.pending : this.pending.slice(0, this.maxBatch);
    this.pending = this.pending.length <= this.maxBatch ? [] : this.pending.slice(this.maxBatch);
    if (this.pending.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    const started = performance.now();
    let outcome: ReturnType<SqliteLog['applyBatch']>;
    try {
      outcome = this.applyBatch(batch);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.revision = outcome.revision;
    outcome.results.forEach((r, i) => {
      const w = batch[i]!;
      if (r instanceof StoreError) w.reject(r);
      else w.resolve(r);
    });
    this.hub.publish(outcome.events);
    callHook(() => this.options.onCommit?.(batch.length, seconds));
    if (this.retainRevisions > 0 && this.revision - this.compacted > 2 * this.retainRevisions) this.autoCompact();
  }

  private autoCompact(): void {
    if (this.autoCompacting || this.closed) return;
    const target = this.revision - this.retainRevisions;
    if (target <= this.compacted) return;
    this.autoCompacting = true;
    this.compact(target)
      .catch(() => undefined) // a later run retries; Closed during shutdown is expected
      .finally(() => {
        this.autoCompacting = false;
      });
  }

  private async runCompaction(revision: number): Promise<void> {
    if (this.closed) return;
    if (revision <= this.compacted) return;
    if (revision > this.revision) {
      throw new StoreError('FutureRevision', `cannot compact to ${revision}: newer than ${this.revision}`);
    }
    const started = performance.now();
    // Record the compacted revision before removing rows, so no list or replay can read a partial state.
    this.stmt.setMeta.run('compact_revision', revision);
    this.compacted = revision;
    let removed = 0;
    let from = 0;
    while (from < revision) {
      if (this.closed) return;
      const end = (this.stmt.chunkEnd.get(from, revision, this.chunkRows - 1) as number | undefined) ?? revision;
      removed += this.stmt.compactChunk.run({ from, to: end, rev: revision }).changes;
      from = end;
      // Let queued writes commit between chunks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.closed) return;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    if (free * 4 > pages) this.db.pragma(`incremental_vacuum(${free})`);
    const seconds = (performance.now() - started) / 1000;
    callHook(() => this.options.onCompact?.(removed, seconds));
  }

  private readHistory(prefix: string, afterRevision: number, limit: number): WatchEvent[] {
    this.ensureOpen();
    const hi = prefixEnd(prefix);
    const rows = (
      hi === undefined
        ? this.unbounded.history.all({ after: afterRevision, lo: prefix, limit })
        : this.bounded.history.all({ after: afterRevision, lo: prefix, hi, limit })
    ) as HistoryRow[];
    return rows.map(toEvent);
  }
}

/** Opens (creating if needed) the SQLite revision log at `options.path`. */
export function openSqliteLog(options: SqliteLogOptions): SqliteLog {
  return new SqliteLog(options);
}

function check(w: WriteOp, prev: KvRow | undefined): StoreError | undefined {
  if (w.op === 'create') {
    return prev ? new StoreError('KeyExists', `key ${w.key} already exists`) : undefined;
  }
  if (!prev) return new StoreError('NotFound', `key ${w.key} not found`);
  if (w.expected !== undefined && w.expected !== prev.modRevision) {
    return new StoreError('RevisionMismatch', `key ${w.key} is at revision ${prev.modRevision}, expected ${w.expected}`);
  }
  return undefined;
}

function toKv(row: KvRow): KeyValue {
  return { key: row.key, value: row.value, modRevision: row.modRevision, createRevision: row.createRevision };
}

function toEvent(row: HistoryRow): WatchEvent {
  const kv: KeyValue = { key: row.key, value: row.value, modRevision: row.id, createRevision: row.create_revision };
  const type = row.deleted ? 'delete' : 'put';
  if (row.prev_revision === 0 || row.prev_value === null) return { type, kv };
  const prevKv: KeyValue = {
    key: row.key,
    value: row.prev_value,
    modRevision: row.prev_revision,
    createRevision: row.prev_create ?? row.create_revision,
  };
  return { type, kv, prevKv };
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function callHook(hook: () => void): void {
  try {
    hook();
  } catch {
    // Metrics hooks must not break commits or compaction.
  }
}

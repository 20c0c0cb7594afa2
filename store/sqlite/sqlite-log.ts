import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
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
import {
  FAILURE_CODES,
  OP_CREATE,
  OP_DELETE,
  OP_UPDATE,
  writerThreadSource,
  type FromWriter,
  type ToWriter,
  type WireResult,
  type WireWrite,
  type WriterConfig,
} from './writer-thread.ts';

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

interface PendingWrite {
  readonly op: number;
  readonly key: string;
  readonly value: string;
  /** The expected modRevision, -1 for none. */
  readonly expected: number;
  readonly resolve: (kv: KeyValue) => void;
  readonly reject: (err: unknown) => void;
}

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

/** Page cache of the reading connection, KiB. */
const READ_CACHE_KIB = 8 * 1024;

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

const require = createRequire(import.meta.url);

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
 * Threads: writes and compaction run on a writer thread (`writer-thread.ts`) that owns
 * the write connection, so commits and their fsync never block the event loop. Reads
 * (get, list, count, watch replay) use a second connection on the calling thread; WAL
 * lets them run while the writer commits. Each read sees every transaction committed
 * before it started, so a read issued after a write's promise resolved sees the write.
 * A read may also see writes committed whose promises have not resolved yet; it then
 * reports the newer revision it read at (a list's `revision`), never an older one.
 *
 * Writes are group-committed: those issued while the writer commits earlier ones (or
 * in the same event-loop turn) go to the writer together, and it applies them (at most
 * `maxBatch` at a time) in one transaction (one fsync), checking each write in call order. Each promise resolves or
 * rejects on its own once that transaction is durable; watchers get the events in
 * revision order right after.
 *
 * One process may open a database at a time. Use `openSqliteLog` to create one.
 */
export class SqliteLog implements RevisionLog {
  private readonly db: Database.Database;
  private readonly file: string;
  private readonly writer: Worker;
  private revision: number;
  private compacted: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Set when the writer thread died: every later write fails with it. */
  private broken: Error | undefined;
  /** Writes not yet sent to the writer (sent at the end of the event-loop turn). */
  private pending: PendingWrite[] = [];
  /** Writes sent to the writer, oldest first, awaiting their outcome. */
  private inFlight: PendingWrite[] = [];
  private inFlightHead = 0;
  private flushScheduled = false;
  private compaction: Promise<void> = Promise.resolve();
  private compactionDone: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private closedByWriter: (() => void) | undefined;
  private autoCompacting = false;
  private autoTimer: NodeJS.Timeout | undefined;
  private referenced = false;
  private readonly retainRevisions: number;
  private readonly hub: WatchHub;
  private readonly bounded: RangeStatements;
  private readonly unbounded: RangeStatements;
  private readonly stmt: {
    readonly getCurrent: Database.Statement;
    readonly latestRevision: Database.Statement;
    readonly countKeys: Database.Statement;
  };
  private readonly snapshot: <T>(read: () => T) => T;

  constructor(private readonly options: SqliteLogOptions) {
    this.file = path.resolve(options.path);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const db = new Database(this.file);
    this.db = db;
    try {
      // auto_vacuum only takes effect before the first table exists.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      // The reader's page cache (default 2 MiB): the hot working set of GETs stays in memory
      // instead of a pread per page; bounded, so memory stays flat however large the file grows.
      db.pragma(`cache_size = -${READ_CACHE_KIB}`);
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
      latestRevision: db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'log'`).pluck(),
      countKeys: db.prepare(`SELECT count(*) FROM current`).pluck(),
    };
    this.bounded = rangeStatements(db, true);
    this.unbounded = rangeStatements(db, false);
    const tx = db.transaction((read: () => unknown) => read());
    this.snapshot = <T>(read: () => T): T => tx(read) as T;

    this.revision = this.dbRevision();
    const meta = db.prepare(`SELECT value FROM meta WHERE name = 'compact_revision'`).pluck().get() as
      | number
      | undefined;
    this.compacted = meta ?? 0;

    const config: WriterConfig = {
      path: this.file,
      maxBatch: options.maxBatch ?? 1000,
      chunkRows: options.compactChunkRows ?? 1000,
      walAutocheckpointPages: options.walAutocheckpointPages ?? 1000,
      journalSizeLimitBytes: JOURNAL_SIZE_LIMIT_BYTES,
    };
    this.writer = new Worker(writerThreadSource(), {
      eval: true,
      workerData: { sqliteModule: require.resolve('better-sqlite3'), config },
      name: 'berth-sqlite-writer',
    });
    this.writer.unref();
    this.writer.on('message', (m: FromWriter) => this.onWriterMessage(m));
    this.writer.on('error', (err) => this.writerFailed(err));
    this.writer.on('exit', (code) => {
      if (!this.closedByWriter) this.writerFailed(new Error(`the SQLite writer thread exited (code ${code})`));
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
    return this.enqueue(OP_CREATE, key, value, -1);
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.enqueue(OP_UPDATE, key, value, expectedModRevision);
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.enqueue(OP_DELETE, key, '', expectedModRevision ?? -1);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    const row = this.stmt.getCurrent.get(key) as KvRow | undefined;
    return row && toKv(row);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.ensureOpen();
    // One read transaction: the rows and the revision they are at come from one snapshot.
    return this.snapshot(() => {
      const latest = this.dbRevision();
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
    });
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

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Writes already issued are still committed; the writer closes after them.
    this.closed = true;
    this.flush();
    this.hub.closeAll();
    if (this.autoTimer) clearInterval(this.autoTimer);
    if (!this.broken) {
      const closed = new Promise<void>((resolve) => (this.closedByWriter = resolve));
      this.updateRef(true);
      this.writer.postMessage({ type: 'close' } satisfies ToWriter);
      await closed;
    }
    await this.compaction; // the writer stopped it at its next chunk boundary
    await this.writer.terminate();
    this.db.close();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('Closed', 'store is closed');
  }

  /** The latest committed revision in the database, as this connection sees it now. */
  private dbRevision(): number {
    return (this.stmt.latestRevision.get() as number | undefined) ?? 0;
  }

  private enqueue(op: number, key: string, value: string, expected: number): Promise<KeyValue> {
    if (this.closed) return Promise.reject(new StoreError('Closed', 'store is closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<KeyValue>((resolve, reject) => {
      this.pending.push({ op, key, value, expected, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Sends the writes issued so far to the writer, in one message, unless it still has
   * writes of ours: they then wait here and go as soon as those commit. The writer
   * could not start on them earlier anyway, and this way each commit costs one message
   * each way and one wake-up of the writer, however many writes it holds.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    if (this.inFlight.length > this.inFlightHead && !this.closed) return;
    const batch = this.pending;
    this.pending = [];
    if (this.broken) {
      for (const w of batch) w.reject(this.broken);
      return;
    }
    const writes: WireWrite[] = batch.map((w) => [w.op, w.key, w.value, w.expected]);
    for (const w of batch) this.inFlight.push(w);
    this.updateRef();
    this.writer.postMessage({ type: 'write', writes } satisfies ToWriter);
  }

  private onWriterMessage(m: FromWriter): void {
    switch (m.type) {
      case 'committed':
        this.committed(m.results, m.revision, m.seconds);
        break;
      case 'failed': {
        const err = new Error(`SQLite write failed: ${m.message}`);
        for (let i = 0; i < m.count; i++) this.takeInFlight()?.reject(err);
        this.flush();
        break;
      }
      case 'compacted':
        this.compactionDone?.resolve();
        this.compactionDone = undefined;
        if (!m.aborted) callHook(() => this.options.onCompact?.(m.removed, m.seconds));
        break;
      case 'compactFailed':
        this.compactionDone?.reject(new Error(`SQLite compaction failed: ${m.message}`));
        this.compactionDone = undefined;
        break;
      case 'closed':
        this.closedByWriter?.();
        break;
    }
    this.updateRef();
  }

  private committed(results: readonly WireResult[], revision: number, seconds: number): void {
    const events: WatchEvent[] = [];
    const settled: Array<() => void> = [];
    for (const r of results) {
      const w = this.takeInFlight()!;
      if (typeof r === 'number') {
        const code = FAILURE_CODES[r]!;
        const err = failure(code, w.key, r === 2 ? w.expected : 0);
        settled.push(() => w.reject(err));
        continue;
      }
      const [modRevision, createRevision, prev] = r;
      const prevKv: KeyValue | undefined = prev ? { key: w.key, value: prev[0], modRevision: prev[1], createRevision: prev[2] } : undefined;
      if (w.op === OP_DELETE) {
        const kv: KeyValue = { key: w.key, value: prev![0], modRevision, createRevision };
        events.push({ type: 'delete', kv, prevKv: prevKv! });
        settled.push(() => w.resolve(kv));
      } else {
        const kv: KeyValue = { key: w.key, value: w.value, modRevision, createRevision };
        events.push(prevKv ? { type: 'put', kv, prevKv } : { type: 'put', kv });
        settled.push(() => w.resolve(kv));
      }
    }
    this.revision = Math.max(this.revision, revision);
    // The writes that waited for this commit go now (`flush`), before anything else runs.
    this.flush();
    for (const s of settled) s();
    this.hub.publish(events);
    callHook(() => this.options.onCommit?.(results.length, seconds));
    if (this.retainRevisions > 0 && this.revision - this.compacted > 2 * this.retainRevisions) this.autoCompact();
  }

  private takeInFlight(): PendingWrite | undefined {
    const w = this.inFlight[this.inFlightHead];
    if (w === undefined) return undefined;
    this.inFlight[this.inFlightHead++] = undefined as never;
    if (this.inFlightHead === this.inFlight.length) {
      this.inFlight = [];
      this.inFlightHead = 0;
    } else if (this.inFlightHead > 1024 && this.inFlightHead * 2 > this.inFlight.length) {
      this.inFlight = this.inFlight.slice(this.inFlightHead);
      this.inFlightHead = 0;
    }
    return w;
  }

  /** Keeps the process alive while the writer has work of ours, and only then. */
  private updateRef(force = false): void {
    const busy = force || this.inFlight.length > this.inFlightHead || this.compactionDone !== undefined || this.closedByWriter !== undefined;
    if (busy === this.referenced) return;
    this.referenced = busy;
    if (busy) this.writer.ref();
    else this.writer.unref();
  }

  private writerFailed(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    for (let w = this.takeInFlight(); w; w = this.takeInFlight()) w.reject(err);
    for (const w of this.pending.splice(0)) w.reject(err);
    this.compactionDone?.reject(err);
    this.compactionDone = undefined;
    this.closedByWriter?.();
    this.updateRef();
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
    if (this.closed || this.broken) return;
    if (revision <= this.compacted) return;
    if (revision > this.revision) {
      throw new StoreError('FutureRevision', `cannot compact to ${revision}: newer than ${this.revision}`);
    }
    // From now on lists and watches before `revision` fail, before the writer removes a row.
    this.compacted = revision;
    const done = new Promise<void>((resolve, reject) => (this.compactionDone = { resolve, reject }));
    this.updateRef();
    this.writer.postMessage({ type: 'compact', revision } satisfies ToWriter);
    await done;
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

function failure(code: (typeof FAILURE_CODES)[number], key: string, expected: number): StoreError {
  if (code === 'KeyExists') return new StoreError('KeyExists', `key ${key} already exists`);
  if (code === 'NotFound') return new StoreError('NotFound', `key ${key} not found`);
  return new StoreError('RevisionMismatch', `key ${key} was modified since revision ${expected}`);
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

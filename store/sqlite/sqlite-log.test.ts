import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { revisionLogConformance } from '../testing/conformance.ts';
import { openSqliteLog, type SqliteLog, type SqliteLogOptions } from './sqlite-log.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CRASH_WRITER = fileURLToPath(new URL('./testing/crash-writer.ts', import.meta.url));

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-test-'));
}

revisionLogConformance('SqliteLog', async () => {
  const dir = tempDir();
  const log = openSqliteLog({ path: path.join(dir, 'state.db'), autoCompact: false });
  return { log, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

/** A temp database path, removed (with any log opened through `open`) after the test. */
function testDb(): { file: string; open: (opts?: Partial<SqliteLogOptions>) => SqliteLog } {
  const dir = tempDir();
  const file = path.join(dir, 'state.db');
  const logs: SqliteLog[] = [];
  onTestFinished(async () => {
    for (const log of logs) await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    file,
    open: (opts = {}) => {
      const log = openSqliteLog({ path: file, autoCompact: false, ...opts });
      logs.push(log);
      return log;
    },
  };
}

/** Reads the database directly, to check what is on disk. */
function rawDb(file: string): Database.Database {
  const db = new Database(file, { readonly: true });
  onTestFinished(() => {
    db.close();
  });
  return db;
}

interface LogRow {
  id: number;
  key: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: string;
}

/** Checks the invariants that tie `log` and `current` together; returns the rows. */
function expectConsistent(db: Database.Database): LogRow[] {
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  const rows = db.prepare('SELECT * FROM log ORDER BY key, id').all() as LogRow[];
  const current = new Map(
    (db.prepare('SELECT key, id FROM current').all() as Array<{ key: string; id: number }>).map((r) => [r.key, r.id]),
  );
  const compacted = (db.prepare(`SELECT value FROM meta WHERE name = 'compact_revision'`).pluck().get() as number) ?? 0;
  const byKey = new Map<string, LogRow[]>();
  for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row]);
  for (const [key, history] of byKey) {
    let prev: LogRow | undefined;
    for (const row of history) {
      if (!prev && !row.created) {
        // The key's earlier rows were compacted away: they lie at or below the compacted revision.
        expect(row.prev_revision, `row ${row.id} of ${key}`).toBeLessThanOrEqual(compacted);
        expect(row.create_revision).toBeLessThanOrEqual(row.prev_revision);
      } else if (!prev || prev.deleted) {
        expect(row, `row ${row.id} creating ${key}`).toMatchObject({ created: 1, prev_revision: 0, create_revision: row.id });
      } else {
        expect(row, `row ${row.id} of ${key}`).toMatchObject({ created: 0, prev_revision: prev.id, create_revision: prev.create_revision });
      }
      prev = row;
    }
    expect(current.get(key), `current row of ${key}`).toBe(prev!.deleted ? undefined : prev!.id);
  }
  expect(current.size).toBe([...byKey.values()].filter((h) => !h[h.length - 1]!.deleted).length);
  return rows;
}

describe('SqliteLog', () => {
  it('keeps data, revision and compacted revision across a reopen, and never reuses a revision', async () => {
    const { file, open } = testDb();
    const first = open();
    await first.create('/r/a', 'a1');
    await first.update('/r/a', 'a2', 1);
    await first.create('/r/b', 'b1');
    await first.delete('/r/b'); // r4, the newest row, a tombstone
    await first.compact(4);
    await first.close();

    const second = open();
    expect(await second.currentRevision()).toBe(4);
    expect(await second.compactRevision()).toBe(4);
    expect(await second.get('/r/a')).toEqual({ key: '/r/a', value: 'a2', modRevision: 2, createRevision: 1 });
    expect((await second.create('/r/c', 'c1')).modRevision).toBe(5);
    expectConsistent(rawDb(file));
  });

  it('applies writes issued in the same tick in one transaction, reporting the batch', async () => {
    const batches: number[] = [];
    const { open } = testDb();
    const log = open({ onCommit: (size, seconds) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      batches.push(size);
    } });
    const kvs = await Promise.all(Array.from({ length: 64 }, (_, i) => log.create(`/g/${i}`, 'x')));
    expect(batches).toEqual([64]);
    expect(kvs.map((kv) => kv.modRevision)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
  });

  it('lets every read issued after a write resolved see it, while other writes commit', async () => {
    const { open } = testDb();
    const log = open();
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const key = `/raw/${w}/${i}`;
          const kv = await log.create(key, `v${i}`);
          expect(await log.get(key)).toEqual(kv);
          const list = await log.list(`/raw/${w}/`);
          expect(list.revision).toBeGreaterThanOrEqual(kv.modRevision);
          expect(list.items.map((x) => x.key)).toContain(key);
          const updated = await log.update(key, `u${i}`, kv.modRevision);
          expect((await log.get(key))?.value).toBe('u' + String(i));
          seen.push(updated.value);
        }
      }),
    );
    expect(seen).toHaveLength(640);
    expect(await log.count('/raw/')).toBe(640);
  });

  it('runs its writer thread the same from an esbuild bundle, as the berth program ships', async () => {
    const dir = tempDir();
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const entry = path.join(dir, 'entry.ts');
    fs.writeFileSync(
      entry,
      `import { openSqliteLog } from ${JSON.stringify(path.join(REPO_ROOT, 'store/sqlite/sqlite-log.ts'))};
const log = openSqliteLog({ path: process.argv[2] });
const a = await log.create('/b/a', 'x');
const b = await log.update('/b/a', 'y', a.modRevision);
await log.compact(b.modRevision);
process.stdout.write(JSON.stringify({ a, b, get: await log.get('/b/a'), compacted: await log.compactRevision() }));
await log.close();
`,
    );
    const { build } = await import('esbuild');
    // The settings of scripts/build.ts.
    await build({ entryPoints: [entry], outfile: path.join(dir, 'bundle.mjs'), bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' });
    // The bundle resolves better-sqlite3 from its own directory, as dist/berth.mjs does from the repository.
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const child = spawn(process.execPath, [path.join(dir, 'bundle.mjs'), path.join(dir, 'state.db')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, err).toBe(0);
    expect(JSON.parse(out)).toEqual({
      a: { key: '/b/a', value: 'x', modRevision: 1, createRevision: 1 },
      b: { key: '/b/a', value: 'y', modRevision: 2, createRevision: 1 },
      get: { key: '/b/a', value: 'y', modRevision: 2, createRevision: 1 },
      compacted: 2,
    });
  });

  it('commits writes still queued when close is called', async () => {
    const { file, open } = testDb();
    const log = open();
    const writes = Array.from({ length: 50 }, (_, i) => log.create(`/q/${i}`, 'x'));
    await log.close();
    expect((await Promise.all(writes)).map((kv) => kv.modRevision)).toHaveLength(50);
    expect(rawDb(file).prepare('SELECT count(*) FROM current').pluck().get()).toBe(50);
  });

  it('compacts in small chunks while writes go on, removing superseded rows and tombstones', async () => {
    const { file, open } = testDb();
    const compactions: number[] = [];
    const log = open({ compactChunkRows: 10, onCompact: (removed) => compactions.push(removed) });
    for (let i = 0; i < 50; i++) await log.create(`/k/${i}`, 'v0');
    for (let round = 1; round <= 4; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => log.update(`/k/${i}`, `v${round}`, 50 * (round - 1) + i + 1)));
    }
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.delete(`/k/${i}`))); // r251..260
    const target = await log.currentRevision();
    const compacting = log.compact(target);
    // Writes issued during compaction commit between its chunks.
    const during = await Promise.all(Array.from({ length: 20 }, (_, i) => log.create(`/during/${i}`, 'x')));
    await compacting;
    expect(during.map((kv) => kv.modRevision)).toEqual(Array.from({ length: 20 }, (_, i) => target + i + 1));
    expect(compactions).toEqual([260 - 40]);
    const rows = expectConsistent(rawDb(file));
    expect(rows).toHaveLength(40 + 20);
    expect(await log.get('/k/20')).toMatchObject({ value: 'v4', createRevision: 21 });
  });

  it('loses no acknowledged write when killed with SIGKILL mid-burst', async () => {
    const { file, open } = testDb();
    const child = spawn(process.execPath, ['--import', 'tsx', CRASH_WRITER, file], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const acks: Array<{ op: string; key: string; revision: number; value: string }> = [];
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? ''; // a line cut by the kill was never fully acknowledged
      for (const line of lines) {
        const [op, key, revision, value] = line.split(' ');
        acks.push({ op: op!, key: key!, revision: Number(revision), value: value! });
        if (acks.length === 3000) child.kill('SIGKILL');
      }
    });
    expect(await exited, stderr).toBe('SIGKILL');
    expect(acks.length).toBeGreaterThanOrEqual(3000);

    const db = rawDb(file);
    const rows = expectConsistent(db);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const a of acks) {
      const row = byId.get(a.revision);
      expect(row, `acknowledged ${a.op} of ${a.key} at ${a.revision}`).toMatchObject({
        key: a.key,
        value: a.value,
        deleted: a.op === 'delete' ? 1 : 0,
      });
    }
    const maxAck = Math.max(...acks.map((a) => a.revision));
    const log = open();
    const current = await log.currentRevision();
    expect(current).toBeGreaterThanOrEqual(maxAck);
    expect(current).toBe(Math.max(...rows.map((r) => r.id)));
    expect((await log.create('/after-crash', 'x')).modRevision).toBe(current + 1);
  });

  it('keeps the file bounded under endless updates of the same keys with auto-compaction', async () => {
    // 20,000 updates of 200 keys with 1 KiB values. Retaining 1,000 revisions, compaction
    // keeps at most 200 live + 2 × 1,000 retained + one batch ≈ 2,300 rows ≈ 2.5 MB of rows
    // and index, say 3.8 MB with partly filled pages. The WAL is checkpointed every 100 pages
    // but grows to the largest transaction (a 1,000-row compaction chunk, ~1.2 MB): ~1.6 MB.
    // So ~5.5 MB; we allow 8 MB, while the values alone, never compacted, take over 20 MB.
    const { open } = testDb();
    let compactions = 0;
    let maxBytes = 0;
    const log = open({
      autoCompact: { retainRevisions: 1000 },
      walAutocheckpointPages: 100,
      onCompact: () => compactions++,
    });
    const sample = async (): Promise<void> => {
      maxBytes = Math.max(maxBytes, (await log.stats()).sizeBytes);
    };
    const value = (n: number): string => JSON.stringify({ n, pad: 'x'.repeat(1000) });
    const revs = await Promise.all(Array.from({ length: 200 }, (_, k) => log.create(`/churn/${k}`, value(0))));
    const mod = revs.map((kv) => kv.modRevision);
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < 20_000; i += 16) {
          const k = i % 200;
          mod[k] = (await log.update(`/churn/${k}`, value(i), mod[k]!)).modRevision;
          if (i % 500 === w) await sample();
        }
      }),
    );
    await sample();
    const stats = await log.stats();
    expect(stats.revision).toBe(20_200);
    expect(compactions).toBeGreaterThanOrEqual(9);
    expect(stats.compactRevision).toBeGreaterThanOrEqual(20_200 - 2 * 1000);
    expect(maxBytes).toBeLessThan(8_000_000);
    expect((await log.list('/churn/')).items).toHaveLength(200);
  });
});

/**
 * Write-throughput benchmark for the SQLite revision log: 16 concurrent writers create
 * keys for a fixed count, every create durable (fsync) before it resolves. Prints one JSON
 * line: `{ creates, writers, seconds, createsPerSecond, meanBatch, meanFsyncMs }`.
 *
 * Run: node --import tsx bench/store-writes.ts [creates] [writers]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteLog } from '../store/index.ts';

const creates = Number(process.argv[2] ?? 50_000);
const writers = Number(process.argv[3] ?? 16);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-bench-'));
let batches = 0;
let fsyncSeconds = 0;
try {
  const log = openSqliteLog({
    path: path.join(dir, 'state.db'),
    onCommit: (_size, seconds) => {
      batches++;
      fsyncSeconds += seconds;
    },
  });
  const value = JSON.stringify({ kind: 'Container', spec: { image: 'busybox', command: ['sleep', '3600'] } });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w; i < creates; i += writers) await log.create(`/bench/${i}`, value);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await log.close();
  console.log(
    JSON.stringify({
      creates,
      writers,
      seconds: Number(seconds.toFixed(2)),
      createsPerSecond: Math.round(creates / seconds),
      meanBatch: Number((creates / batches).toFixed(1)),
      meanFsyncMs: Number(((fsyncSeconds / batches) * 1000).toFixed(3)),
    }),
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

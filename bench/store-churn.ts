/**
 * Churn benchmark for the SQLite revision log: 100,000 updates spread over 1,000 keys
 * by 16 concurrent writers, with the default auto-compaction. Prints one JSON line:
 * `{ updates, keys, seconds, fileBytesMax, fileBytesEnd }` (file = database + WAL).
 *
 * Run: node --import tsx bench/store-churn.ts [updates] [keys]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteLog } from '../store/index.ts';

const updates = Number(process.argv[2] ?? 100_000);
const keys = Number(process.argv[3] ?? 1_000);
const writers = 16;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-bench-'));
const file = path.join(dir, 'state.db');

const sizeOf = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);
let fileBytesMax = 0;
const sample = (): void => {
  fileBytesMax = Math.max(fileBytesMax, sizeOf(file) + sizeOf(`${file}-wal`));
};

// A value about the size of a small Container object as JSON.
const valueFor = (key: number, n: number): string =>
  JSON.stringify({
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name: `c${key}`, namespace: 'default', labels: { app: `app${key % 10}` }, generation: n },
    spec: { image: 'busybox', command: ['sh', '-c', 'sleep 3600'], state: 'Running', restartPolicy: 'Always' },
    status: { phase: 'Running', restartCount: n, observedGeneration: n, ip: `10.89.${key % 250}.${n % 250}` },
  });

try {
  const log = openSqliteLog({ path: file, onCommit: sample, onCompact: sample });
  const revs: number[] = [];
  for (let k = 0; k < keys; k++) revs.push((await log.create(`/bench/${k}`, valueFor(k, 0))).modRevision);
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w; i < updates; i += writers) {
        const k = i % keys;
        revs[k] = (await log.update(`/bench/${k}`, valueFor(k, i), revs[k]!)).modRevision;
        done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  sample();
  await log.close();
  const fileBytesEnd = sizeOf(file) + sizeOf(`${file}-wal`);
  console.log(JSON.stringify({ updates: done, keys, seconds: Number(seconds.toFixed(2)), fileBytesMax, fileBytesEnd }));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

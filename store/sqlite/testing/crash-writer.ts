/**
 * Child process for the crash-durability test: opens the SQLite log at argv[2] and
 * writes from 16 concurrent writers until killed (or 30 s pass), printing one line
 * per acknowledged write: `<op> <key> <revision> <value>` (op: create|update|delete).
 * stdout to a pipe is synchronous on Linux, so a printed line left the process.
 *
 * Run: node --import tsx store/sqlite/testing/crash-writer.ts <db path>
 */
import { openSqliteLog } from '../sqlite-log.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: crash-writer.ts <db path>');
const log = openSqliteLog({ path: file, autoCompact: false });
const deadline = Date.now() + 30_000;
const ack = (op: string, key: string, revision: number, value: string): void => {
  process.stdout.write(`${op} ${key} ${revision} ${value}\n`);
};

await Promise.all(
  Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const key = `/crash/${w}/${i}`;
      const created = await log.create(key, `c-${w}-${i}`);
      ack('create', key, created.modRevision, created.value);
      const updated = await log.update(key, `u-${w}-${i}`, created.modRevision);
      ack('update', key, updated.modRevision, updated.value);
      if (i % 3 === 0) {
        const deleted = await log.delete(key, updated.modRevision);
        ack('delete', key, deleted.modRevision, deleted.value);
      }
    }
  }),
);
await log.close();

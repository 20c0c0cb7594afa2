import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerConfig, ContainerId, ImageId } from '../cri/types.ts';
import type { TaskState } from './states.ts';

/**
 * What the runtime persists about one container, in `<dir>/record.json`, so that a
 * new runtime instance over the same root finds it again. Written atomically.
 */
export interface ContainerRecord {
  readonly version: 1;
  readonly id: ContainerId;
  readonly config: ContainerConfig;
  readonly imageId: ImageId;
  /** The stop signal resolved at create (config, image STOPSIGNAL, SIGTERM). */
  readonly stopSignal: string;
  readonly cgroupsPath: string;
  readonly logPath: string;
  readonly createdAtMs: number;
  state: TaskState;
  /** Host PID of the container's init. */
  pid?: number;
  startedAtMs?: number;
  finishedAtMs?: number;
  exitCode?: number;
  oomKilled?: boolean;
  message?: string;
}

export const RECORD_FILE = 'record.json';

/** Writes the record atomically (temporary file, then rename). */
export async function writeRecord(dir: string, record: ContainerRecord): Promise<void> {
  const tmp = join(dir, `.${RECORD_FILE}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  await writeFile(tmp, JSON.stringify(record));
  await rename(tmp, join(dir, RECORD_FILE));
}

/**
 * Loads every record under `containersDir`, plus the container directories that
 * have none (a create that never finished), which the caller should clean up.
 */
export async function loadRecords(containersDir: string): Promise<{ records: ContainerRecord[]; orphans: string[] }> {
  await mkdir(containersDir, { recursive: true });
  const records: ContainerRecord[] = [];
  const orphans: string[] = [];
  for (const name of await readdir(containersDir)) {
    try {
      const rec = JSON.parse(await readFile(join(containersDir, name, RECORD_FILE), 'utf8')) as ContainerRecord;
      if (rec.version === 1 && rec.id === name) records.push(rec);
      else orphans.push(name);
    } catch {
      orphans.push(name);
    }
  }
  return { records, orphans };
}

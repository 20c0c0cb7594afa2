import { watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { CallOptions, ContainerId, LogLine, LogOptions } from '../cri/types.ts';
import { logLineTimeMs, parseCriLogLine } from '../oci/cri-log.ts';
import type { Task } from '../task/task.ts';
import { lookup, type ServerContext } from './context.ts';

/** Safety net for a missed inotify event while following. */
const FOLLOW_RECHECK_MS = 500;

/**
 * Lines of the container's CRI-format log (written by conmon): the last
 * `tailLines`, those at or after `sinceMs`; with `follow`, then every new line
 * until the container exits (and its log is drained) or `signal` aborts.
 *
 * The iteration rejects with `NotFound` when the container does not exist.
 */
export async function* logs(
  ctx: ServerContext,
  id: ContainerId,
  logOpts: LogOptions = {},
  opts?: CallOptions,
): AsyncGenerator<LogLine> {
  const task = lookup(ctx, id);
  const reader = new LogReader(task.record.logPath);
  const keep = (l: LogLine): boolean => logOpts.sinceMs === undefined || logLineTimeMs(l) >= logOpts.sinceMs;
  let first = (await reader.readNew()).filter(keep);
  if (logOpts.tailLines !== undefined) first = logOpts.tailLines > 0 ? first.slice(-logOpts.tailLines) : [];
  yield* first;
  if (!logOpts.follow) return;

  const signal = opts?.signal;
  let wake: (() => void) | undefined;
  const poke = (): void => wake?.();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(task.record.logPath), (_e, f) => {
      if (f === basename(task.record.logPath)) poke();
    });
    watcher.on('error', () => {});
  } catch {
    // the directory is gone: the container was removed; the loop ends below
  }
  signal?.addEventListener('abort', poke);
  try {
    for (;;) {
      if (signal?.aborted) return;
      const ended = isDone(task);
      for (const l of await reader.readNew()) if (keep(l)) yield l;
      if (ended) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, FOLLOW_RECHECK_MS);
        void task.waitForExit(FOLLOW_RECHECK_MS).then((exited) => exited && done());
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    watcher?.close();
    signal?.removeEventListener('abort', poke);
  }
}

function isDone(task: Task): boolean {
  return task.state === 'stopped' || task.state === 'deleted';
}

/** Reads a growing CRI log file from where it left off, keeping an unfinished last line for later. */
class LogReader {
  private offset = 0;
  private carry = '';

  constructor(private readonly path: string) {}

  async readNew(): Promise<LogLine[]> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch {
      return [];
    }
    try {
      const chunks: Buffer[] = [];
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        chunks.push(buf.subarray(0, bytesRead));
      }
      const text = this.carry + Buffer.concat(chunks).toString('utf8');
      const parts = text.split('\n');
      this.carry = parts.pop() ?? '';
      return parts.map(parseCriLogLine).filter((l): l is LogLine => l !== undefined);
    } finally {
      await fh.close();
    }
  }
}

import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readOomKillCount } from '../oci/cgroups.ts';
import type { RuncState } from '../oci/runc.ts';
import type { ExitInfo, Task } from '../task/task.ts';
import { emit, persist, type ServerContext } from './context.ts';

/** How often the safety-net sweep runs (one `runc list` for all containers). */
export const SWEEP_INTERVAL_MS = 2_000;

/**
 * Notices container exits without polling runc per container: an inotify watch
 * on conmon's exit directory reports each exit as conmon writes it, and a sweep
 * every {@link SWEEP_INTERVAL_MS} with one `runc list` catches what the watch
 * cannot (a monitor that died, a pause or resume done behind our back).
 */
export class ExitMonitor {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly ctx: ServerContext) {}

  start(): void {
    this.watcher = watch(this.ctx.paths.exits, (_event, filename) => {
      const task = filename ? this.ctx.tasks.get(filename as Task['id']) : undefined;
      if (task) void this.check(task);
    });
    this.watcher.on('error', (err) => this.ctx.log.warn({ err }, 'exit directory watch failed; relying on the sweep'));
    this.timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.timer);
  }

  /** Applies the task's exit if conmon has written its exit file. */
  async check(task: Task): Promise<void> {
    if (!isLive(task) || task.handlingExit) return;
    task.handlingExit = true;
    try {
      const info = await this.readExit(task);
      if (info) await this.apply(task, info);
    } catch (err) {
      this.ctx.log.warn({ err, id: task.id }, 'cannot read container exit');
    } finally {
      task.handlingExit = false;
    }
  }

  /** Applies an exit now, or defers it to the start verb running concurrently. */
  async apply(task: Task, info: ExitInfo): Promise<void> {
    if (!isLive(task)) return;
    if (task.starting) {
      task.deferredExit = info;
      return;
    }
    await applyExit(this.ctx, task, info);
  }

  /** One `runc list` for every container; applies exits and out-of-band pause/resume. */
  sweep(): Promise<void> {
    this.sweeping ??= this.doSweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async doSweep(): Promise<void> {
    const live = [...this.ctx.tasks.values()].filter(isLive);
    if (live.length === 0) return;
    let states: Map<string, RuncState>;
    try {
      states = new Map((await this.ctx.runc.list()).map((s) => [s.id, s]));
    } catch (err) {
      this.ctx.log.warn({ err }, 'runc list failed during sweep');
      return;
    }
    for (const task of live) {
      if (!isLive(task) || task.handlingExit) continue;
      const s = states.get(task.id);
      if (!s || s.status === 'stopped') {
        await this.check(task);
        if (isLive(task) && !task.busy && !(await conmonAlive(task))) {
          // The monitor is gone without an exit file: the exit code is lost.
          await this.apply(task, { finishedAtMs: Date.now(), oomKilled: false, message: 'container monitor (conmon) exited without recording the exit code' });
        }
      } else if (!task.busy && s.status === 'paused' && task.state === 'running') {
        task.moveTo('paused');
        await persist(this.ctx, task);
        emit(this.ctx, task, 'paused');
      } else if (!task.busy && s.status === 'running' && task.state === 'paused') {
        task.moveTo('running');
        await persist(this.ctx, task);
        emit(this.ctx, task, 'resumed');
      }
    }
  }

  private async readExit(task: Task): Promise<ExitInfo | undefined> {
    const file = join(this.ctx.paths.exits, task.id);
    for (let attempt = 0; attempt < 20; attempt++) {
      let text: string;
      try {
        text = (await readFile(file, 'utf8')).trim();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      if (/^-?\d+$/.test(text)) {
        const finishedAtMs = Math.round((await stat(file)).mtimeMs);
        // Read before anyone runs `runc delete`, which removes the cgroup and its counter.
        const oomKilled = (await readOomKillCount(task.record.cgroupsPath)) > 0;
        return { exitCode: Number(text), finishedAtMs, oomKilled };
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`exit file ${file} holds no exit code`);
  }
}

/** Records the exit, moves the task to `stopped`, emits `oom` (if so) and `exited`. */
export async function applyExit(ctx: ServerContext, task: Task, info: ExitInfo): Promise<void> {
  if (!isLive(task)) return;
  const r = task.record;
  if (info.exitCode !== undefined) r.exitCode = info.exitCode;
  // File mtimes are tick-coarse: never report an exit before the start.
  r.finishedAtMs = Math.max(info.finishedAtMs, r.startedAtMs ?? 0);
  r.oomKilled = info.oomKilled;
  if (info.message) r.message = info.message;
  task.moveTo('stopped');
  await persist(ctx, task);
  if (info.oomKilled) emit(ctx, task, 'oom', r.finishedAtMs);
  emit(ctx, task, 'exited', r.finishedAtMs);
}

function isLive(task: Task): boolean {
  return task.state === 'created' || task.state === 'running' || task.state === 'paused';
}

async function conmonAlive(task: Task): Promise<boolean> {
  try {
    const pid = Number((await readFile(join(task.dir, 'conmon.pid'), 'utf8')).trim());
    if (!pid) return false;
    // The PID may have been reused: it must still be this container's conmon.
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(task.id)) return false;
    // A zombie conmon (not yet reaped by PID 1) is gone for our purposes.
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { ContainerEventType, ContainerId, ContainerStatus } from '../cri/types.ts';
import type { RootfsSource } from '../images/rootfs-source.ts';
import type { Runc } from '../oci/runc.ts';
import { writeRecord } from '../task/record.ts';
import { exitReason, toContainerState } from '../task/states.ts';
import type { Task } from '../task/task.ts';
import type { EventHub } from './events.ts';

/** The subset of pino's API the runtime logs through. */
export interface RuntimeLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: RuntimeLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Directories under the runtime's root. */
export interface RuntimePaths {
  readonly root: string;
  /** `<root>/containers/<id>/`: bundle, overlay dirs, log, record. */
  readonly containers: string;
  /** conmon's exit files, `<root>/exits/<id>`. */
  readonly exits: string;
  /** conmon's attach sockets. */
  readonly sockets: string;
  /** runc's `--root`. */
  readonly runc: string;
}

export function runtimePaths(root: string): RuntimePaths {
  return { root, containers: join(root, 'containers'), exits: join(root, 'exits'), sockets: join(root, 'sock'), runc: join(root, 'runc') };
}

/** What every verb of the real runtime works with. Internal to `runtime/server`. */
export interface ServerContext {
  readonly paths: RuntimePaths;
  readonly runc: Runc;
  readonly rootfs: RootfsSource;
  readonly cgroupParent: string;
  readonly conmonBinary: string;
  readonly tasks: Map<ContainerId, Task>;
  /** Names reserved by creates in flight. */
  readonly reservedNames: Set<string>;
  readonly hub: EventHub;
  readonly log: RuntimeLogger;
  /** Reads and applies a container's exit if its exit file exists or its monitor is gone. */
  checkExit(task: Task): Promise<void>;
}

/**
 * The task of a container that has not been removed.
 *
 * @throws RuntimeError `NotFound`.
 */
export function lookup(ctx: ServerContext, id: ContainerId): Task {
  const task = ctx.tasks.get(id);
  if (!task || task.state === 'deleted') throw new RuntimeError('NotFound', `container ${id} not found`);
  return task;
}

/** Persists the task's record; failures are logged, as the in-memory state is already authoritative. */
export async function persist(ctx: ServerContext, task: Task): Promise<void> {
  if (task.state === 'deleted') return;
  try {
    await writeRecord(task.dir, task.record);
  } catch (err) {
    ctx.log.warn({ err, id: task.id }, 'cannot persist container record');
  }
}

export function emit(ctx: ServerContext, task: Task, type: ContainerEventType, timestampMs = Date.now()): void {
  ctx.hub.publish({
    type,
    id: task.id,
    labels: task.record.config.labels ?? {},
    timestampMs,
    ...(type === 'exited' && task.record.exitCode !== undefined ? { exitCode: task.record.exitCode } : {}),
  });
}

export function toStatus(task: Task, pid?: number): ContainerStatus {
  const r = task.record;
  const stopped = task.state === 'stopped';
  return {
    id: r.id,
    name: r.config.name,
    imageRef: r.config.image,
    imageId: r.imageId,
    state: toContainerState(task.state),
    createdAtMs: r.createdAtMs,
    labels: r.config.labels ?? {},
    annotations: r.config.annotations ?? {},
    ...(pid !== undefined && !stopped ? { pid } : {}),
    ...(r.startedAtMs !== undefined ? { startedAtMs: r.startedAtMs } : {}),
    ...(stopped && r.finishedAtMs !== undefined ? { finishedAtMs: r.finishedAtMs } : {}),
    ...(stopped && r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(stopped ? { reason: exitReason(r.exitCode, r.oomKilled ?? false) } : {}),
    ...(r.message ? { message: r.message } : {}),
    logPath: r.logPath,
  };
}

/** Wraps anything thrown below the verbs into a `RuntimeError`. */
export function toRuntimeError(err: unknown, what: string): RuntimeError {
  if (err instanceof RuntimeError) return err;
  return new RuntimeError('Internal', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

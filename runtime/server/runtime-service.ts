import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { RuntimeService } from '../cri/runtime-service.ts';
import type {
  AttachRequest,
  AttachStreams,
  CallOptions,
  ContainerConfig,
  ContainerEvent,
  ContainerFilter,
  ContainerId,
  ContainerStats,
  ContainerStatus,
  ExecRequest,
  ExecStreams,
  ExecSyncResult,
  LogLine,
  LogOptions,
  RuntimeContainer,
  RuntimeVersion,
} from '../cri/types.ts';
import type { CommitResult } from '../images/commit.ts';
import type { RootfsSource } from '../images/rootfs-source.ts';
import { removeCgroup } from '../oci/cgroups.ts';
import { DEFAULT_CONMON } from '../oci/conmon.ts';
import { unmountOverlay } from '../oci/overlay.ts';
import { Runc } from '../oci/runc.ts';
import { cgroupsPathFor } from '../oci/spec.ts';
import { loadRecords } from '../task/record.ts';
import { Task } from '../task/task.ts';
import { attach } from './container-attach.ts';
import { commitContainer, containerLayer, type CommitContainerOptions, type ContainerLayer } from './container-commit.ts';
import { containerStatus } from './container-status.ts';
import { createContainer } from './container-create.ts';
import { exec, execDetached, execSync } from './container-exec.ts';
import { listContainers } from './container-list.ts';
import { logs } from './container-logs.ts';
import { pauseContainer } from './container-pause.ts';
import { removeContainer } from './container-remove.ts';
import { resumeContainer } from './container-resume.ts';
import { signalContainer } from './container-signal.ts';
import { startContainer } from './container-start.ts';
import { containerStats } from './container-stats.ts';
import { stopContainer } from './container-stop.ts';
import { runtimePaths, silentLogger, type RuntimeLogger, type ServerContext } from './context.ts';
import { EventHub, events } from './events.ts';
import { ExitMonitor } from './exit-monitor.ts';

export const RUNTIME_API_VERSION = 'v1';
export const DEFAULT_CGROUP_PARENT = '/berth';

export interface RuncRuntimeServiceOptions {
  /** Data directory: containers, exit files, runc state. Created if missing. */
  readonly root: string;
  /** Where images come from (the image store, or a test fixture). */
  readonly rootfs: RootfsSource;
  /** Cgroup under which each container gets `<cgroupParent>/<id>`; default `/berth`. */
  readonly cgroupParent?: string;
  readonly logger?: RuntimeLogger;
  readonly runcBinary?: string;
  readonly conmonBinary?: string;
}

/**
 * The real runtime, as CRI-O is: berth → conmon → runc, with an overlayfs root
 * per container and cgroup v1 limits. Containers outlive this object and the
 * process; a new instance over the same `root` finds them again, including exits
 * that happened in between (from conmon's exit files).
 *
 * Exits reach `events()` through an inotify watch on conmon's exit directory,
 * backed by one `runc list` every 2 s; no per-container polling.
 */
export class RuncRuntimeService implements RuntimeService {
  private readonly ctx: ServerContext;
  private readonly monitor: ExitMonitor;
  private readonly ready: Promise<void>;
  private closed = false;

  constructor(opts: RuncRuntimeServiceOptions) {
    const runc = new Runc({ root: join(opts.root, 'runc'), ...(opts.runcBinary ? { binary: opts.runcBinary } : {}) });
    const ctx: ServerContext = {
      paths: runtimePaths(opts.root),
      runc,
      rootfs: opts.rootfs,
      cgroupParent: opts.cgroupParent ?? DEFAULT_CGROUP_PARENT,
      conmonBinary: opts.conmonBinary ?? DEFAULT_CONMON,
      tasks: new Map(),
      reservedNames: new Set(),
      hub: new EventHub(),
      log: opts.logger ?? silentLogger,
      checkExit: (task) => this.monitor.check(task),
    };
    this.ctx = ctx;
    this.monitor = new ExitMonitor(ctx);
    this.ready = this.recover();
    this.ready.catch(() => {});
  }

  /**
   * Stops watching and ends every `events()` subscription. Containers keep
   * running; a new instance over the same root picks them up.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ready.catch(() => {});
    this.monitor.close();
    this.ctx.hub.close();
  }

  async version(opts?: CallOptions): Promise<RuntimeVersion> {
    await this.guard();
    return { runtimeName: 'runc', runtimeVersion: await this.ctx.runc.version(opts), apiVersion: RUNTIME_API_VERSION };
  }

  async createContainer(config: ContainerConfig, opts?: CallOptions): Promise<ContainerId> {
    await this.guard();
    return createContainer(this.ctx, config, opts);
  }

  async startContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    await this.guard();
    return startContainer(this.ctx, id, opts);
  }

  async stopContainer(id: ContainerId, gracePeriodSeconds: number, opts?: CallOptions): Promise<void> {
    await this.guard();
    return stopContainer(this.ctx, id, gracePeriodSeconds, opts);
  }

  async pauseContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    await this.guard();
    return pauseContainer(this.ctx, id, opts);
  }

  async resumeContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    await this.guard();
    return resumeContainer(this.ctx, id, opts);
  }

  async signalContainer(id: ContainerId, signal: string, opts?: CallOptions): Promise<void> {
    await this.guard();
    return signalContainer(this.ctx, id, signal, opts);
  }

  async removeContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    await this.guard();
    return removeContainer(this.ctx, id, opts);
  }

  async containerStatus(id: ContainerId, opts?: CallOptions): Promise<ContainerStatus> {
    await this.guard();
    return containerStatus(this.ctx, id, opts);
  }

  async listContainers(filter?: ContainerFilter, opts?: CallOptions): Promise<RuntimeContainer[]> {
    await this.guard();
    return listContainers(this.ctx, filter, opts);
  }

  async containerStats(id: ContainerId, opts?: CallOptions): Promise<ContainerStats> {
    await this.guard();
    return containerStats(this.ctx, id, opts);
  }

  async execSync(id: ContainerId, cmd: readonly string[], timeoutSeconds: number, opts?: CallOptions): Promise<ExecSyncResult> {
    await this.guard();
    return execSync(this.ctx, id, cmd, timeoutSeconds, opts);
  }

  async exec(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams> {
    await this.guard();
    return exec(this.ctx, id, req, opts);
  }

  async execDetached(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<void> {
    await this.guard();
    return execDetached(this.ctx, id, req, opts);
  }

  async attach(id: ContainerId, req: AttachRequest, opts?: CallOptions): Promise<AttachStreams> {
    await this.guard();
    return attach(this.ctx, id, req, opts);
  }

  async *logs(id: ContainerId, logOpts?: LogOptions, opts?: CallOptions): AsyncIterable<LogLine> {
    await this.guard();
    yield* logs(this.ctx, id, logOpts, opts);
  }

  events(opts?: CallOptions): AsyncIterable<ContainerEvent> {
    if (this.closed) throw new RuntimeError('Unavailable', 'the runtime service is closed');
    return events(this.ctx, opts);
  }

  /** The container's writable layer and base image (see `containerLayer`). Rejects `NotFound`. */
  async containerLayer(id: ContainerId): Promise<ContainerLayer> {
    await this.guard();
    return containerLayer(this.ctx, id);
  }

  /** `docker commit`: the container's layer on its image as a new image in `opts.images`, paused meanwhile (see `commitContainer`). */
  async commitContainer(id: ContainerId, opts: CommitContainerOptions): Promise<CommitResult> {
    await this.guard();
    return commitContainer(this.ctx, id, opts);
  }

  /** Runs the safety-net sweep now (one `runc list`); for tests and the agent's resync. */
  async resync(): Promise<void> {
    await this.guard();
    await this.monitor.sweep();
  }

  private async guard(): Promise<void> {
    if (this.closed) throw new RuntimeError('Unavailable', 'the runtime service is closed');
    try {
      await this.ready;
    } catch (err) {
      throw new RuntimeError('Unavailable', `the runtime could not start: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Loads records, cleans up half-created containers, and catches up on exits missed while down. */
  private async recover(): Promise<void> {
    const { paths, tasks } = this.ctx;
    await Promise.all([paths.containers, paths.exits, paths.sockets, paths.runc].map((d) => mkdir(d, { recursive: true })));
    const { records, orphans } = await loadRecords(paths.containers);
    for (const r of records) tasks.set(r.id, new Task(join(paths.containers, r.id), r));
    for (const id of orphans) await this.removeOrphan(id);
    this.monitor.start();
    for (const task of tasks.values()) await this.monitor.check(task);
    await this.monitor.sweep();
  }

  private async removeOrphan(id: string): Promise<void> {
    const dir = join(this.ctx.paths.containers, id);
    try {
      await this.ctx.runc.delete(id, { force: true }).catch(() => {});
      await unmountOverlay(dir);
      await removeCgroup(cgroupsPathFor(this.ctx.cgroupParent, id));
      await rm(dir, { recursive: true, force: true });
      await rm(join(this.ctx.paths.exits, id), { force: true });
      this.ctx.log.info({ id }, 'removed a container whose create never finished');
    } catch (err) {
      this.ctx.log.warn({ err, id }, 'cannot clean up a half-created container');
    }
  }
}

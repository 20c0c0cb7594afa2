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
} from './types.ts';

/**
 * The node's container runtime, shaped after CRI RuntimeService, plus Docker's
 * pause/resume. Implementations: the real one (conmon + runc, `runtime/server`) and
 * `FakeRuntimeService` (`runtime/testing`); both pass `runtime/testing/conformance.ts`.
 *
 * Contracts common to every method:
 * - Failures reject with `RuntimeError` (`runtime/cri/errors.ts`), never a bare Error.
 * - `stopContainer` and `removeContainer` are idempotent: they resolve if the
 *   container is already stopped or gone. Every other verb on a missing container
 *   rejects with `NotFound`; a verb that the state forbids (start twice, pause an
 *   exited container, exec into a paused one) rejects with `FailedPrecondition`.
 * - Containers keep running when the process that created them exits; a new
 *   instance over the same state directory finds them again.
 */
export interface RuntimeService {
  version(opts?: CallOptions): Promise<RuntimeVersion>;
  /** Creates the container (root filesystem, config, monitor) without starting its process; state `created`. */
  createContainer(config: ContainerConfig, opts?: CallOptions): Promise<ContainerId>;
  /** Starts the process of a `created` container. */
  startContainer(id: ContainerId, opts?: CallOptions): Promise<void>;
  /**
   * Stops the container: its stop signal, then SIGKILL after the grace period.
   * A paused container is killed at once (signals other than SIGKILL wait for a thaw).
   * Idempotent: resolves if the container is already stopped or removed.
   */
  stopContainer(id: ContainerId, gracePeriodSeconds: number, opts?: CallOptions): Promise<void>;
  /** Freezes every process of a running container (cgroup freezer). */
  pauseContainer(id: ContainerId, opts?: CallOptions): Promise<void>;
  /** Thaws a paused container. */
  resumeContainer(id: ContainerId, opts?: CallOptions): Promise<void>;
  /**
   * Sends `signal` (`HUP`, `SIGHUP` or `1`) to the container's main process, as `docker kill -s`:
   * the container runs on if the process survives it. Rejects with `InvalidArgument` for a
   * signal Linux does not have, `FailedPrecondition` when the container is not running
   * (paused ones too: Docker refuses to signal those).
   */
  signalContainer(id: ContainerId, signal: string, opts?: CallOptions): Promise<void>;
  /**
   * Removes the container and everything it used: runtime state, mounts, root
   * filesystem, cgroups, logs. A running container is killed first. Idempotent.
   */
  removeContainer(id: ContainerId, opts?: CallOptions): Promise<void>;
  containerStatus(id: ContainerId, opts?: CallOptions): Promise<ContainerStatus>;
  listContainers(filter?: ContainerFilter, opts?: CallOptions): Promise<RuntimeContainer[]>;
  /** CPU, memory and pids of a running or paused container. */
  containerStats(id: ContainerId, opts?: CallOptions): Promise<ContainerStats>;
  /** Runs a command in the container and waits for it (health checks). */
  execSync(id: ContainerId, cmd: readonly string[], timeoutSeconds: number, opts?: CallOptions): Promise<ExecSyncResult>;
  /**
   * Starts an interactive command in a running container, with a TTY when `req.tty`
   * (then stderr goes to stdout and `resize` works). Rejects with `FailedPrecondition`
   * when the container is not running (`cannot exec into a paused container`),
   * `InvalidArgument` when the command cannot run. `signal` kills the process.
   */
  exec(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams>;
  /**
   * Starts a command in a running container in the background (`docker exec -d`; not in
   * the CRI): resolves once it runs, its output discarded and its exit not reported.
   * Rejects as `exec`, and with `InvalidArgument` for `tty` or `stdin`.
   */
  execDetached(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<void>;
  /**
   * Attaches to the container's main process: its output from now on (earlier output
   * is in `logs`), its stdin when `req.stdin` (the container needs `stdin: true`), its
   * terminal when it has one (`tty: true`). Detaching never stops the container.
   * Rejects with `FailedPrecondition` when the container has exited, `InvalidArgument`
   * for stdin on a container created without it. `signal` detaches.
   */
  attach(id: ContainerId, req: AttachRequest, opts?: CallOptions): Promise<AttachStreams>;
  /** Lines of the container's log; with `follow`, goes on until the container exits or `signal` aborts. */
  logs(id: ContainerId, logOpts?: LogOptions, opts?: CallOptions): AsyncIterable<LogLine>;
  /**
   * State changes of every container, as they happen (within 100 ms), including
   * exits that happen while nobody listens: a new subscriber first gets nothing old,
   * so callers list once after subscribing. Ends when `signal` aborts.
   */
  events(opts?: CallOptions): AsyncIterable<ContainerEvent>;
}

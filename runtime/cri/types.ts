/**
 * Types of the runtime port (`RuntimeService`, `ImageService`), shaped after CRI's
 * api.proto. berth has no pod sandbox: a container is the unit, and it carries
 * what CRI puts on the sandbox (hostname, ports, network).
 */

/** A runtime container's ID (64 hex chars). Branded so it cannot be mixed up with an image ID. */
export type ContainerId = string & { readonly __brand: 'ContainerId' };
/** An image's ID: the digest of its config blob, `sha256:…`. */
export type ImageId = string & { readonly __brand: 'ImageId' };
/** A Docker-style image reference as the user wrote it (`busybox`, `127.0.0.1:5000/a/b:1`, `x@sha256:…`), or an image ID. */
export type ImageRef = string;

export interface CallOptions {
  readonly signal?: AbortSignal;
}

export interface RuntimeVersion {
  /** `runc`, or `fake` */
  readonly runtimeName: string;
  readonly runtimeVersion: string;
  /** Version of the CRI-shaped port itself. */
  readonly apiVersion: string;
}

export interface KeyValue {
  readonly name: string;
  readonly value: string;
}

/** A mount into the container: a host directory (volume, bind) or a tmpfs. */
export interface Mount {
  readonly containerPath: string;
  /** Host path for `bind`; ignored for `tmpfs`. */
  readonly hostPath?: string;
  readonly type?: 'bind' | 'tmpfs';
  readonly readonly?: boolean;
  /** For tmpfs: its size limit (`size=`); absent: half of RAM, the kernel's default. */
  readonly sizeBytes?: number;
  /** For tmpfs: the file mode of its root, e.g. `0o1777` (the default). */
  readonly mode?: number;
  /**
   * For bind: when the host directory is empty at create, fill it with what the image
   * has at `containerPath` (with the directory's owner and mode), as Docker fills a
   * named volume on first use. A path the image lacks leaves it empty.
   */
  readonly copyUp?: boolean;
}

export interface Resources {
  /** Memory limit in bytes (memory+swap is set to the same: no swap). */
  readonly memoryBytes?: number;
  /** CPU quota in cores, e.g. 0.5. */
  readonly cpus?: number;
  /** Max processes (pids cgroup). */
  readonly pids?: number;
}

/** What to create: everything needed to run the process. Immutable once created. */
export interface ContainerConfig {
  /** A name for humans and logs: `<namespace>_<name>_<generation>` by convention; unique among live containers. */
  readonly name: string;
  readonly image: ImageRef;
  /** Replaces the image's ENTRYPOINT when given (Kubernetes `command`). */
  readonly command?: readonly string[];
  /** Replaces the image's CMD when given (Kubernetes `args`). */
  readonly args?: readonly string[];
  readonly env?: readonly KeyValue[];
  readonly workingDir?: string;
  /** `uid[:gid]` or a name from the image's /etc/passwd. */
  readonly user?: string;
  readonly hostname?: string;
  readonly tty?: boolean;
  /**
   * With `tty`: the terminal's size when the process starts (Docker's `ConsoleSize`, the
   * OCI process' `consoleSize`); later changes go through an attach session's `resize`.
   * Absent: 0×0 until the first `resize`.
   */
  readonly consoleSize?: TerminalSize;
  readonly stdin?: boolean;
  readonly mounts?: readonly Mount[];
  readonly resources?: Resources;
  /** Labels the caller uses to find its containers again (`listContainers({ labels })`). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Network namespace to join (a path such as /var/run/netns/x); absent: a new, loopback-only one; `host`: the host's. */
  readonly networkNamespace?: string;
  /** Entries for /etc/hosts beyond localhost and the container's own name. */
  readonly extraHosts?: readonly { readonly hostname: string; readonly ip: string }[];
  /** Nameservers for /etc/resolv.conf (a network's DNS server); absent: the host's. Ignored with the host's network. */
  readonly dnsServers?: readonly string[];
  /** Signal sent by `stopContainer` first, e.g. `SIGTERM` (default: the image's STOPSIGNAL or SIGTERM). */
  readonly stopSignal?: string;
}

/** Lifecycle of a runtime container (CRI's ContainerState plus Docker's paused). */
export type ContainerState = 'created' | 'running' | 'paused' | 'exited' | 'unknown';

/** One container as listed. */
export interface RuntimeContainer {
  readonly id: ContainerId;
  readonly name: string;
  readonly imageRef: ImageRef;
  readonly imageId: ImageId;
  readonly state: ContainerState;
  readonly createdAtMs: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Full status of one container. */
export interface ContainerStatus extends RuntimeContainer {
  readonly pid?: number;
  readonly startedAtMs?: number;
  readonly finishedAtMs?: number;
  /** Set once exited; `undefined` when unknown (the monitor died). */
  readonly exitCode?: number;
  /** `OOMKilled`, `Error`, `Completed`, `Unknown` once exited. */
  readonly reason?: string;
  readonly message?: string;
  /** Path of the CRI-format log file. */
  readonly logPath: string;
}

export interface ContainerFilter {
  readonly id?: ContainerId;
  readonly state?: ContainerState;
  /** Every given label must match. */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ContainerStats {
  readonly id: ContainerId;
  readonly timestampMs: number;
  readonly cpuUsageSecondsTotal: number;
  readonly memoryUsageBytes: number;
  readonly memoryWorkingSetBytes: number;
  readonly memoryLimitBytes?: number;
  readonly pids: number;
}

export interface ExecSyncResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** A terminal's size in character cells (a Kubernetes resize message, `TIOCSWINSZ`). */
export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

export interface ExecRequest {
  readonly cmd: readonly string[];
  readonly tty?: boolean;
  readonly stdin?: boolean;
  readonly env?: readonly KeyValue[];
  readonly workingDir?: string;
  readonly user?: string;
  /**
   * With `tty`: the terminal's size when the process starts (Docker's exec `ConsoleSize`,
   * the OCI process' `consoleSize`), so that it never sees a 0×0 terminal; later changes
   * go through `resize`. Absent: the terminal starts 0×0 until the first `resize`.
   */
  readonly consoleSize?: TerminalSize;
}

/** The standard streams and terminal of a session with a process in a container (exec or attach). */
export interface StdioStreams {
  /** Present when the session asked for stdin; `end()` closes the process' stdin (exec) or stops sending (attach). */
  readonly stdin?: NodeJS.WritableStream;
  /** With a TTY, everything the terminal shows (stderr included, `\n` as `\r\n`). */
  readonly stdout: NodeJS.ReadableStream;
  /** Absent with a TTY (stderr goes to stdout). */
  readonly stderr?: NodeJS.ReadableStream;
  /** Whether the process has a terminal. */
  readonly tty: boolean;
  /**
   * Sets the terminal's size (the process gets SIGWINCH); without a TTY, does nothing.
   * Callers may call it any time, also before the first output.
   */
  resize(cols: number, rows: number): void;
}

/** An interactive exec session (CRI `Exec`). */
export interface ExecStreams extends StdioStreams {
  /** Resolves with the exit code when the process ends (128+N when killed by signal N). */
  readonly exit: Promise<number>;
  /** Kills the process (SIGKILL); `exit` then resolves with 137. Idempotent. */
  close(): void;
}

/** What an attach session wants (CRI `AttachRequest`); the TTY is the container's own (`ContainerConfig.tty`). */
export interface AttachRequest {
  /** Write to the main process' stdin; the container must have been created with `stdin: true`. */
  readonly stdin?: boolean;
}

/** A session attached to a container's main process (CRI `Attach`, `docker attach`). */
export interface AttachStreams extends StdioStreams {
  /**
   * Resolves when the session ends: with the container's exit code when its process
   * ended (`undefined` if unknown), or `undefined` when `close()` or the signal detached.
   */
  readonly ended: Promise<number | undefined>;
  /** Detaches; the container keeps running and its stdin stays open. Idempotent. */
  close(): void;
}

export interface LogOptions {
  readonly follow?: boolean;
  readonly tailLines?: number;
  readonly sinceMs?: number;
}

/** One line of a container's log, parsed from the CRI log format. */
export interface LogLine {
  readonly timestamp: string;
  readonly stream: 'stdout' | 'stderr';
  readonly partial: boolean;
  readonly text: string;
}

export const CONTAINER_EVENT_TYPES = ['created', 'started', 'paused', 'resumed', 'exited', 'oom', 'removed'] as const;
export type ContainerEventType = (typeof CONTAINER_EVENT_TYPES)[number];

/** A state change of one container. */
export interface ContainerEvent {
  readonly type: ContainerEventType;
  readonly id: ContainerId;
  readonly labels: Readonly<Record<string, string>>;
  readonly timestampMs: number;
  readonly exitCode?: number;
}

/** An image in the node's store. */
export interface Image {
  readonly id: ImageId;
  /** Normalized references (`docker.io/library/busybox:latest`) this image answers to. */
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly sizeBytes: number;
  readonly config: ImageConfig;
}

/** The runnable part of an OCI image config. */
export interface ImageConfig {
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
  readonly workingDir?: string;
  readonly user?: string;
  readonly stopSignal?: string;
  readonly exposedPorts?: readonly string[];
  readonly volumes?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The image's HEALTHCHECK as Docker records it: `test` is `["CMD", arg…]` (exec form)
   * or `["CMD-SHELL", script]`; durations in nanoseconds (absent or 0: Docker's default).
   */
  readonly healthcheck?: {
    readonly test: readonly string[];
    readonly intervalNs?: number;
    readonly timeoutNs?: number;
    readonly startPeriodNs?: number;
    readonly retries?: number;
  };
}

export interface ImageFilter {
  readonly ref?: ImageRef;
}

/**
 * Credentials for one registry, as a Kubernetes `kubernetes.io/dockerconfigjson`
 * Secret's `auths.<host>` entry carries them (CRI's `AuthConfig`). Give
 * `username` + `password` (basic, or exchanged for a bearer token), or
 * `identityToken` (an OAuth2 refresh token, exchanged at the token realm), or
 * `registryToken` (a bearer token sent as is). Empty means anonymous.
 */
export interface AuthConfig {
  readonly username?: string;
  readonly password?: string;
  /** OAuth2 refresh token (`identitytoken` in a Docker config file). */
  readonly identityToken?: string;
  /** Bearer token sent to the registry as is. */
  readonly registryToken?: string;
}

/**
 * How this node reaches registries. HTTPS is used for every registry, verified
 * against the system roots plus `caBundlePem`; only hosts listed in
 * `insecureRegistries` are spoken to over plain HTTP.
 */
export interface RegistryConfig {
  /** `host[:port]` entries (`127.0.0.1:5000`, `registry.local`); an entry without port matches every port of that host. */
  readonly insecureRegistries?: readonly string[];
  /** Extra trusted CA certificates (PEM, one or more), added to the system roots. */
  readonly caBundlePem?: string;
  /**
   * Credentials by registry host (`127.0.0.1:5000`, `docker.io`), used when a pull or
   * push is given none (`--registry-auth-file`, a Docker config file).
   */
  readonly credentials?: Readonly<Record<string, AuthConfig>>;
}

export interface FilesystemUsage {
  readonly mountpoint: string;
  readonly usedBytes: number;
  readonly inodesUsed: number;
}

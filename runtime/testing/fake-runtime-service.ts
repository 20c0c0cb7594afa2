import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { RuntimeError } from '../cri/errors.ts';
import type { RuntimeService } from '../cri/runtime-service.ts';
import type {
  AttachRequest,
  AttachStreams,
  CallOptions,
  ContainerConfig,
  ContainerEvent,
  ContainerEventType,
  ContainerFilter,
  ContainerId,
  ContainerStats,
  ContainerStatus,
  ExecRequest,
  ExecStreams,
  ExecSyncResult,
  ImageConfig,
  ImageId,
  ImageRef,
  LogLine,
  LogOptions,
  RuntimeContainer,
  RuntimeVersion,
} from '../cri/types.ts';
import { toSignalName } from '../oci/signals.ts';
import { buildSpec } from '../oci/spec.ts';
import { ContainerIndex, matchesFilter } from '../server/container-list.ts';
import { EventHub } from '../server/events.ts';
import { exitReason, requireState, toContainerState, transition, type TaskState } from '../task/states.ts';
import { FakeProcess } from './fake-shell.ts';

/** The methods of `RuntimeService`, as recorded in `calls` and accepted by `injectError`. */
export type RuntimeMethod = keyof RuntimeService;

/** One container of the fake, readable by tests. */
export interface FakeContainer {
  readonly id: ContainerId;
  readonly config: ContainerConfig;
  readonly imageId: ImageId;
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly hostname: string;
  readonly stopSignal: string;
  readonly createdAtMs: number;
  readonly pid: number;
  state: TaskState;
  startedAtMs?: number;
  finishedAtMs?: number;
  exitCode?: number;
  oomKilled: boolean;
  message?: string;
  readonly logs: LogLine[];
  process?: FakeProcess;
  /** Everything attach sessions wrote to the main process' stdin (containers created with `stdin: true`). */
  stdinText?: string;
}

export interface FakeRuntimeServiceOptions {
  /**
   * Images the fake knows, by reference, with their config. When absent every
   * reference resolves, with config `{ cmd: ['sh'] }`.
   */
  readonly images?: Readonly<Record<ImageRef, ImageConfig>>;
  /**
   * `calls` keeps at least this many of the latest calls (at most twice as many), so a
   * long-running fake (`berth server --runtime fake`) does not grow with history.
   * Default 10,000.
   */
  readonly callLogLimit?: number;
}

const FAKE_PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n';
const FAKE_GROUP = 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n';
const KILLED = 137;

/**
 * An in-memory `RuntimeService` for controller tests, after cri-api's fake. It
 * keeps the real state machine (`runtime/task/states.ts`), idempotency and error
 * codes, validates configs with the real spec builder, and "runs" each command
 * with the tiny shell of `fake-shell.ts` (so `sleep 3600` ignores SIGTERM, a
 * trapped TERM exits with its code, `sh -c 'exit 3'` exits 3). It passes the same
 * conformance suite as the real runtime.
 *
 * Tests can read `calls` and `containers`, queue failures with `injectError`, and
 * simulate what happens behind the runtime's back (`simulateExit`,
 * `simulateKill`, `simulateExternalDelete`, `simulateVanish`).
 */
export class FakeRuntimeService implements RuntimeService {
  /** Method names in call order: the latest `callLogLimit` calls or more (older ones are dropped in batches). */
  readonly calls: RuntimeMethod[] = [];
  /** The grace period of each `stopContainer` call, in call order. */
  readonly stopGraces: number[] = [];
  /** Containers not yet removed. Read-only for tests: the fake indexes what it puts here. */
  readonly containers = new Map<ContainerId, FakeContainer>();
  private readonly index = new ContainerIndex();
  private readonly errors = new Map<RuntimeMethod, Error[]>();
  private readonly hub = new EventHub();
  private readonly logWaiters = new Map<ContainerId, Set<() => void>>();
  private readonly attachments = new Map<ContainerId, Set<FakeAttachment>>();
  private nextPid = 1000;
  private seq = 0;

  constructor(private readonly opts: FakeRuntimeServiceOptions = {}) {}

  /** Makes the next call of `method` fail with `err` (queued: one error per call). */
  injectError(method: RuntimeMethod, err: Error): void {
    const q = this.errors.get(method) ?? [];
    q.push(err);
    this.errors.set(method, q);
  }

  clearErrors(): void {
    this.errors.clear();
  }

  /** The container's process exits with `code` now (with `oom`: killed by the OOM killer, reason OOMKilled). */
  simulateExit(id: ContainerId, code: number, opts: { readonly oom?: boolean } = {}): void {
    const c = this.mustGet(id);
    if (!isLive(c.state)) throw new RuntimeError('FailedPrecondition', `container ${id} is not live`);
    if (opts.oom) c.oomKilled = true;
    if (c.process) c.process.terminate(code);
    else this.recordExit(c, code);
  }

  /** Someone signals the container behind the runtime's back (`runc kill`). */
  simulateKill(id: ContainerId, signal = 'SIGKILL'): void {
    const c = this.mustGet(id);
    if (!c.process) {
      if (c.state === 'created') this.recordExit(c, KILLED);
      return;
    }
    c.process.signal(toSignalName(signal));
  }

  /** Someone runs `runc delete -f` behind the runtime's back: the container shows as exited 137, as with the real one. */
  simulateExternalDelete(id: ContainerId): void {
    const c = this.mustGet(id);
    if (isLive(c.state)) this.simulateExit(id, KILLED);
  }

  /** The container's record disappears entirely (state directory wiped): a `removed` event, then NotFound. */
  simulateVanish(id: ContainerId): void {
    const c = this.mustGet(id);
    c.process?.terminate(KILLED);
    c.state = 'deleted';
    this.forget(c);
    this.emit(c, 'removed');
  }

  async version(opts?: CallOptions): Promise<RuntimeVersion> {
    this.enter('version', opts);
    return { runtimeName: 'fake', runtimeVersion: '0.1.0', apiVersion: 'v1' };
  }

  async createContainer(config: ContainerConfig, opts?: CallOptions): Promise<ContainerId> {
    this.enter('createContainer', opts);
    if (!config.name) throw new RuntimeError('InvalidArgument', 'name is required');
    if (!config.image) throw new RuntimeError('InvalidArgument', 'image is required');
    const image = this.imageConfig(config.image);
    if ([...this.index.named(config.name)].some((id) => isLive(this.containers.get(id)?.state ?? 'deleted'))) {
      throw new RuntimeError('AlreadyExists', `a container named "${config.name}" already exists`);
    }
    const id = createHash('sha256').update(`fake-${++this.seq}-${Date.now()}-${Math.random()}`).digest('hex') as ContainerId;
    const spec = buildSpec(config, image, {
      id,
      rootfsPath: '/fake/rootfs',
      cgroupParent: '/fake',
      etcFiles: { hosts: '/fake/hosts', hostname: '/fake/hostname', resolvConf: '/fake/resolv.conf' },
      passwd: FAKE_PASSWD,
      group: FAKE_GROUP,
    });
    const c: FakeContainer = {
      id,
      config,
      imageId: `sha256:${createHash('sha256').update(config.image).digest('hex')}` as ImageId,
      args: spec.process.args,
      env: spec.process.env,
      hostname: spec.hostname,
      stopSignal: toSignalName(config.stopSignal || image.stopSignal || 'SIGTERM'),
      createdAtMs: Date.now(),
      pid: this.nextPid++,
      state: 'created',
      oomKilled: false,
      logs: [],
    };
    this.containers.set(id, c);
    this.index.add(id, config.name, config.labels ?? {});
    this.emit(c, 'created');
    return id;
  }

  async startContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    this.enter('startContainer', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['created'], 'start');
    c.state = transition(c.state, 'running');
    c.startedAtMs = Date.now();
    this.emit(c, 'started');
    const proc = new FakeProcess(c.args, {
      write: (stream, text) => {
        this.appendLog(c, stream, text);
        for (const a of this.attachments.get(c.id) ?? []) a.write(stream, text);
      },
      // stdin stays open across attach sessions (stdinOnce: false), so it never ends
      ...(c.config.stdin ? { readStdin: () => new Promise<string>(() => {}) } : {}),
      hostname: c.hostname,
      env: c.env,
    });
    c.process = proc;
    void proc.exited.then((code) => this.recordExit(c, code));
  }

  async stopContainer(id: ContainerId, gracePeriodSeconds: number, opts?: CallOptions): Promise<void> {
    this.enter('stopContainer', opts);
    this.stopGraces.push(gracePeriodSeconds);
    const c = this.containers.get(id);
    if (!c || !isLive(c.state)) return;
    if (c.state === 'created') return this.recordExit(c, KILLED);
    if (gracePeriodSeconds > 0 && c.state === 'running') {
      c.process!.signal(c.stopSignal);
      if (await this.waitForExit(c, gracePeriodSeconds * 1000)) return;
    }
    c.process!.signal('SIGKILL');
    await this.waitForExit(c, 1_000);
  }

  async pauseContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    this.enter('pauseContainer', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['running'], 'pause');
    c.state = transition(c.state, 'paused');
    c.process?.pause();
    this.emit(c, 'paused');
  }

  async resumeContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    this.enter('resumeContainer', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['paused'], 'resume');
    c.state = transition(c.state, 'running');
    this.emit(c, 'resumed');
    c.process?.resume();
  }

  async signalContainer(id: ContainerId, signal: string, opts?: CallOptions): Promise<void> {
    this.enter('signalContainer', opts);
    const name = toSignalName(signal);
    const c = this.mustGet(id);
    requireState(c.state, ['running'], 'signal');
    c.process?.signal(name);
  }

  async removeContainer(id: ContainerId, opts?: CallOptions): Promise<void> {
    this.enter('removeContainer', opts);
    const c = this.containers.get(id);
    if (!c) return;
    if (isLive(c.state)) {
      if (c.process) {
        c.process.signal('SIGKILL');
        await this.waitForExit(c, 1_000);
      } else this.recordExit(c, KILLED);
    }
    c.state = transition(c.state, 'deleted');
    this.forget(c);
    this.emit(c, 'removed');
    this.wakeLogs(c);
  }

  async containerStatus(id: ContainerId, opts?: CallOptions): Promise<ContainerStatus> {
    this.enter('containerStatus', opts);
    return this.toStatus(this.mustGet(id));
  }

  async listContainers(filter: ContainerFilter = {}, opts?: CallOptions): Promise<RuntimeContainer[]> {
    this.enter('listContainers', opts);
    const out: RuntimeContainer[] = [];
    for (const id of this.index.candidates(filter)) {
      const c = this.containers.get(id);
      if (!c) continue;
      const listed: RuntimeContainer = {
        id,
        name: c.config.name,
        imageRef: c.config.image,
        imageId: c.imageId,
        state: toContainerState(c.state),
        createdAtMs: c.createdAtMs,
        labels: c.config.labels ?? {},
        annotations: c.config.annotations ?? {},
      };
      if (matchesFilter(listed, filter)) out.push(listed);
    }
    return out;
  }

  async containerStats(id: ContainerId, opts?: CallOptions): Promise<ContainerStats> {
    this.enter('containerStats', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['running', 'paused'], 'read stats of');
    const limit = c.config.resources?.memoryBytes;
    return {
      id,
      timestampMs: Date.now(),
      cpuUsageSecondsTotal: (Date.now() - (c.startedAtMs ?? Date.now())) / 1e6,
      memoryUsageBytes: 1 << 20,
      memoryWorkingSetBytes: 1 << 20,
      ...(limit !== undefined ? { memoryLimitBytes: limit } : {}),
      pids: 1,
    };
  }

  async execSync(id: ContainerId, cmd: readonly string[], timeoutSeconds: number, opts?: CallOptions): Promise<ExecSyncResult> {
    this.enter('execSync', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['running'], 'exec into');
    if (cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
    const out = { stdout: '', stderr: '' };
    const proc = new FakeProcess(cmd, { write: (s, t) => (out[s] += t), hostname: c.hostname, env: c.env });
    const timer = timeoutSeconds > 0 ? setTimeout(() => proc.terminate(KILLED), timeoutSeconds * 1000) : undefined;
    const exitCode = await proc.exited;
    if (timer) {
      clearTimeout(timer);
      if (exitCode === KILLED) throw new RuntimeError('Unavailable', `exec timed out after ${timeoutSeconds} s`);
    }
    return { exitCode, stdout: Buffer.from(out.stdout), stderr: Buffer.from(out.stderr) };
  }

  async execDetached(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<void> {
    this.enter('execDetached', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['running'], 'exec into');
    if (req.cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
    // runs on its own, its output discarded (a terminal or stdin asked for: nobody writes to it)
    void new FakeProcess(req.cmd, { write: () => {}, hostname: c.hostname, env: [...c.env, ...(req.env ?? []).map((e) => `${e.name}=${e.value}`)] }).exited;
  }

  async exec(id: ContainerId, req: ExecRequest, opts?: CallOptions): Promise<ExecStreams> {
    this.enter('exec', opts);
    const c = this.mustGet(id);
    requireState(c.state, ['running'], 'exec into');
    if (req.cmd.length === 0) throw new RuntimeError('InvalidArgument', 'exec needs a command');
    const tty = req.tty ?? false;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = req.stdin ? new PassThrough() : undefined;
    const stdinText = stdin
      ? new Promise<string>((resolve) => {
          let s = '';
          stdin.on('data', (d: Buffer) => (s += d.toString()));
          stdin.on('end', () => resolve(s));
        })
      : undefined;
    // a TTY echoes input and turns \n into \r\n, and stderr goes to the terminal too
    if (tty) stdin?.on('data', (d: Buffer) => stdout.write(toTerminal(d.toString())));
    const proc = new FakeProcess(req.cmd, {
      write: (s, t) => (tty ? stdout.write(toTerminal(t)) : (s === 'stdout' ? stdout : stderr).write(t)),
      ...(stdinText ? { readStdin: () => stdinText } : {}),
      hostname: c.hostname,
      env: [...c.env, ...(req.env ?? []).map((e) => `${e.name}=${e.value}`)],
    });
    const exit = proc.exited.then((code) => {
      stdout.end();
      stderr.end();
      return code;
    });
    return { ...(stdin ? { stdin } : {}), stdout, ...(tty ? {} : { stderr }), tty, resize() {}, exit, close: () => proc.terminate(KILLED) };
  }

  async attach(id: ContainerId, req: AttachRequest, opts?: CallOptions): Promise<AttachStreams> {
    this.enter('attach', opts);
    const c = this.mustGet(id);
    if (c.state === 'stopped') throw new RuntimeError('FailedPrecondition', 'cannot attach to an exited container');
    if (req.stdin && !c.config.stdin) {
      throw new RuntimeError('InvalidArgument', 'cannot attach to stdin: the container was created without stdin (set stdin: true)');
    }
    const tty = c.config.tty ?? false;
    const stdout = new PassThrough();
    const stderr = tty ? undefined : new PassThrough();
    const stdin = req.stdin ? new PassThrough() : undefined;
    stdin?.on('data', (d: Buffer) => {
      c.stdinText = (c.stdinText ?? '') + d.toString();
      if (tty) stdout.write(toTerminal(d.toString()));
    });
    let resolveEnded!: (code: number | undefined) => void;
    const ended = new Promise<number | undefined>((r) => (resolveEnded = r));
    const sessions = this.attachments.get(id) ?? new Set<FakeAttachment>();
    this.attachments.set(id, sessions);
    const session: FakeAttachment = {
      write: (stream, text) => (tty ? stdout.write(toTerminal(text)) : (stream === 'stdout' ? stdout : stderr!).write(text)),
      end: (code) => {
        sessions.delete(session);
        opts?.signal?.removeEventListener('abort', close);
        stdout.end();
        stderr?.end();
        resolveEnded(code);
      },
    };
    sessions.add(session);
    function close(): void {
      if (sessions.has(session)) session.end(undefined);
    }
    opts?.signal?.addEventListener('abort', close, { once: true });
    return { ...(stdin ? { stdin } : {}), stdout, ...(stderr ? { stderr } : {}), tty, resize() {}, ended, close };
  }

  async *logs(id: ContainerId, logOpts: LogOptions = {}, opts?: CallOptions): AsyncIterable<LogLine> {
    this.enter('logs', opts);
    const c = this.mustGet(id);
    const keep = (l: LogLine): boolean => logOpts.sinceMs === undefined || Date.parse(l.timestamp) >= logOpts.sinceMs;
    let next = c.logs.length;
    let first = c.logs.slice(0, next).filter(keep);
    if (logOpts.tailLines !== undefined) first = logOpts.tailLines > 0 ? first.slice(-logOpts.tailLines) : [];
    yield* first;
    if (!logOpts.follow) return;
    const signal = opts?.signal;
    for (;;) {
      if (signal?.aborted) return;
      const ended = !isLive(c.state);
      while (next < c.logs.length) {
        const l = c.logs[next++]!;
        if (keep(l)) yield l;
      }
      if (ended) return;
      await new Promise<void>((resolve) => {
        const waiters = this.logWaiters.get(id) ?? new Set();
        this.logWaiters.set(id, waiters);
        const done = (): void => {
          waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  events(opts?: CallOptions): AsyncIterable<ContainerEvent> {
    this.record('events');
    const err = this.errors.get('events')?.shift();
    if (err) throw err;
    return this.hub.subscribe(opts);
  }

  private enter(method: RuntimeMethod, opts?: CallOptions): void {
    this.record(method);
    opts?.signal?.throwIfAborted();
    const err = this.errors.get(method)?.shift();
    if (err) throw err;
  }

  private record(method: RuntimeMethod): void {
    const limit = Math.max(1, this.opts.callLogLimit ?? 10_000);
    // in batches: trimming one at a time would copy the whole log on every call
    if (this.calls.length >= 2 * limit) this.calls.splice(0, this.calls.length - limit + 1);
    this.calls.push(method);
  }

  private forget(c: FakeContainer): void {
    this.containers.delete(c.id);
    this.index.remove(c.id, c.config.name, c.config.labels ?? {});
  }

  private imageConfig(ref: ImageRef): ImageConfig {
    if (!this.opts.images) return { cmd: ['sh'] };
    const image = this.opts.images[ref];
    if (!image) throw new RuntimeError('NotFound', `image "${ref}" not found`);
    return image;
  }

  private mustGet(id: ContainerId): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError('NotFound', `container ${id} not found`);
    return c;
  }

  private recordExit(c: FakeContainer, code: number): void {
    if (!isLive(c.state)) return;
    c.state = transition(c.state, 'stopped');
    c.exitCode = code;
    c.finishedAtMs = Date.now();
    c.process = undefined;
    if (c.oomKilled) this.emit(c, 'oom');
    this.emit(c, 'exited');
    this.wakeLogs(c);
    for (const a of [...(this.attachments.get(c.id) ?? [])]) a.end(code);
    this.attachments.delete(c.id);
  }

  private waitForExit(c: FakeContainer, timeoutMs: number): Promise<boolean> {
    const proc = c.process;
    if (!proc || !isLive(c.state)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      void proc.exited.then(() => {
        clearTimeout(timer);
        // recordExit runs on the same settled promise, registered earlier
        queueMicrotask(() => resolve(true));
      });
    });
  }

  private appendLog(c: FakeContainer, stream: 'stdout' | 'stderr', text: string): void {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const line of lines) c.logs.push({ timestamp: new Date().toISOString(), stream, partial: false, text: line });
    this.wakeLogs(c);
  }

  private wakeLogs(c: FakeContainer): void {
    for (const w of [...(this.logWaiters.get(c.id) ?? [])]) w();
  }

  private emit(c: FakeContainer, type: ContainerEventType): void {
    const timestampMs =
      type === 'exited' || type === 'oom' ? (c.finishedAtMs ?? Date.now()) : type === 'started' ? (c.startedAtMs ?? Date.now()) : Date.now();
    this.hub.publish({
      type,
      id: c.id,
      labels: c.config.labels ?? {},
      timestampMs,
      ...(type === 'exited' && c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    });
  }

  private toStatus(c: FakeContainer): ContainerStatus {
    const stopped = c.state === 'stopped';
    return {
      id: c.id,
      name: c.config.name,
      imageRef: c.config.image,
      imageId: c.imageId,
      state: toContainerState(c.state),
      createdAtMs: c.createdAtMs,
      labels: c.config.labels ?? {},
      annotations: c.config.annotations ?? {},
      ...(stopped ? {} : { pid: c.pid }),
      ...(c.startedAtMs !== undefined ? { startedAtMs: c.startedAtMs } : {}),
      ...(stopped && c.finishedAtMs !== undefined ? { finishedAtMs: c.finishedAtMs } : {}),
      ...(stopped && c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
      ...(stopped ? { reason: exitReason(c.exitCode, c.oomKilled) } : {}),
      ...(c.message ? { message: c.message } : {}),
      logPath: `/fake/${c.id}/ctr.log`,
    };
  }
}

/** One attach session of the fake: receives the main process' output until it exits or detaches. */
interface FakeAttachment {
  write(stream: 'stdout' | 'stderr', text: string): void;
  end(exitCode: number | undefined): void;
}

/** What a terminal shows for `text` written by a process (onlcr). */
function toTerminal(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

function isLive(state: TaskState): boolean {
  return state === 'created' || state === 'running' || state === 'paused';
}

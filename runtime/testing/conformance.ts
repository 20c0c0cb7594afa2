import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isRuntimeError, type RuntimeErrorCode } from '../cri/errors.ts';
import type { RuntimeService } from '../cri/runtime-service.ts';
import type { ContainerConfig, ContainerEvent, ContainerId, ImageRef, LogLine } from '../cri/types.ts';

/** What a conformance factory returns: a fresh runtime, the image to run, and how to release both. */
export interface RuntimeUnderTest {
  readonly runtime: RuntimeService;
  /** An image with busybox-like `sh`, `sleep`, `echo`, `cat`. */
  readonly image: ImageRef;
  /** Called after each test, once the suite has removed its containers. */
  cleanup(): Promise<void>;
}

export interface RuntimeConformanceOptions {
  /** Upper bound for an exit to reach `events()` after the process ended (default 250 ms). */
  readonly eventLatencyMs?: number;
}

const SLEEP = ['sleep', '3600'];
const TRAP_42 = ['sh', '-c', "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done"];

/**
 * The runtime conformance suite (containerd's `SnapshotterSuite` pattern): the
 * same behaviour, asserted the same way, for every `RuntimeService`. The fake
 * "runs" the same commands with its tiny shell, so no test is implementation-specific.
 * Each test gets a fresh runtime from `factory`; containers it creates are
 * removed after it, even when it fails.
 */
export function runtimeConformance(
  name: string,
  factory: () => Promise<RuntimeUnderTest>,
  options: RuntimeConformanceOptions = {},
): void {
  const latencyMs = options.eventLatencyMs ?? 250;

  describe(`RuntimeService conformance: ${name}`, () => {
    let sut: RuntimeUnderTest;
    let rt: RuntimeService;
    let created: ContainerId[];
    let seq = 0;

    beforeEach(async () => {
      sut = await factory();
      rt = sut.runtime;
      created = [];
    });

    afterEach(async () => {
      for (const id of created) {
        await rt.removeContainer(id).catch(() => {});
      }
      await sut.cleanup();
    });

    async function create(overrides: Partial<ContainerConfig> = {}): Promise<ContainerId> {
      const id = await rt.createContainer({
        name: `conformance_${process.pid}_${++seq}_${Date.now()}`,
        image: sut.image,
        command: SLEEP,
        labels: { suite: 'conformance' },
        ...overrides,
      });
      created.push(id);
      return id;
    }

    async function run(overrides: Partial<ContainerConfig> = {}): Promise<ContainerId> {
      const id = await create(overrides);
      await rt.startContainer(id);
      return id;
    }

    async function waitForState(id: ContainerId, state: string, timeout = 10_000): Promise<void> {
      await vi.waitFor(async () => expect((await rt.containerStatus(id)).state).toBe(state), { timeout, interval: 20 });
    }

    /** Collects a stream's text as it arrives; the returned function reads it so far. */
    function text(stream: NodeJS.ReadableStream): () => string {
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer | string) => chunks.push(Buffer.from(d)));
      return () => Buffer.concat(chunks).toString();
    }

    async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
      const out: T[] = [];
      for await (const x of it) out.push(x);
      return out;
    }

    async function rejectsWith(p: Promise<unknown>, code: RuntimeErrorCode): Promise<void> {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `expected a RuntimeError ${code}`).toBeDefined();
      expect(isRuntimeError(err) ? err.code : err).toBe(code);
    }

    function recordEvents(): { events: (ContainerEvent & { receivedAtMs: number })[]; stop(): void } {
      const ac = new AbortController();
      const events: (ContainerEvent & { receivedAtMs: number })[] = [];
      const sub = rt.events({ signal: ac.signal });
      void (async () => {
        for await (const e of sub) events.push({ ...e, receivedAtMs: Date.now() });
      })();
      return { events, stop: () => ac.abort() };
    }

    it('reports its name and version', async () => {
      const v = await rt.version();
      expect(v.runtimeName).toMatch(/\w/);
      expect(v.runtimeVersion).toMatch(/\w/);
    });

    it('creates a container in state created, with its config in status', async () => {
      const id = await create({ labels: { app: 'web' }, annotations: { note: 'x' } });
      const s = await rt.containerStatus(id);
      expect(s).toMatchObject({ id, state: 'created', imageRef: sut.image, labels: { app: 'web' }, annotations: { note: 'x' } });
      expect(s.imageId).toMatch(/^sha256:/);
      expect(s.createdAtMs).toBeGreaterThan(Date.now() - 60_000);
      expect(s.exitCode).toBeUndefined();
    });

    it('starts a real process: state running with a pid and a start time', async () => {
      const id = await run();
      const s = await rt.containerStatus(id);
      expect(s.state).toBe('running');
      expect(s.pid).toBeGreaterThan(0);
      expect(s.startedAtMs).toBeGreaterThanOrEqual(s.createdAtMs);
      const r = await rt.execSync(id, ['sh', '-c', 'echo alive'], 10);
      expect(r.stdout.toString()).toBe('alive\n');
    });

    it('records exit code 3 with reason Error', async () => {
      const id = await run({ command: ['sh', '-c', 'exit 3'] });
      await waitForState(id, 'exited');
      const s = await rt.containerStatus(id);
      expect(s).toMatchObject({ exitCode: 3, reason: 'Error' });
      expect(s.finishedAtMs).toBeGreaterThanOrEqual(s.startedAtMs!);
      expect(s.pid).toBeUndefined();
    });

    it('records exit code 0 with reason Completed', async () => {
      const id = await run({ command: ['sh', '-c', 'exit 0'] });
      await waitForState(id, 'exited');
      expect(await rt.containerStatus(id)).toMatchObject({ exitCode: 0, reason: 'Completed' });
    });

    it('stop: a process that traps TERM exits with its own code before the grace period ends', async () => {
      const id = await run({ command: TRAP_42 });
      await vi.waitFor(async () => expect((await collect(rt.logs(id))).map((l) => l.text)).toContain('ready'), { timeout: 10_000 });
      const t0 = Date.now();
      await rt.stopContainer(id, 10);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(await rt.containerStatus(id)).toMatchObject({ state: 'exited', exitCode: 42, reason: 'Error' });
    });

    it('stop: a process that ignores TERM is SIGKILLed after the grace period (137)', async () => {
      const id = await run();
      const t0 = Date.now();
      await rt.stopContainer(id, 1);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(6_000);
      expect(await rt.containerStatus(id)).toMatchObject({ state: 'exited', exitCode: 137 });
    });

    it('stop is idempotent: again after exit, and for a container that does not exist', async () => {
      const id = await run();
      await rt.stopContainer(id, 0);
      await rt.stopContainer(id, 0);
      await rt.stopContainer(id, 5);
      expect((await rt.containerStatus(id)).exitCode).toBe(137);
      await rt.stopContainer('0'.repeat(64) as ContainerId, 1);
    });

    it('stops a created container that never started', async () => {
      const id = await create();
      await rt.stopContainer(id, 5);
      expect((await rt.containerStatus(id)).state).toBe('exited');
    });

    it('pauses and resumes: exec is refused while paused, the process goes on after resume', async () => {
      const id = await run();
      await rt.pauseContainer(id);
      expect((await rt.containerStatus(id)).state).toBe('paused');
      await rejectsWith(rt.execSync(id, ['true'], 5), 'FailedPrecondition');
      await rejectsWith(rt.exec(id, { cmd: ['true'] }), 'FailedPrecondition');
      await rejectsWith(rt.exec(id, { cmd: ['true'], tty: true }), 'FailedPrecondition');
      await rt.resumeContainer(id);
      expect((await rt.containerStatus(id)).state).toBe('running');
      expect((await rt.execSync(id, ['true'], 10)).exitCode).toBe(0);
    });

    it('kills a paused container at once on stop', async () => {
      const id = await run();
      await rt.pauseContainer(id);
      const t0 = Date.now();
      await rt.stopContainer(id, 30);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(await rt.containerStatus(id)).toMatchObject({ state: 'exited', exitCode: 137 });
    });

    it('rejects verbs the state forbids with FailedPrecondition', async () => {
      const id = await create();
      await rejectsWith(rt.pauseContainer(id), 'FailedPrecondition');
      await rejectsWith(rt.resumeContainer(id), 'FailedPrecondition');
      await rejectsWith(rt.execSync(id, ['true'], 5), 'FailedPrecondition');
      await rt.startContainer(id);
      await rejectsWith(rt.startContainer(id), 'FailedPrecondition');
      await rejectsWith(rt.resumeContainer(id), 'FailedPrecondition');
      await rt.pauseContainer(id);
      await rejectsWith(rt.pauseContainer(id), 'FailedPrecondition');
      await rt.stopContainer(id, 0);
      await rejectsWith(rt.startContainer(id), 'FailedPrecondition');
      await rejectsWith(rt.pauseContainer(id), 'FailedPrecondition');
      await rejectsWith(rt.execSync(id, ['true'], 5), 'FailedPrecondition');
      await rejectsWith(rt.containerStats(id), 'FailedPrecondition');
    });

    it('rejects verbs on a missing container with NotFound', async () => {
      const missing = 'f'.repeat(64) as ContainerId;
      await rejectsWith(rt.startContainer(missing), 'NotFound');
      await rejectsWith(rt.pauseContainer(missing), 'NotFound');
      await rejectsWith(rt.resumeContainer(missing), 'NotFound');
      await rejectsWith(rt.containerStatus(missing), 'NotFound');
      await rejectsWith(rt.containerStats(missing), 'NotFound');
      await rejectsWith(rt.execSync(missing, ['true'], 5), 'NotFound');
      await rejectsWith(collect(rt.logs(missing)), 'NotFound');
    });

    it('rejects invalid configs: InvalidArgument, NotFound for an unknown image, AlreadyExists for a live name', async () => {
      await rejectsWith(create({ resources: { pids: 4 } }), 'InvalidArgument');
      await rejectsWith(create({ workingDir: 'relative' }), 'InvalidArgument');
      await rejectsWith(create({ user: 'no-such-user' }), 'InvalidArgument');
      await rejectsWith(create({ stopSignal: 'SIGNOPE' }), 'InvalidArgument');
      await rejectsWith(create({ image: 'no-such-image:v0' }), 'NotFound');
      await create({ name: `dup_${process.pid}_${seq}` });
      await rejectsWith(create({ name: `dup_${process.pid}_${seq - 1}` }), 'AlreadyExists');
      expect(await rt.listContainers({ labels: { suite: 'conformance' } })).toHaveLength(1);
    });

    it('removes idempotently; a removed container is gone from list and status', async () => {
      const id = await run();
      await rt.removeContainer(id);
      await rt.removeContainer(id);
      expect((await rt.listContainers()).map((c) => c.id)).not.toContain(id);
      await rejectsWith(rt.containerStatus(id), 'NotFound');
      await rt.stopContainer(id, 0);
    });

    it('lists by labels, state and id', async () => {
      const a = await create({ labels: { suite: 'conformance', app: 'a' } });
      const b = await run({ labels: { suite: 'conformance', app: 'b' } });
      const ids = async (f: Parameters<RuntimeService['listContainers']>[0]): Promise<string[]> =>
        (await rt.listContainers(f)).map((c) => c.id).sort();
      expect(await ids({ labels: { suite: 'conformance' } })).toEqual([a, b].sort());
      expect(await ids({ labels: { app: 'a' } })).toEqual([a]);
      expect(await ids({ labels: { app: 'a', suite: 'other' } })).toEqual([]);
      expect(await ids({ labels: { suite: 'conformance' }, state: 'running' })).toEqual([b]);
      expect(await ids({ id: b })).toEqual([b]);
      const [listed] = await rt.listContainers({ id: a });
      expect(listed).toMatchObject({ id: a, state: 'created', labels: { app: 'a' } });
    });

    it('emits created, started, paused, resumed, exited (with its code, promptly) and removed, in order', async () => {
      const rec = recordEvents();
      const id = await create({ command: ['sh', '-c', 'sleep 0.4; exit 7'], labels: { suite: 'conformance', ev: '1' } });
      await rt.startContainer(id);
      await rt.pauseContainer(id);
      await rt.resumeContainer(id);
      await vi.waitFor(() => expect(rec.events.some((e) => e.type === 'exited' && e.id === id)).toBe(true), { timeout: 10_000 });
      await rt.removeContainer(id);
      await vi.waitFor(() => expect(rec.events.some((e) => e.type === 'removed' && e.id === id)).toBe(true));
      rec.stop();
      const mine = rec.events.filter((e) => e.id === id);
      expect(mine.map((e) => e.type)).toEqual(['created', 'started', 'paused', 'resumed', 'exited', 'removed']);
      expect(mine.every((e) => e.labels['ev'] === '1')).toBe(true);
      const exited = mine.find((e) => e.type === 'exited')!;
      expect(exited.exitCode).toBe(7);
      // The exit happened at finishedAtMs (recorded by the monitor); the event must follow promptly.
      expect(exited.receivedAtMs - exited.timestampMs).toBeLessThanOrEqual(latencyMs);
    });

    it('emits an exit that nobody caused (the process ends by itself) within the latency bound', async () => {
      const rec = recordEvents();
      const id = await run({ command: ['sh', '-c', 'sleep 0.3; exit 0'] });
      await vi.waitFor(() => expect(rec.events.some((e) => e.type === 'exited' && e.id === id)).toBe(true), { timeout: 10_000 });
      rec.stop();
      const e = rec.events.find((x) => x.type === 'exited' && x.id === id)!;
      const s = await rt.containerStatus(id);
      expect(e.exitCode).toBe(0);
      expect(e.receivedAtMs - s.finishedAtMs!).toBeLessThanOrEqual(latencyMs);
    });

    it('execSync returns stdout, stderr and the exit code', async () => {
      const id = await run();
      const r = await rt.execSync(id, ['sh', '-c', 'echo hello; echo oops >&2; exit 5'], 10);
      expect(r.exitCode).toBe(5);
      expect(r.stdout.toString()).toBe('hello\n');
      expect(r.stderr.toString()).toBe('oops\n');
    });

    it('execSync rejects with Unavailable at its timeout', async () => {
      const id = await run();
      const t0 = Date.now();
      await rejectsWith(rt.execSync(id, ['sleep', '30'], 1), 'Unavailable');
      expect(Date.now() - t0).toBeLessThan(5_000);
    });

    it('exec streams output and stdin and resolves with the exit code', async () => {
      const id = await run();
      const s = await rt.exec(id, { cmd: ['sh', '-c', 'echo hi; exit 2'] });
      const out: Buffer[] = [];
      s.stdout.on('data', (d: Buffer) => out.push(Buffer.from(d)));
      expect(await s.exit).toBe(2);
      await vi.waitFor(() => expect(Buffer.concat(out).toString()).toBe('hi\n'));

      const cat = await rt.exec(id, { cmd: ['cat'], stdin: true });
      const catOut: Buffer[] = [];
      cat.stdout.on('data', (d: Buffer) => catOut.push(Buffer.from(d)));
      cat.stdin!.end('abc');
      expect(await cat.exit).toBe(0);
      await vi.waitFor(() => expect(Buffer.concat(catOut).toString()).toBe('abc'));
    });

    it('exec with a TTY shows stderr on the terminal, with terminal line endings, and resolves with the exit code', async () => {
      const id = await run();
      const s = await rt.exec(id, { cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], tty: true });
      expect(s.tty).toBe(true);
      expect(s.stderr).toBeUndefined();
      const out = text(s.stdout);
      s.resize(100, 30);
      expect(await s.exit).toBe(3);
      await vi.waitFor(() => expect(out()).toBe('out\r\nerr\r\n'));
    });

    it('attach streams the main process from its start and ends with its exit code', async () => {
      const id = await create({ command: ['sh', '-c', 'echo one; echo two >&2; sleep 0.3; exit 4'] });
      const a = await rt.attach(id, {});
      expect(a.tty).toBe(false);
      expect(a.stdin).toBeUndefined();
      const out = text(a.stdout);
      const err = text(a.stderr!);
      await rt.startContainer(id);
      expect(await a.ended).toBe(4);
      expect([out(), err()]).toEqual(['one\n', 'two\n']);
      await rejectsWith(rt.attach(id, {}), 'FailedPrecondition');
    });

    it('attach to a TTY container with stdin: input reaches the terminal, and detaching leaves the container running', async () => {
      const id = await run({ tty: true, stdin: true });
      const a = await rt.attach(id, { stdin: true });
      expect(a.tty).toBe(true);
      expect(a.stderr).toBeUndefined();
      const out = text(a.stdout);
      a.resize(80, 24);
      a.stdin!.write('hello\n');
      await vi.waitFor(() => expect(out()).toBe('hello\r\n'), { timeout: 5_000 });
      a.close();
      expect(await a.ended).toBeUndefined();
      expect((await rt.containerStatus(id)).state).toBe('running');
    });

    it('attach refuses stdin on a container created without it, and attaches to a paused container', async () => {
      const id = await run();
      await rejectsWith(rt.attach(id, { stdin: true }), 'InvalidArgument');
      await rt.pauseContainer(id);
      const a = await rt.attach(id, {});
      a.close();
      expect(await a.ended).toBeUndefined();
      expect((await rt.containerStatus(id)).state).toBe('paused');
    });

    it('logs stdout and stderr lines, tails them, and follows until the exit', async () => {
      const id = await create({ command: ['sh', '-c', 'echo out1; echo err1 >&2; sleep 0.3; echo out2'] });
      const ac = new AbortController();
      const follow = collect(rt.logs(id, { follow: true }, { signal: ac.signal }));
      await rt.startContainer(id);
      const lines = await Promise.race([
        follow,
        new Promise<LogLine[]>((_, reject) => setTimeout(() => reject(new Error('follow did not end at exit')), 10_000)),
      ]).finally(() => ac.abort());
      const texts = (ls: LogLine[]): string[] => ls.map((l) => `${l.stream}:${l.text}`);
      expect(texts(lines)).toEqual(['stdout:out1', 'stderr:err1', 'stdout:out2']);
      expect(lines.every((l) => !l.partial && !Number.isNaN(Date.parse(l.timestamp)))).toBe(true);
      expect(texts(await collect(rt.logs(id, { tailLines: 1 })))).toEqual(['stdout:out2']);
      const since = Date.parse(lines[2]!.timestamp);
      expect(texts(await collect(rt.logs(id, { sinceMs: since })))).toEqual(['stdout:out2']);
    });

    it('reports stats of a running container: cpu, memory, pids, limit', async () => {
      const id = await run({ resources: { memoryBytes: 64 * 1024 * 1024 } });
      const s = await rt.containerStats(id);
      expect(s.id).toBe(id);
      expect(s.cpuUsageSecondsTotal).toBeGreaterThanOrEqual(0);
      expect(s.memoryUsageBytes).toBeGreaterThan(0);
      expect(s.memoryWorkingSetBytes).toBeLessThanOrEqual(s.memoryUsageBytes);
      expect(s.memoryLimitBytes).toBe(64 * 1024 * 1024);
      expect(s.pids).toBeGreaterThanOrEqual(1);
    });
  });
}

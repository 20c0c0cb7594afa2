/**
 * TTY exec, attach and resize on the real runtime (conmon + runc), as root: what a
 * terminal shows, that resizes reach the process, that stdin stays open across
 * attach sessions, and that exec sessions leave nothing behind.
 *
 * Skipped unless running as root with runc, conmon and perl.
 */
import { realRuntimeMissing } from '../testing/requires-root.ts';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import type { ContainerConfig, ContainerId } from '../cri/types.ts';
import { BusyboxRootfs, BUSYBOX_REF } from '../testing/busybox-rootfs.ts';
import { privateRuncRuntime } from '../testing/private-runtime.ts';
import type { RuncRuntimeService } from './runtime-service.ts';

const missing = realRuntimeMissing();

if (missing) {
  describe('TTY exec and attach (real runc + conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and perl installed (${missing})`, () => {});
  });
} else {
  let fixture: BusyboxRootfs | undefined;
  afterAll(() => fixture?.dispose());

  /** A runtime on a private data root and a random cgroup parent, removed with everything in it after the test. */
  const setup = () => privateRuncRuntime('h1', (fixture ??= new BusyboxRootfs()));

  let n = 0;
  async function run(rt: RuncRuntimeService, overrides: Partial<ContainerConfig> = {}): Promise<ContainerId> {
    const id = await rt.createContainer({ name: `h1-${process.pid}-${++n}`, image: BUSYBOX_REF, command: ['sleep', '3600'], ...overrides });
    onTestFinished(() => rt.removeContainer(id));
    await rt.startContainer(id);
    return id;
  }

  function text(stream: NodeJS.ReadableStream): () => string {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    return () => Buffer.concat(chunks).toString();
  }

  describe('TTY exec and attach (real runc + conmon)', () => {
    it('runs a TTY exec on a pseudo-terminal whose size follows resize', async () => {
      const { rt } = setup();
      const id = await run(rt);
      const script = 'tty; while read x; do [ "$x" = q ] && exit 7; stty size; done';
      const s = await rt.exec(id, { cmd: ['sh', '-c', script], tty: true, stdin: true });
      const out = text(s.stdout);
      await vi.waitFor(() => expect(out()).toMatch(/^\/dev\/pts\/\d+\r\n/), { timeout: 5_000 });
      // The size goes through conmon's ctl fifo, the lines through its socket: ask until the new size shows.
      const sizeShows = async (size: string): Promise<void> =>
        vi.waitFor(() => (s.stdin!.write('\n'), expect(out()).toContain(`${size}\r\n`)), { timeout: 5_000, interval: 100 });
      s.resize(120, 40);
      await sizeShows('40 120');
      s.resize(90, 30);
      await sizeShows('30 90');
      s.stdin!.write('q\n');
      expect(await s.exit).toBe(7);
    });

    it('refuses a TTY exec of a missing command with runc’s message, and leaves no session behind', async () => {
      const { rt, root } = setup();
      const id = await run(rt);
      const err = await rt.exec(id, { cmd: ['no-such-command'], tty: true }).catch((e: unknown) => e);
      expect(isRuntimeError(err) && err.code).toBe('InvalidArgument');
      expect((err as Error).message).toContain('executable file not found');
      const ok = await rt.exec(id, { cmd: ['true'], tty: true });
      expect(await ok.exit).toBe(0);
      await vi.waitFor(() => {
        expect(readdirSync(join(root, 'containers', id)).filter((f) => f.startsWith('exec-'))).toEqual([]);
        expect(readdirSync(join(root, 'sock'))).toEqual([id]);
      });
    });

    it('kills the TTY exec process on close', async () => {
      const { rt } = setup();
      const id = await run(rt);
      const s = await rt.exec(id, { cmd: ['sleep', '3600'], tty: true });
      s.close();
      expect(await s.exit).toBe(137);
    });

    it('attaches to a shell with a TTY and stdin: it runs what is typed', async () => {
      const { rt } = setup();
      const id = await run(rt, { command: ['sh'], tty: true, stdin: true });
      const a = await rt.attach(id, { stdin: true });
      const out = text(a.stdout);
      a.stdin!.write('echo hi\n');
      await vi.waitFor(() => expect(out()).toMatch(/echo hi\r\nhi\r\n/), { timeout: 5_000 });
      a.stdin!.write('exit 5\n');
      expect(await a.ended).toBe(5);
    });

    it('keeps stdin open across attach sessions without a TTY', async () => {
      const { rt } = setup();
      const id = await run(rt, { command: ['cat'], stdin: true });
      const first = await rt.attach(id, { stdin: true });
      const out1 = text(first.stdout);
      first.stdin!.end('one\n');
      await vi.waitFor(() => expect(out1()).toBe('one\n'), { timeout: 5_000 });
      first.close();
      expect(await first.ended).toBeUndefined();
      const second = await rt.attach(id, { stdin: true });
      const out2 = text(second.stdout);
      second.stdin!.write('two\n');
      await vi.waitFor(() => expect(out2()).toBe('two\n'), { timeout: 5_000 });
      second.close();
      expect((await rt.containerStatus(id)).state).toBe('running');
    });

    it('resizes the terminal of the main process', async () => {
      const { rt } = setup();
      const id = await run(rt, { command: ['sh', '-c', 'while true; do stty size; sleep 0.2; done'], tty: true });
      const a = await rt.attach(id, {});
      const out = text(a.stdout);
      a.resize(132, 43);
      await vi.waitFor(() => expect(out()).toContain('43 132\r\n'), { timeout: 5_000 });
      a.close();
    });
  });
}

/**
 * Exec on the real runtime (conmon + runc), as root: with a TTY, the terminal has the size the
 * exec asked for (`ExecRequest.consoleSize`) from the process' first instruction on, as
 * Docker's `exec -it` and a CRI exec with a TTY give it; with or without one, `user`, `env`
 * and `workingDir` apply as Docker's `exec -u/-e/-w` (the user resolved in the container's
 * /etc/passwd and /etc/group, as for the container's own user).
 *
 * Runtime data root and cgroup parent are private (`berth-rt-test-h17-…`), containers are
 * named `h17-…`. Skipped unless running as root with runc and conmon.
 */
import { finished } from 'node:stream/promises';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import type { ContainerConfig, ContainerId, ExecRequest } from '../cri/types.ts';
import { BusyboxRootfs, BUSYBOX_REF } from '../testing/busybox-rootfs.ts';
import { realRuntimeMissing } from '../testing/requires-root.ts';
import { privateRuncRuntime } from '../testing/private-runtime.ts';
import type { RuncRuntimeService } from './runtime-service.ts';

const missing = realRuntimeMissing();

if (missing) {
  describe('TTY exec with a console size (real runc + conmon)', () => {
    it.skip(`SKIPPED: needs root with runc and conmon installed (${missing})`, () => {});
  });
} else {
  let fixture: BusyboxRootfs | undefined;
  afterAll(() => fixture?.dispose());

  /** A runtime on a private data root and a random cgroup parent, removed with everything in it after the test. */
  const roots = new Map<RuncRuntimeService, string>();
  const setup = (): RuncRuntimeService => {
    const { rt, root } = privateRuncRuntime('h17', (fixture ??= new BusyboxRootfs()));
    roots.set(rt, root);
    return rt;
  };

  let n = 0;
  async function run(rt: RuncRuntimeService, config: Partial<ContainerConfig> = {}): Promise<ContainerId> {
    const id = await rt.createContainer({ name: `h17-${process.pid}-${++n}`, image: BUSYBOX_REF, command: ['sleep', '3600'], ...config });
    onTestFinished(() => rt.removeContainer(id));
    await rt.startContainer(id);
    return id;
  }

  /** The container's directory in the runtime's data root (where exec sessions keep theirs). */
  const containerDir = (rt: RuncRuntimeService, id: ContainerId): string => join(roots.get(rt)!, 'containers', id);

  /** Everything the session's stdout (with a TTY: its terminal) shows until it ends, and the exit code. */
  async function output(s: { stdout: NodeJS.ReadableStream; exit: Promise<number> }): Promise<{ text: string; code: number }> {
    const chunks: Buffer[] = [];
    s.stdout.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    const [code] = await Promise.all([s.exit, finished(s.stdout).catch(() => {})]);
    return { text: Buffer.concat(chunks).toString(), code };
  }

  describe('TTY exec with a console size (real runc + conmon)', () => {
    it('runs the process in a terminal of the asked size from the start: `stty size` as the first command prints it', async () => {
      const rt = setup();
      const id = await run(rt);
      // Several sizes, each on a fresh exec: no resize is ever sent, the size can only come from the start.
      for (const [width, height] of [
        [80, 24],
        [132, 43],
      ] as const) {
        const s = await rt.exec(id, { cmd: ['stty', 'size'], tty: true, consoleSize: { width, height } });
        const { text, code } = await output(s);
        expect({ text, code }).toEqual({ text: `${height} ${width}\r\n`, code: 0 });
      }
    });

    it('without a console size the terminal starts without one (0×0: what the stream server avoids by waiting for the first resize)', async () => {
      const rt = setup();
      const id = await run(rt);
      const s = await rt.exec(id, { cmd: ['stty', 'size'], tty: true });
      const { text } = await output(s);
      expect(text).not.toMatch(/^[1-9]\d* [1-9]\d*\r\n$/); // busybox: `stty: standard input`
    });

    it('refuses a console size runc cannot set, and ignores one without a TTY', async () => {
      const rt = setup();
      const id = await run(rt);
      const err = await rt.exec(id, { cmd: ['true'], tty: true, consoleSize: { width: 0, height: 24 } }).catch((e: unknown) => e);
      expect(isRuntimeError(err) && err.code).toBe('InvalidArgument');
      expect((err as Error).message).toBe('terminal size 0x24 is not valid');
      const plain = await rt.exec(id, { cmd: ['sh', '-c', 'stty size 2>&1; true'], consoleSize: { width: 80, height: 24 } });
      const stdout = output(plain);
      expect((await stdout).text).toMatch(/stty: standard input/);
    });
  });

  describe('exec with a user, env and working directory (real runc + conmon)', () => {
    /** Runs `cmd` in `id` (with or without a TTY) and resolves with what it printed (TTY line endings made plain) and its exit code. */
    async function execOut(rt: RuncRuntimeService, id: ContainerId, req: Omit<ExecRequest, 'cmd'>, cmd: string[]): Promise<{ text: string; code: number }> {
      const s = await rt.exec(id, { ...req, cmd });
      const stderr: Buffer[] = [];
      s.stderr?.on('data', (d: Buffer) => stderr.push(Buffer.from(d)));
      const { text, code } = await output(s);
      return { text: (text + Buffer.concat(stderr).toString()).replaceAll('\r\n', '\n'), code };
    }

    it.each([{ tty: false }, { tty: true }])(
      'resolves the user as for the container itself (name, uid, uid:gid, name:group) with its supplementary groups (tty $tty)',
      async ({ tty }) => {
        const rt = setup();
        // the container runs as `app` (1000:1000, supplementary group wheel 10): an exec user replaces all of that
        const id = await run(rt, { user: 'app' });
        const ids = ['sh', '-c', 'echo $(id -u):$(id -g):$(id -G)'];
        expect(await execOut(rt, id, { tty }, ids)).toEqual({ text: '1000:1000:1000 10\n', code: 0 });
        expect(await execOut(rt, id, { tty, user: 'nobody' }, ids)).toEqual({ text: '65534:65534:65534\n', code: 0 });
        expect(await execOut(rt, id, { tty, user: '1000:1000' }, ids)).toEqual({ text: '1000:1000:1000 10\n', code: 0 });
        expect(await execOut(rt, id, { tty, user: '0' }, ids)).toEqual({ text: '0:0:0\n', code: 0 });
        expect(await execOut(rt, id, { tty, user: '4242' }, ids)).toEqual({ text: '4242:0:0\n', code: 0 });
        expect(await execOut(rt, id, { tty, user: 'app:nogroup' }, ids)).toEqual({ text: '1000:65534:65534 10\n', code: 0 });
      },
    );

    it.each([{ tty: false }, { tty: true }])('applies env (over the container\'s own) and the working directory (tty $tty)', async ({ tty }) => {
      const rt = setup();
      const id = await run(rt, { env: [{ name: 'A', value: 'from-container' }, { name: 'B', value: 'kept' }], workingDir: '/' });
      const show = ['sh', '-c', 'echo "$A $B $C $(pwd)"; env | grep -c "^A="'];
      expect(await execOut(rt, id, { tty }, show)).toEqual({ text: 'from-container kept  /\n1\n', code: 0 });
      expect(await execOut(rt, id, { tty, env: [{ name: 'A', value: 'x=1' }, { name: 'C', value: 'new' }], workingDir: '/tmp' }, show)).toEqual({
        text: 'x=1 kept new /tmp\n1\n',
        code: 0,
      });
    });

    it("exits as Docker's exec when runc cannot start the command (no TTY): 127 not found, 126 not executable; a command's own 255 stays", async () => {
      const rt = setup();
      const id = await run(rt);
      const notFound = await execOut(rt, id, { user: 'nobody' }, ['no-such-command']);
      expect(notFound).toEqual({ code: 127, text: expect.stringMatching(/executable file not found in \$PATH/) });
      expect((await execOut(rt, id, { workingDir: '/no/such/dir' }, ['pwd'])).code).toBe(127);
      const notExecutable = await execOut(rt, id, {}, ['/etc/passwd']);
      expect(notExecutable).toEqual({ code: 126, text: expect.stringMatching(/permission denied/) });
      expect(await execOut(rt, id, {}, ['sh', '-c', 'echo own >&2; exit 255'])).toEqual({ code: 255, text: 'own\n' });
    });

    it('runs a detached exec in the background under conmon (exec -d): it outlives the call, is reaped, and its session goes when it ends', async () => {
      const rt = setup();
      const id = await run(rt);
      const t0 = Date.now();
      await rt.execDetached(id, { cmd: ['sh', '-c', 'echo $A > /tmp/first; sleep 1; echo done > /tmp/second'], env: [{ name: 'A', value: 'detached' }], user: 'nobody' });
      expect(Date.now() - t0).toBeLessThan(1_000); // it did not wait for the command
      const cat = async (f: string) => (await rt.execSync(id, ['cat', f], 10)).stdout.toString();
      await vi.waitFor(async () => expect(await cat('/tmp/first')).toBe('detached\n'), { timeout: 5_000 });
      expect((await rt.execSync(id, ['stat', '-c', '%U', '/tmp/first'], 10)).stdout.toString()).toBe('nobody\n');
      await vi.waitFor(async () => expect(await cat('/tmp/second')).toBe('done\n'), { timeout: 5_000 });
      // ended: no zombie left in the container, and the session directory is gone
      await vi.waitFor(async () => {
        const ps = (await rt.execSync(id, ['ps', '-o', 'stat,args'], 10)).stdout.toString();
        expect(ps).not.toMatch(/^Z/m);
        expect(ps).not.toContain('sleep 1');
        expect(readdirSync(join(containerDir(rt, id))).filter((f) => f.startsWith('exec-'))).toEqual([]);
      }, { timeout: 5_000 });
    });

    it('refuses a detached exec that cannot start (not found), with or without a terminal', async () => {
      const rt = setup();
      const id = await run(rt);
      for (const tty of [false, true]) {
        const notFound = await rt.execDetached(id, { cmd: ['no-such-command'], tty }).catch((e: unknown) => e);
        expect(isRuntimeError(notFound) && notFound.code).toBe('InvalidArgument');
        expect((notFound as Error).message).toMatch(/executable file not found/);
      }
      expect(readdirSync(containerDir(rt, id)).filter((f) => f.startsWith('exec-'))).toEqual([]);
    });

    it('keeps a detached shell running with a terminal (-dt, -dit) or an open stdin (-di), as docker exec -d does; without either it reads EOF and ends', async () => {
      const rt = setup();
      const id = await run(rt);
      const shells = async () => (await rt.execSync(id, ['sh', '-c', 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = busybox-sh ] && readlink $p/fd/0; done; true'], 10)).stdout.toString();
      // a copy of sh under another name, to find these shells among the container's processes
      await rt.execSync(id, ['cp', '/bin/busybox', '/bin/busybox-sh'], 10);
      await rt.execDetached(id, { cmd: ['busybox-sh', 'sh'] });
      await rt.execDetached(id, { cmd: ['busybox-sh', 'sh'], tty: true, stdin: true, consoleSize: { width: 91, height: 33 } });
      await rt.execDetached(id, { cmd: ['busybox-sh', 'sh'], tty: true });
      await rt.execDetached(id, { cmd: ['busybox-sh', 'sh'], stdin: true });
      await vi.waitFor(async () => {
        const fds = (await shells()).trim().split('\n').sort();
        expect(fds).toHaveLength(3); // the one with neither ended at once
        expect(fds.filter((f) => /^\/dev\/pts\/\d+$/.test(f))).toHaveLength(2);
        expect(fds.filter((f) => /^pipe:/.test(f))).toHaveLength(1);
      }, { timeout: 5_000 });
    });

    it.each([{ tty: false }, { tty: true }])('refuses an unknown user or group with Docker\'s message (tty $tty)', async ({ tty }) => {
      const rt = setup();
      const id = await run(rt);
      const user = await rt.exec(id, { cmd: ['true'], tty, user: 'ghost' }).catch((e: unknown) => e);
      expect(isRuntimeError(user) && user.code).toBe('InvalidArgument');
      expect((user as Error).message).toBe('unable to find user ghost: no matching entries in passwd file');
      const group = await rt.exec(id, { cmd: ['true'], tty, user: 'app:ghosts' }).catch((e: unknown) => e);
      expect((group as Error).message).toBe('unable to find group ghosts: no matching entries in group file');
    });
  });
}

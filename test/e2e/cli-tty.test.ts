/**
 * `berth run -it` and `berth exec -it` as a person at a terminal uses them: the real
 * CLI (`node bin/berth.js --kubeconfig …`) runs in a tmux pane (a real pseudo-terminal)
 * against an in-process berth server with the runc runtime and a busybox image. Keys
 * are typed with `send-keys`, the screen is read with `capture-pane`, the window is
 * resized with `resize-window` (the CLI gets SIGWINCH and sends a resize message),
 * and the CLI's exit code and the terminal's modes after it are printed by a wrapper
 * shell in the pane (kept on screen by `remain-on-exit`).
 *
 * tmux runs on a private socket (`-L h15-<pid>`, no user config), killed in afterAll.
 * Containers are named `h15-…`. Skipped unless running as root with runc, conmon,
 * kubectl and tmux.
 */
import { spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, deleteAllContainers, narrator, realContainersMissing, REPO, run, startWithBusybox, stopAndSweep, type ToolResult } from './helpers.ts';

const CTRS = '/apis/berth.dev/v1/namespaces/default/containers';
const IMGS = '/apis/berth.dev/v1/namespaces/default/images';
const SOCKET = `h15-${process.pid}`;
const tmuxMissing = spawnSync('tmux', ['-V']).status === 0 ? undefined : 'tmux is not installed (scripts/setup.sh installs it)';
const missing = realContainersMissing() ?? tmuxMissing;

/** busybox sh's prompt for root in `/`, at the end of the screen. */
const PROMPT = /\/ # $/;

if (missing) {
  describe('berth run -it / exec -it in a real terminal (tmux, runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and tmux installed (${missing})`, () => {});
  });
} else {
  describe('berth run -it / exec -it in a real terminal (tmux, runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    let tmuxConf: string;
    const ids = new Set<string>();
    const log = narrator('h15');

    /** `tmux -L h15-<pid> -f <our conf> ARGS…`, synchronously; throws when tmux fails. */
    const tmux = (...args: string[]): string => {
      const env = { ...process.env };
      delete env.TMUX; // never talk to a tmux this test runs inside
      const r = spawnSync('tmux', ['-L', SOCKET, '-f', tmuxConf, ...args], { encoding: 'utf8', env });
      if (r.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    };

    /**
     * A tmux session `name` whose single 80×24 pane runs `berth --kubeconfig K ARGS…`,
     * then prints the terminal's settings (`stty -a` on one line after `settings-after:`)
     * and the CLI's exit code (`cli-exit=N`; tmux's `#{pane_dead_status}` is sometimes
     * missing for a dead pane, so the screen says it).
     */
    const startCli = (name: string, args: readonly string[]): void => {
      const script = '"$@"; rc=$?; echo "settings-after: $(stty -a | tr "\\n" " ")"; echo "cli-exit=$rc"';
      const argv = ['sh', '-c', script, 'sh', process.execPath, BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args];
      tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '24', '-c', REPO, argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' '));
    };

    /** The local modes of the pane's terminal (`stty -a` of its pty), e.g. `-icanon` in raw mode. */
    const paneModes = (name: string): string[] => {
      const pty = tmux('display-message', '-p', '-t', name, '#{pane_tty}').trim();
      const r = spawnSync('stty', ['-a', '-F', pty], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`stty -F ${pty}: ${r.stderr}`);
      return r.stdout.split(/[\s;]+/);
    };

    /** The modes `stty -a` printed in the pane after the CLI exited. */
    const modesAfter = (name: string): string[] => {
      const line = /^settings-after: (.*)$/m.exec(screen(name))?.[1];
      expect(line, screen(name)).toBeDefined();
      return line!.split(/[\s;]+/);
    };

    /** Raw (Docker's `-t` client side): no line editing, echo or signal keys; cooked: all three. */
    const RAW = ['-icanon', '-echo', '-isig'];
    const COOKED = ['icanon', 'echo', 'isig'];

    /** What the pane shows, with its scroll-back, wrapped lines joined, trailing blank lines dropped. */
    const screen = (name: string): string => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name).replace(/\n+$/, '');

    /** The CLI's exit code once the pane's wrapper printed it; undefined while the CLI runs. */
    const exitCode = (name: string): number | undefined => {
      const code = /^cli-exit=(\d+)\r?$/m.exec(screen(name))?.[1];
      return code === undefined ? undefined : Number(code);
    };

    /** Types `text` (literally) then Enter. */
    const type = (name: string, text: string): void => {
      tmux('send-keys', '-t', name, '-l', text);
      tmux('send-keys', '-t', name, 'Enter');
    };

    /** Waits for the shell's prompt at the end of the screen, pressing Enter now and then (a prompt printed before the CLI attached is not replayed). */
    const waitForPrompt = async (name: string): Promise<void> => {
      let tries = 0;
      await vi.waitFor(() => {
        if (exitCode(name) !== undefined) throw new Error(`the CLI exited early:\n${screen(name)}`);
        if (tries++ % 10 === 9) tmux('send-keys', '-t', name, 'Enter');
        expect(screen(name)).toMatch(PROMPT);
      }, { timeout: 30_000, interval: 200 });
      log(`${name}: prompt after ${tries} looks`);
    };

    let probes = 0;
    /**
     * Types `stty size` (wrapped in an echo with a marker computed by the shell, so the
     * typed line never matches) until it prints `rows cols`: the size follows a resize
     * asynchronously (SIGWINCH → resize message → conmon's ctl fifo → TIOCSWINSZ).
     */
    const expectSize = async (name: string, rows: number, cols: number): Promise<void> => {
      const want = new RegExp(`^size-\\d+=${rows} ${cols}\\r?$`, 'm');
      await vi.waitFor(() => {
        if (want.test(screen(name))) return;
        probes++;
        type(name, `echo "size-$((${probes}+0))=$(stty size)"`);
        throw new Error(`no "${rows} ${cols}" yet:\n${screen(name)}`);
      }, { timeout: 15_000, interval: 500 });
    };

    /** Waits until the CLI in `name` has exited; its exit code. */
    const cliExit = async (name: string): Promise<number> => {
      let code: number | undefined;
      await vi.waitFor(() => {
        code = exitCode(name);
        expect(code, screen(name)).toBeDefined();
      }, { timeout: 30_000, interval: 100 });
      return code!;
    };

    /** `berth --kubeconfig K ARGS…` outside tmux; never rejects. */
    const berth = (args: readonly string[]): Promise<ToolResult> => run(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args], { timeoutMs: 90_000 });

    beforeAll(async () => {
      ({ root, cp } = await startWithBusybox('h15', {}, async (dir) => {
        tmuxConf = join(dir, 'tmux.conf');
        // The pane is the whole window (no status line); a pane whose process exits stays, with its exit status.
        await writeFile(tmuxConf, 'set -g status off\nset -g remain-on-exit on\nset -g history-limit 5000\n');
      }));
      log(`berth server with runc at ${cp.url}, busybox imported, tmux socket ${SOCKET}`);
    }, 90_000);

    afterEach(async () => {
      await deleteAllContainers(cp, ids);
    });

    afterAll(async () => {
      if (tmuxConf) {
        spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
        // the socket file stays behind: remove it (where tmux puts `-L` sockets)
        await rm(join(process.env.TMUX_TMPDIR || '/tmp', `tmux-${process.getuid?.()}`, SOCKET), { force: true });
      }
      await stopAndSweep(cp, root, ids);
    });

    it('run -it --rm: typed commands run in a terminal of the window\'s size, which follows a resize; exit 7 → 7, the container is removed', async () => {
      startCli('h15-a', ['run', '-it', '--rm', '--name', 'h15-a', 'busybox', 'sh']);
      log('run -it: waiting for the prompt');
      await waitForPrompt('h15-a');
      const c = await cp.request('GET', `${CTRS}/h15-a`);
      expect(c.body.spec).toMatchObject({ tty: true, stdin: true });
      if (c.body.status?.containerID) ids.add(c.body.status.containerID);

      expect(paneModes('h15-a')).toEqual(expect.arrayContaining(RAW));
      await expectSize('h15-a', 24, 80);
      type('h15-a', 'echo "sum-$((2+3))"; tty');
      await vi.waitFor(() => expect(screen('h15-a')).toMatch(/^sum-5\r?\n\/dev\/pts\/\d+\r?$/m), { timeout: 10_000 });

      log('resize-window 100x30');
      tmux('resize-window', '-t', 'h15-a', '-x', '100', '-y', '30');
      await expectSize('h15-a', 30, 100);

      type('h15-a', 'exit 7');
      expect(await cliExit('h15-a')).toBe(7);
      expect(modesAfter('h15-a')).toEqual(expect.arrayContaining(COOKED)); // the terminal is given back as it was
      expect((await cp.request('GET', `${CTRS}/h15-a`)).status).toBe(404); // --rm deleted it before the CLI exited
    }, 90_000);

    it('run -it: Ctrl-C interrupts the foreground command and the shell goes on; Ctrl-D at the prompt ends the session with 0', async () => {
      startCli('h15-c', ['run', '-it', '--rm', '--name', 'h15-c', 'busybox', 'sh']);
      await waitForPrompt('h15-c');
      type('h15-c', 'sleep 100');
      // sleep runs once the typed line shows and no new prompt follows it
      await vi.waitFor(() => expect(screen('h15-c')).toMatch(/\/ # sleep 100\r?$/), { timeout: 10_000 });
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      log('Ctrl-C');
      tmux('send-keys', '-t', 'h15-c', 'C-c');
      await vi.waitFor(() => expect(screen('h15-c')).toMatch(PROMPT), { timeout: 10_000 });
      type('h15-c', 'echo "after=$?"');
      // 130 = 128 + SIGINT: the terminal's line discipline in the container turned ^C into SIGINT for sleep
      await vi.waitFor(() => expect(screen('h15-c')).toMatch(/^after=130\r?$/m), { timeout: 10_000 });
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(exitCode('h15-c')).toBeUndefined(); // the CLI is still attached
      expect((await cp.request('GET', `${CTRS}/h15-c`)).body.status?.phase).toBe('Running');

      log('Ctrl-D');
      tmux('send-keys', '-t', 'h15-c', 'C-d');
      expect(await cliExit('h15-c')).toBe(0);
      expect(modesAfter('h15-c')).toEqual(expect.arrayContaining(COOKED));
      expect((await cp.request('GET', `${CTRS}/h15-c`)).status).toBe(404);
    }, 90_000);

    it('exec -it into a detached container: a terminal that follows a resize; exit 3 → 3, the container keeps running', async () => {
      const d = await berth(['run', '-d', '--name', 'h15-b', 'busybox', 'sleep', '600']);
      expect(d.code, d.stderr).toBe(0);
      ids.add(d.stdout.trim());

      startCli('h15-b', ['exec', '-it', 'h15-b', 'sh']);
      log('exec -it: waiting for the prompt');
      await waitForPrompt('h15-b');
      expect(paneModes('h15-b')).toEqual(expect.arrayContaining(RAW));
      await expectSize('h15-b', 24, 80);
      type('h15-b', 'echo "pid1=$(cat /proc/1/cmdline | tr "\\0" " ")"');
      await vi.waitFor(() => expect(screen('h15-b')).toMatch(/^pid1=sleep 600 ?\r?$/m), { timeout: 10_000 });

      log('resize-window 100x30');
      tmux('resize-window', '-t', 'h15-b', '-x', '100', '-y', '30');
      await expectSize('h15-b', 30, 100);

      type('h15-b', 'exit 3');
      expect(await cliExit('h15-b')).toBe(3);
      expect(modesAfter('h15-b')).toEqual(expect.arrayContaining(COOKED));
      expect((await cp.request('GET', `${CTRS}/h15-b`)).body.status?.phase).toBe('Running');
      expect((await berth(['rm', '-f', 'h15-b'])).code).toBe(0);
    }, 90_000);

    // The size is in the spec the CLI creates (spec.consoleSize), so no resize message has to win a race with the start.
    it('run -it shows what the process prints first, in a terminal of the window\'s size from the start (create, attach, then start, as Docker)', async () => {
      startCli('h15-e', ['run', '-it', '--rm', '--name', 'h15-e', 'busybox', 'sh', '-c', 'echo early; stty size; exit 4']);
      expect(await cliExit('h15-e')).toBe(4);
      expect(screen('h15-e')).toMatch(/^early\r?\n24 80\r?$/m);
      expect((await cp.request('GET', `${CTRS}/h15-e`)).status).toBe(404);
    }, 90_000);
    it('run -dit from a terminal: the detached container\'s terminal has the window\'s size from its first instruction', async () => {
      startCli('h18-d', ['run', '-dit', '--name', 'h18-d', 'busybox', 'sh', '-c', 'stty size; exec sleep 600']);
      expect(await cliExit('h18-d')).toBe(0);
      const id = /^([0-9a-f]{12,})\r?$/m.exec(screen('h18-d'))?.[1];
      expect(id, screen('h18-d')).toBeDefined();
      ids.add(id!);
      await vi.waitFor(async () => {
        const logs = await berth(['logs', 'h18-d']);
        expect(logs.stdout).toMatch(/^24 80\r?$/m);
      }, { timeout: 15_000, interval: 200 });
      // rm -f kills at once (grace period 0), as docker rm -f: `sleep` as PID 1 ignores SIGTERM and would hold on for the 10 s default
      expect((await berth(['rm', '-f', 'h18-d'])).code).toBe(0);
      const events = (await cp.request('GET', '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dh18-d')).body.items as { reason: string; message: string }[];
      expect(events.find((e) => e.reason === 'Killing')?.message, JSON.stringify(events)).toMatch(/SIGKILL after 0 s/);
    }, 90_000);

    it('exec -it starts the command in a terminal of the window\'s size: `stty size` as the very first thing prints it', async () => {
      const d = await berth(['run', '-d', '--name', 'h17-s', 'busybox', 'sleep', '600']);
      expect(d.code, d.stderr).toBe(0);
      ids.add(d.stdout.trim());
      // The stream server waits for the CLI's first resize and starts the process with that size (no resize after).
      startCli('h17-s', ['exec', '-it', 'h17-s', 'sh', '-c', 'stty size; exit 5']);
      expect(await cliExit('h17-s')).toBe(5);
      expect(screen('h17-s')).toMatch(/^24 80\r?$/m);
      expect(screen('h17-s')).not.toMatch(/stty: /);
      expect((await cp.request('GET', `${CTRS}/h17-s`)).body.status?.phase).toBe('Running');
      expect((await berth(['rm', '-f', 'h17-s'])).code).toBe(0);
    }, 90_000);
  });
}

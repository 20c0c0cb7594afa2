/**
 * `berth exec -u/-e/-w` end to end, as a Docker user runs them: the real CLI (`node
 * bin/berth.js --kubeconfig …`) as a child process against an in-process berth server with
 * the runc runtime and a busybox image (`root`, `nobody`). The flags travel as berth's exec
 * options (`user`, `env`, `workingDir`) and the node applies them to the process itself: no
 * `env`/`sh` wrapping of the command. Containers are named `h18-…`; no network.
 *
 * Skipped unless running as root with runc, conmon and kubectl.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, deleteAllContainers, narrator, realContainersMissing, run, startWithBusybox, stopAndSweep, type ToolResult } from './helpers.ts';

const IMGS = '/apis/berth.dev/v1/namespaces/default/images';
const missing = realContainersMissing();

if (missing) {
  describe('berth exec -u/-e/-w end to end (runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  describe('berth exec -u/-e/-w end to end (runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    const ids = new Set<string>();
    const log = narrator('h18');

    /** `berth --kubeconfig K ARGS…`; never rejects. */
    const berth = (args: readonly string[], opts: { env?: Record<string, string> } = {}): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args], { timeoutMs: 90_000, ...opts });

    /** `berth ARGS…` that must succeed with nothing on stderr; its stdout. */
    const ok = async (args: readonly string[], opts: { env?: Record<string, string> } = {}): Promise<string> => {
      const r = await berth(args, opts);
      expect(r, `berth ${args.join(' ')}`).toMatchObject({ code: 0, stderr: '' });
      return r.stdout;
    };

    /** `run -d --name NAME busybox sleep 3600`, remembered for the sweep. */
    const runDetached = async (name: string): Promise<void> => {
      ids.add((await ok(['run', '-d', '--name', name, 'busybox', 'sleep', '3600'])).trim());
    };

    beforeAll(async () => {
      ({ root, cp } = await startWithBusybox('h18'));
      log(`berth server with runc at ${cp.url}, busybox imported`);
    }, 90_000);

    afterEach(async () => {
      await deleteAllContainers(cp, ids);
    });

    afterAll(async () => {
      await stopAndSweep(cp, root, ids);
    });

    it('exec -u runs as that user (name, uid:gid), with or without a terminal; an unknown user is refused as Docker does (126)', async () => {
      await runDetached('h18-user');
      expect(await ok(['exec', 'h18-user', 'id', '-u'])).toBe('0\n'); // the container's own user
      expect(await ok(['exec', '-u', 'nobody', 'h18-user', 'id', '-u'])).toBe('65534\n');
      expect(await ok(['exec', '-u', 'nobody', 'h18-user', 'sh', '-c', 'echo $(id -g) $(id -G)'])).toBe('65534 65534\n'); // root's groups do not stay
      expect(await ok(['exec', '--user', '1000:1000', 'h18-user', 'sh', '-c', 'echo $(id -u) $(id -g)'])).toBe('1000 1000\n');
      expect(await ok(['exec', '-u', 'nobody:root', 'h18-user', 'sh', '-c', 'echo $(id -u) $(id -g)'])).toBe('65534 0\n');
      log('exec -t -u: the terminal path (conmon) resolves the user the same way');
      expect(await ok(['exec', '-t', '-u', 'nobody', 'h18-user', 'id', '-u'])).toBe('65534\r\n');

      log('exec -u ghost');
      const ghost = await berth(['exec', '-u', 'ghost', 'h18-user', 'id']);
      expect(ghost).toMatchObject({ code: 126, stdout: '', stderr: 'Error response from daemon: unable to find user ghost: no matching entries in passwd file\n' });
      const group = await berth(['exec', '-u', 'nobody:ghosts', 'h18-user', 'id']);
      expect(group).toMatchObject({ code: 126, stderr: 'Error response from daemon: unable to find group ghosts: no matching entries in group file\n' });
    }, 90_000);

    it('exec -e sets variables over the container\'s (NAME alone takes this shell\'s value), -w the directory; the command runs unwrapped', async () => {
      await runDetached('h18-env');
      expect(await ok(['exec', '-e', 'A=1', 'h18-env', 'sh', '-c', 'echo $A'])).toBe('1\n');
      expect(await ok(['exec', '-e', 'A=x=y z', '-e', 'FROM_SHELL', '-e', 'PATH=/bin', 'h18-env', 'sh', '-c', 'echo "$A|$FROM_SHELL|$PATH"'], { env: { FROM_SHELL: 'here' } })).toBe(
        'x=y z|here|/bin\n',
      );
      expect(await ok(['exec', '-w', '/tmp', 'h18-env', 'pwd'])).toBe('/tmp\n');
      // the process is the command itself (pid namespace: its parent is runc's init, not an `env` or `sh` wrapper)
      expect(await ok(['exec', '-e', 'A=1', '-w', '/tmp', 'h18-env', 'cat', '/proc/self/cmdline'])).toBe('cat\0/proc/self/cmdline\0');

      const relative = await berth(['exec', '-w', 'tmp', 'h18-env', 'pwd']);
      expect(relative.code).toBe(126);
      expect(relative.stderr).toMatch(/^berth: exec -w tmp: the working directory must be an absolute path\n/);
    }, 90_000);

    it('keeps Docker\'s exit codes: the command\'s, 127 for a command not found, 126 for one that cannot be executed', async () => {
      await runDetached('h18-codes');
      expect((await berth(['exec', 'h18-codes', 'sh', '-c', 'exit 3'])).code).toBe(3);
      expect((await berth(['exec', '-u', 'nobody', 'h18-codes', 'no-such-command'])).code).toBe(127);
      expect((await berth(['exec', '-w', '/tmp', 'h18-codes', '/etc/passwd'])).code).toBe(126);
      expect((await berth(['exec', '-t', 'h18-codes', 'no-such-command'])).code).toBe(127);
    }, 90_000);

    it('exec -d starts the command in the background and returns at once (0, no output); -dit keeps a shell waiting on its own terminal', async () => {
      await runDetached('h18-bg');
      const bg = await berth(['exec', '-d', '-e', 'WHO=bg', 'h18-bg', 'sh', '-c', 'echo $WHO > /tmp/bg; sleep 3; echo later > /tmp/later']);
      expect(bg).toMatchObject({ code: 0, stdout: '', stderr: '' });
      // it returned before the command ended: the second file is not there yet
      expect((await berth(['exec', 'h18-bg', 'cat', '/tmp/later'])).code).toBe(1);
      await vi.waitFor(async () => expect((await berth(['exec', 'h18-bg', 'cat', '/tmp/bg'])).stdout).toBe('bg\n'), { timeout: 5_000, interval: 200 });
      await vi.waitFor(async () => expect((await berth(['exec', 'h18-bg', 'cat', '/tmp/later'])).stdout).toBe('later\n'), { timeout: 15_000, interval: 500 });
      const notFound = await berth(['exec', '-d', 'h18-bg', 'no-such-command']);
      expect(notFound.code).toBe(127);
      expect(notFound.stderr).toMatch(/executable file not found/);
      // -dit: a shell with a terminal and an open stdin nobody writes to keeps running (without them it would read EOF and end)
      await berth(['exec', 'h18-bg', 'cp', '/bin/busybox', '/bin/busybox-sh']);
      for (const flags of [['-dit'], ['-d']]) expect(await berth(['exec', ...flags, 'h18-bg', 'busybox-sh', 'sh'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
      const stdinOf = ['sh', '-c', 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = busybox-sh ] && readlink $p/fd/0; done; true'];
      await vi.waitFor(async () => expect((await berth(['exec', 'h18-bg', ...stdinOf])).stdout).toMatch(/^\/dev\/pts\/\d+\n$/), { timeout: 5_000, interval: 200 });
    }, 90_000);
  });
}

/**
 * `berth kill -s SIGNAL` end to end, as a Docker user runs it: `node bin/berth.js
 * --kubeconfig … kill -s HUP C` against an in-process berth server with the runc runtime
 * (no container network) → the Container's `kill` subresource → the node agent → `runc kill`.
 * Containers are named `h19-…`.
 *
 * Skipped unless running as root with runc, conmon and kubectl.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, deleteAllContainers, narrator, realContainersMissing, run, startWithBusybox, stopAndSweep, type ToolResult } from './helpers.ts';

const CTRS = '/apis/berth.dev/v1/namespaces/default/containers';
const IMGS = '/apis/berth.dev/v1/namespaces/default/images';
/** A shell that says which signals it got: HUP it survives, TERM ends it with 143 (pid 1 ignores untrapped signals). */
const TRAPS = "trap 'echo got HUP' HUP; trap 'echo got TERM; exit 143' TERM; echo ready; while true; do sleep 0.2; done";
const missing = realContainersMissing();

if (missing) {
  describe('berth kill -s end to end (runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  describe('berth kill -s end to end (runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    const ids = new Set<string>();
    const log = narrator('h19');

    /** `berth --kubeconfig K ARGS…`; never rejects. */
    const berth = (args: readonly string[]): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args], { timeoutMs: 90_000 });

    /** `run -d` of the trapping shell; waits until its traps are set. */
    const runTraps = async (name: string): Promise<void> => {
      const d = await berth(['run', '-d', '--name', name, 'busybox', 'sh', '-c', TRAPS]);
      expect(d.code, d.stderr).toBe(0);
      ids.add(d.stdout.trim());
      await vi.waitFor(async () => expect((await berth(['logs', name])).stdout).toBe('ready\n'), { timeout: 10_000, interval: 200 });
    };
    const stateOf = async (name: string): Promise<string> =>
      (await berth(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.State}} {{.Status}}'])).stdout;

    beforeAll(async () => {
      ({ root, cp } = await startWithBusybox('h19'));
      log(`berth server with runc at ${cp.url}, busybox imported`);
    }, 90_000);

    afterEach(async () => {
      if (cp) await deleteAllContainers(cp, ids, 30_000);
    });

    afterAll(async () => {
      await stopAndSweep(cp, root, ids);
    });

    it('sends HUP to the main process, which traps it and keeps running; TERM ends it (kill -s)', async () => {
      await runTraps('h19-a');
      await runTraps('h19-b');

      log('kill -s HUP h19-a h19-b');
      const hup = await berth(['kill', '-s', 'HUP', 'h19-a', 'h19-b']);
      expect(hup.stderr).toBe('');
      expect(hup.code).toBe(0);
      expect(hup.stdout).toBe('h19-a\nh19-b\n');
      for (const name of ['h19-a', 'h19-b']) {
        await vi.waitFor(async () => expect((await berth(['logs', name])).stdout).toBe('ready\ngot HUP\n'), { timeout: 10_000, interval: 200 });
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(await stateOf('h19-a')).toMatch(/^running Up /);
      expect((await cp.request('GET', `${CTRS}/h19-a`)).body.status).toMatchObject({ phase: 'Running', restartCount: 0 });

      log('kill -s SIGTERM h19-a');
      const term = await berth(['kill', '-s', 'SIGTERM', 'h19-a']);
      expect(term.stderr).toBe('');
      expect(term.stdout).toBe('h19-a\n');
      expect(term.code).toBe(0);
      await vi.waitFor(async () => expect(await stateOf('h19-a')).toMatch(/^exited Exited \(143\) /), { timeout: 10_000, interval: 200 });
      expect((await berth(['logs', 'h19-a'])).stdout).toBe('ready\ngot HUP\ngot TERM\n');
      expect((await berth(['wait', 'h19-a'])).stdout).toBe('143\n');
      expect(await stateOf('h19-b')).toMatch(/^running Up /);

      log('kill -s HUP of an exited container');
      const gone = await berth(['kill', '-s', 'HUP', 'h19-a']);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toBe('Error response from daemon: cannot kill container: h19-a: container is not running\n');
    }, 120_000);

    it('refuses a signal Linux does not have, and a paused container, signalling nothing', async () => {
      await runTraps('h19-c');

      log('kill -s NOSUCH');
      const bad = await berth(['kill', '-s', 'NOSUCH', 'h19-c']);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('');
      expect(bad.stderr).toBe('Error response from daemon: signal: Invalid value: "NOSUCH": not a Linux signal (a name such as HUP or SIGTERM, or its number)\n');

      log('kill -s HUP of a paused container');
      expect((await berth(['pause', 'h19-c'])).code).toBe(0);
      const paused = await berth(['kill', '-s', 'HUP', 'h19-c']);
      expect(paused.code).toBe(1);
      expect(paused.stderr).toBe('Error response from daemon: cannot kill container: h19-c: container h19-c is paused. Unpause the container before stopping or killing\n');
      expect((await berth(['unpause', 'h19-c'])).code).toBe(0);
      await new Promise((r) => setTimeout(r, 500));
      expect((await berth(['logs', 'h19-c'])).stdout).toBe('ready\n');
      expect(await stateOf('h19-c')).toMatch(/^running Up /);

      log('kill -s 9 stays the declarative stop (137)');
      expect((await berth(['kill', '-s', '9', 'h19-c'])).stdout).toBe('h19-c\n');
      expect(await stateOf('h19-c')).toMatch(/^exited Exited \(137\) /);
      expect((await cp.request('GET', `${CTRS}/h19-c`)).body.spec).toMatchObject({ state: 'Stopped', stopGracePeriodSeconds: 0 });
    }, 120_000);
  });
}

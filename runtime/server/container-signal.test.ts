/**
 * `signalContainer` on the real runtime (conmon + runc), as root: a signal reaches the main
 * process (`docker kill -s`), which runs its trap and keeps running, or exits when its trap
 * says so; paused, exited and bad-signal calls are refused.
 *
 * Runtime data root and cgroup parent are private (`berth-rt-test-h19-…`), containers are
 * named `h19-…`. Skipped unless running as root with runc and conmon.
 */
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { isRuntimeError, type RuntimeErrorCode } from '../cri/errors.ts';
import type { ContainerId } from '../cri/types.ts';
import { BusyboxRootfs, BUSYBOX_REF } from '../testing/busybox-rootfs.ts';
import { realRuntimeMissing } from '../testing/requires-root.ts';
import { privateRuncRuntime } from '../testing/private-runtime.ts';
import type { RuncRuntimeService } from './runtime-service.ts';

const missing = realRuntimeMissing();

/** A shell (pid 1 of its container: untrapped signals do nothing to it) that says which signals it got; TERM ends it with 42. */
const TRAPS = [
  'sh',
  '-c',
  "trap 'echo got HUP' HUP; trap 'echo got ABRT' ABRT; trap 'echo got USR1' USR1; trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
];

if (missing) {
  describe('signalContainer (real runc + conmon)', () => {
    it.skip(`SKIPPED: needs root with runc and conmon installed (${missing})`, () => {});
  });
} else {
  let fixture: BusyboxRootfs | undefined;
  afterAll(() => fixture?.dispose());

  /** A runtime on a private data root and a random cgroup parent, removed with everything in it after the test. */
  const setup = (): RuncRuntimeService => privateRuncRuntime('h19', (fixture ??= new BusyboxRootfs())).rt;

  let n = 0;
  /** Starts the trapping shell and waits until its traps are set (it printed `ready`). */
  async function run(rt: RuncRuntimeService): Promise<ContainerId> {
    const id = await rt.createContainer({ name: `h19-${process.pid}-${++n}`, image: BUSYBOX_REF, command: TRAPS });
    onTestFinished(() => rt.removeContainer(id));
    await rt.startContainer(id);
    await vi.waitFor(async () => expect(await logText(rt, id)).toContain('ready\n'), { timeout: 5_000, interval: 50 });
    return id;
  }

  async function logText(rt: RuncRuntimeService, id: ContainerId): Promise<string> {
    let text = '';
    for await (const line of rt.logs(id)) text += `${line.text}${line.partial ? '' : '\n'}`;
    return text;
  }

  async function rejectsWith(p: Promise<unknown>, code: RuntimeErrorCode, message?: RegExp): Promise<void> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRuntimeError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
    if (message) expect((err as Error).message).toMatch(message);
  }

  describe('signalContainer (real runc + conmon)', () => {
    it('delivers HUP to the main process, which runs its trap and keeps running; TERM ends it', async () => {
      const rt = setup();
      const id = await run(rt);
      await rt.signalContainer(id, 'HUP');
      await vi.waitFor(async () => expect(await logText(rt, id)).toContain('got HUP\n'), { timeout: 5_000, interval: 50 });
      await new Promise((r) => setTimeout(r, 300));
      expect((await rt.containerStatus(id)).state).toBe('running');

      await rt.signalContainer(id, 'SIGTERM');
      await vi.waitFor(async () => expect((await rt.containerStatus(id)).state).toBe('exited'), { timeout: 5_000, interval: 50 });
      expect((await rt.containerStatus(id)).exitCode).toBe(42);
      expect(await logText(rt, id)).toContain('got TERM\n');
      // exited: nothing to signal any more
      await rejectsWith(rt.signalContainer(id, 'HUP'), 'FailedPrecondition');
    }, 30_000);

    it('takes numbers and names runc knows only by another name (IOT is ABRT)', async () => {
      const rt = setup();
      const id = await run(rt);
      await rt.signalContainer(id, '10');
      await rt.signalContainer(id, 'iot');
      await vi.waitFor(
        async () => {
          const text = await logText(rt, id);
          expect(text).toContain('got USR1\n');
          expect(text).toContain('got ABRT\n');
        },
        { timeout: 5_000, interval: 50 },
      );
      expect((await rt.containerStatus(id)).state).toBe('running');
    }, 30_000);

    it('refuses a paused container and a signal Linux does not have, sending nothing', async () => {
      const rt = setup();
      const id = await run(rt);
      await rejectsWith(rt.signalContainer(id, 'NOSUCH'), 'InvalidArgument', /unknown signal "NOSUCH"/);
      await rejectsWith(rt.signalContainer(id, '0'), 'InvalidArgument');
      await rt.pauseContainer(id);
      await rejectsWith(rt.signalContainer(id, 'HUP'), 'FailedPrecondition', /paused/);
      await rt.resumeContainer(id);
      await new Promise((r) => setTimeout(r, 300));
      expect(await logText(rt, id)).not.toContain('got HUP');
      await rejectsWith(rt.signalContainer('0'.repeat(64) as ContainerId, 'HUP'), 'NotFound');
    }, 30_000);
  });
}

/**
 * The `berth` CLI end to end, as a Docker user runs it: `node bin/berth.js
 * --kubeconfig … VERB …` as a child process against an in-process berth server
 * with the runc runtime and a busybox image imported without internet. Each row
 * of docs/docker-to-berth.md is exercised here. Containers are named `h10-…`.
 *
 * Skipped unless running as root with runc, conmon and kubectl (and `script` for the TTY test).
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, narrator, realContainersMissing, REPO, run, startWithBusybox, sweepDataDir, type ToolResult } from './helpers.ts';

const CTRS = '/apis/berth.dev/v1/namespaces/default/containers';
const IMGS = '/apis/berth.dev/v1/namespaces/default/images';
const missing = realContainersMissing();

if (missing) {
  describe('berth CLI end to end (runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  describe('berth CLI end to end (runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    const ids = new Set<string>();
    const log = narrator('h10');

    /** `berth --kubeconfig K ARGS…`; never rejects. */
    const berth = (args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args], { timeoutMs: 90_000, ...opts });

    beforeAll(async () => {
      ({ root, cp } = await startWithBusybox('h10'));
      log(`berth server with runc at ${cp.url}, busybox imported`);
    }, 90_000);

    afterEach(async () => {
      const list = await cp.request('GET', CTRS);
      for (const c of list.body.items ?? []) {
        if (c.status?.containerID) ids.add(c.status.containerID);
        await cp.request('DELETE', `${CTRS}/${c.metadata.name}`);
      }
      await vi.waitFor(async () => expect((await cp.request('GET', CTRS)).body.items).toEqual([]), { timeout: 30_000, interval: 100 });
    });

    afterAll(async () => {
      if (!cp) return;
      await cp.server.close().catch((err: unknown) => console.error('stopping the control plane failed', err));
      if (cp.dataDir) await sweepDataDir(cp.dataDir, ids);
      await cp.stop().catch((err: unknown) => console.error('stopping the control plane failed', err));
      if (root) await sweepDataDir(root, ids);
    });

    it('shows client, server and node facts (version, info)', async () => {
      const v = await berth(['version']);
      expect(v.stderr).toBe('');
      expect(v.code).toBe(0);
      expect(v.stdout).toMatch(/Client:\n Version: +\d/);
      expect(v.stdout).toMatch(/Server:[\s\S]*API: +v1\.\d+/);
      const i = await berth(['info']);
      expect(i.code).toBe(0);
      expect(i.stdout).toMatch(/ {2}h10:\n/);
      expect(i.stdout).toMatch(/Runtime: runc \d/);
    });

    it('exits with the container\'s exit code: run true → 0, exit 3 → 3, a missing command → 127; --rm removes each; run -d --rm is removed by the server when it exits', async () => {
      log('run --rm busybox true');
      const ok = await berth(['run', '--rm', '--name', 'h10-true', 'busybox', 'true']);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      log('run --rm busybox sh -c "echo out; echo err >&2; exit 3"');
      const three = await berth(['run', '--rm', '--name', 'h10-three', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      expect(three.stdout).toBe('out\n'); // the container's stdout and stderr apart, as docker run
      expect(three.stderr).toBe('err\n');
      expect(three.code).toBe(3);
      log('run --rm busybox no-such-command');
      const nf = await berth(['run', '--rm', '--name', 'h10-nf', 'busybox', 'no-such-command']);
      expect(nf.code).toBe(127);
      expect(nf.stderr).toMatch(/h10-nf.*no-such-command.*(not found|no such file)/);
      expect((await cp.request('GET', CTRS)).body.items).toEqual([]);

      log('run -d --rm: the server removes it once it exits (spec.autoRemove), not the CLI');
      const d = await berth(['run', '-d', '--rm', '--name', 'h10-drm', 'busybox', 'sh', '-c', 'sleep 1; exit 4']);
      expect(d.code).toBe(0);
      expect(d.stdout).toMatch(/^[0-9a-f]{64}\n$/);
      const live = await cp.request('GET', `${CTRS}/h10-drm`);
      expect(live.body.spec.autoRemove).toBe(true);
      expect(live.body.status?.phase).toBe('Running');
      ids.add(live.body.status.containerID);
      await vi.waitFor(async () => expect((await cp.request('GET', `${CTRS}/h10-drm`)).status).toBe(404), { timeout: 30_000, interval: 100 });
    });

    it('runs detached, lists, shows logs, execs, pauses, stops and removes (run -d, ps, logs, exec, pause, unpause, stop, rm)', async () => {
      log('run -d');
      const d = await berth(['run', '-d', '--name', 'h10-web', '-l', 'tier=web', 'busybox', 'sh', '-c', 'echo hello; while true; do sleep 1; done']);
      expect(d.stderr).toBe('');
      expect(d.code).toBe(0);
      expect(d.stdout).toMatch(/^[0-9a-f]{64}\n$/);
      const id = d.stdout.trim();
      ids.add(id);

      const psOut = await berth(['ps']);
      expect(psOut.code).toBe(0);
      const [header, ...lines] = psOut.stdout.trimEnd().split('\n');
      expect(header).toMatch(/^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^${id.slice(0, 12)} +busybox +"sh -c echo hello; w…" +.* ago +Up .+ +h10-web$`));
      expect((await berth(['ps', '--filter', 'label=tier=web', '--format', '{{.Names}} {{.State}}'])).stdout).toBe('h10-web running\n');
      expect((await berth(['ps', '-q'])).stdout).toBe(`${id.slice(0, 12)}\n`);

      await vi.waitFor(async () => expect((await berth(['logs', 'h10-web'])).stdout).toBe('hello\n'), { timeout: 10_000, interval: 200 });

      log('exec');
      const ex = await berth(['exec', 'h10-web', 'sh', '-c', 'echo $((1+2)); exit 4']);
      expect(ex.stdout).toBe('3\n');
      expect(ex.code).toBe(4);
      expect((await berth(['exec', '-e', 'GREETING=hi', '-w', '/tmp', 'h10-web', 'sh', '-c', 'echo $GREETING $(pwd)'])).stdout).toBe('hi /tmp\n');

      log('pause / unpause');
      expect((await berth(['pause', 'h10-web'])).stdout).toBe('h10-web\n');
      expect((await berth(['ps', '--format', '{{.Status}}'])).stdout).toMatch(/^Up .+ \(Paused\)\n$/);
      expect((await berth(['unpause', 'h10-web'])).code).toBe(0);
      expect((await berth(['ps', '--format', '{{.State}}'])).stdout).toBe('running\n');

      log('rm without -f refuses a running container');
      const refused = await berth(['rm', 'h10-web']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/container is running/);

      log('stop -t 1, ps -a, rm');
      expect((await berth(['stop', '-t', '1', 'h10-web'])).code).toBe(0);
      expect((await berth(['ps'])).stdout.trimEnd().split('\n')).toHaveLength(1);
      expect((await berth(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout).toMatch(/^h10-web Exited \(\d+\) .+ ago\n$/);
      expect((await berth(['rm', 'h10-web'])).stdout).toBe('h10-web\n');
      expect((await cp.request('GET', `${CTRS}/h10-web`)).status).toBe(404);

      const gone = await berth(['logs', 'h10-web']);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toBe('Error response from daemon: No such container: h10-web\n');
    });

    it('creates, starts, waits, inspects, renames, restarts and kills (create, start, wait, inspect, rename, restart, kill, tag)', async () => {
      log('create + start + wait');
      const c = await berth(['create', '--name', 'h10-c', 'busybox', 'sh', '-c', 'exit 5']);
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout).toMatch(/^[0-9a-f]{64}\n$/);
      ids.add(c.stdout.trim());
      expect((await berth(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout).toBe('h10-c Created\n');
      expect((await berth(['start', 'h10-c'])).code).toBe(0);
      const w = await berth(['wait', 'h10-c']);
      expect(w.stdout).toBe('5\n');
      expect((await berth(['inspect', '-f', '{{.status.exitCode}} {{.spec.restartPolicy}}', 'h10-c'])).stdout).toBe('5 Never\n');
      const inspected = JSON.parse((await berth(['inspect', 'h10-c'])).stdout);
      expect(inspected).toMatchObject([{ kind: 'Container', metadata: { name: 'h10-c' }, status: { phase: 'Exited', exitCode: 5 } }]);

      log('rename (a replace), restart, kill');
      expect((await berth(['rename', 'h10-c', 'h10-d'])).code).toBe(0);
      expect((await cp.request('GET', `${CTRS}/h10-c`)).status).toBe(404);
      expect((await berth(['run', '-d', '--name', 'h10-k', 'busybox', 'sleep', '3600'])).code).toBe(0);
      const before = (await cp.request('GET', `${CTRS}/h10-k`)).body.status.containerID;
      ids.add(before);
      expect((await berth(['restart', '-t', '0', 'h10-k'])).stdout).toBe('h10-k\n');
      const after = (await cp.request('GET', `${CTRS}/h10-k`)).body.status;
      ids.add(after.containerID);
      expect(after.phase).toBe('Running');
      expect((await berth(['kill', 'h10-k'])).code).toBe(0);
      expect((await berth(['ps', '-a', '--filter', 'name=h10-k', '--format', '{{.State}} {{.Status}}'])).stdout).toMatch(/^exited Exited \(137\) /);
      const sig = await berth(['kill', '-s', 'HUP', 'h10-k']); // an exited container gets no signal (kill -s: test/e2e/cli-kill.test.ts)
      expect(sig.code).toBe(1);
      expect(sig.stderr).toMatch(/h10-k.*is not running/);

      log('tag');
      expect((await berth(['tag', 'busybox', 'h10-bb:2'])).code).toBe(0);
      expect((await berth(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toMatch(/^h10-bb:2$/m);
      expect((await cp.request('GET', `${IMGS}/busybox`)).body.spec.tags).toEqual(['busybox:latest', 'h10-bb:2']);
      expect((await berth(['rmi', 'h10-bb:2'])).stdout).toBe('Untagged: h10-bb:2\n');
      expect((await cp.request('GET', `${IMGS}/busybox`)).body.spec.tags).toEqual(['busybox:latest']);
    }, 120_000);

    it('builds a context honouring .dockerignore, lists the image and runs it (build, images)', async () => {
      const ctx = join(root, 'h10-context');
      await mkdir(join(ctx, 'sub'), { recursive: true });
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /ctx/\nCMD ["sh", "-c", "cd /ctx && find . -type f | sort"]\n');
      await writeFile(join(ctx, 'keep.txt'), 'keep\n');
      await writeFile(join(ctx, 'secret.txt'), 'secret\n');
      await writeFile(join(ctx, 'sub', 'a.log'), 'log\n');
      await writeFile(join(ctx, '.dockerignore'), 'secret.txt\n**/*.log\n');
      log('build -t h10-app:1');
      const b = await berth(['build', '-t', 'h10-app:1', ctx], { timeoutMs: 120_000 });
      expect(b.code, b.stderr).toBe(0);
      expect(b.stdout).toMatch(/Successfully built [0-9a-f]{12}\nSuccessfully tagged h10-app:1\n/);

      const imgs = await berth(['images']);
      expect(imgs.stdout).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n/);
      expect(imgs.stdout).toMatch(/\nh10-app +1 +[0-9a-f]{12} +.+ ago +[\d.]+[kM]?B\n/);
      expect(imgs.stdout).toMatch(/\nbusybox +latest +/);

      const r = await berth(['run', '--rm', '--name', 'h10-app', 'h10-app:1']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('./.dockerignore\n./Dockerfile\n./keep.txt\n');

      expect((await berth(['rmi', 'h10-app:1'])).code).toBe(0);
      expect((await cp.request('GET', `${IMGS}/h10-app-1`)).status).toBe(404);
    }, 180_000);

    it('gives run -it an interactive terminal through a pseudo-terminal (script): typed commands run, exit sets the code', async () => {
      const cmd = [process.execPath, BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, 'run', '-it', '--rm', '--name', 'h10-tty', 'busybox', 'sh'].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qfec', `stty cols 91 rows 27; ${cmd}`, '/dev/null'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      try {
        await vi.waitFor(async () => expect((await cp.request('GET', `${CTRS}/h10-tty`)).body.status?.phase).toBe('Running'), { timeout: 30_000, interval: 100 });
        log('type a command until its output shows');
        await vi.waitFor(() => {
          child.stdin.write('echo hi-$((2+3)); stty size\r');
          expect(text).toMatch(/hi-5\r*\n27 91\r*\n/);
        }, { timeout: 20_000, interval: 1_000 });
        child.stdin.write('exit 7\r');
        expect(await exited).toBe(7);
      } finally {
        child.kill('SIGKILL');
      }
      await vi.waitFor(async () => expect((await cp.request('GET', `${CTRS}/h10-tty`)).status).toBe(404), { timeout: 20_000 });
    }, 90_000);
  });
}

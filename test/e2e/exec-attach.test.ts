/**
 * TTY exec, attach and resize end to end, as `@kubernetes/client-node` does them:
 * client-node `Exec` / `Attach` → berth API server → node agent stream server →
 * conmon + runc, with Containers made through the API from a busybox image.
 *
 * Skipped unless running as root with runc, conmon and kubectl (and perl, which
 * the runtime uses to reach conmon's attach socket).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Attach, Exec, KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type WebSocket from 'ws';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { deleteAllContainers, narrator, realContainersMissing, stopAndSweep } from './helpers.ts';

const CTRS = '/apis/berth.dev/v1/namespaces/default/containers';
const missing = realContainersMissing();

/** A writable that client-node treats as a terminal: it sends its size at once and on every `resize` event. */
class FakeTerminal extends PassThrough {
  text = '';
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
    this.on('data', (d: Buffer) => (this.text += d.toString()));
  }

  resizeTo(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

if (missing) {
  describe('exec and attach end to end (client-node, runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  describe('exec and attach end to end (client-node, runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    let kc: KubeConfig;
    const ids = new Set<string>();
    const log = narrator('h1');

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-h1-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = root;
      try {
        cp = await startControlPlane({ runtime: 'runc', controllers: true, nodeName: 'h1-node' });
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      kc = new KubeConfig();
      kc.loadFromFile(cp.server.kubeconfigPath);
      const img = await cp.request('POST', '/apis/berth.dev/v1/namespaces/default/images', {
        body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.layoutDir } }, tags: ['busybox:latest'] } },
      });
      expect(img.status).toBe(201);
      await vi.waitFor(async () => expect((await cp.request('GET', '/apis/berth.dev/v1/namespaces/default/images/busybox')).body.status?.phase).toBe('Ready'), {
        timeout: 30_000,
        interval: 100,
      });
      log(`berth server with the runc runtime at ${cp.url}, busybox imported`);
    }, 60_000);

    afterEach(async () => {
      await deleteAllContainers(cp, ids);
    });

    afterAll(async () => {
      await stopAndSweep(cp, root, ids);
    });

    /** Creates a Container and waits until it runs. */
    async function running(name: string, spec: Record<string, unknown>): Promise<string> {
      const r = await cp.request('POST', CTRS, {
        body: { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name }, spec: { image: 'busybox', stopGracePeriodSeconds: 1, ...spec } },
      });
      expect(r.status).toBe(201);
      let id = '';
      await vi.waitFor(
        async () => {
          const c = (await cp.request('GET', `${CTRS}/${name}`)).body;
          expect(c.status?.phase).toBe('Running');
          id = c.status.containerID;
        },
        { timeout: 20_000, interval: 100 },
      );
      ids.add(id);
      return id;
    }

    it('runs client-node Exec with a TTY: tty names a pseudo-terminal and stty size follows resizes', async () => {
      await running('h1-tty', { command: ['sleep', '3600'] });
      const term = new FakeTerminal(100, 30);
      const stdin = new PassThrough();
      let status: any;
      const script = 'tty; while read x; do [ "$x" = q ] && exit 0; stty size; done';
      log('exec -t sh: tty, then stty size on every line typed');
      const ws: WebSocket = await new Exec(kc).exec('default', 'h1-tty', 'h1-tty', ['sh', '-c', script], term, null, stdin, true, (s) => (status = s));
      await vi.waitFor(() => expect(term.text).toMatch(/^\/dev\/pts\/\d+\r\n/), { timeout: 10_000 });
      // The size travels through conmon's ctl fifo and the typed line through its socket: type until it shows.
      const sizeShows = (size: string) =>
        vi.waitFor(() => (stdin.write('\n'), expect(term.text).toContain(`${size}\r\n`)), { timeout: 10_000, interval: 200 });
      await sizeShows('30 100');
      log('resize the terminal to 132x43');
      term.resizeTo(132, 43);
      await sizeShows('43 132');
      stdin.write('q\n');
      await vi.waitFor(() => expect(status).toEqual({ metadata: {}, status: 'Success' }), { timeout: 10_000 });
      ws.close();
    });

    it('attaches client-node Attach to a shell started with stdin and a TTY: what is typed runs', async () => {
      await running('h1-shell', { command: ['sh'], stdin: true, tty: true });
      const term = new FakeTerminal(80, 24);
      const stdin = new PassThrough();
      log('attach -it to sh, type echo hi');
      const ws: WebSocket = await new Attach(kc).attach('default', 'h1-shell', 'h1-shell', term, null, stdin, true);
      stdin.write('echo hi\n');
      await vi.waitFor(() => expect(term.text).toMatch(/\r\nhi\r\n/), { timeout: 10_000 });
      ws.close();
      log('detached: the shell keeps running');
      await vi.waitFor(async () => expect((await cp.request('GET', `${CTRS}/h1-shell`)).body.status.phase).toBe('Running'));
    });

    it('attaches client-node Attach without a TTY to a container printing lines', async () => {
      await running('h1-lines', { command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo line $i; echo warn $i >&2; sleep 0.2; done'] });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (d: Buffer) => (out += d.toString()));
      stderr.on('data', (d: Buffer) => (err += d.toString()));
      const ws: WebSocket = await new Attach(kc).attach('default', 'h1-lines', 'h1-lines', stdout, stderr, null, false);
      await vi.waitFor(() => expect(out.match(/^line \d+$/gm)?.length ?? 0).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
      expect(out).toMatch(/^(line \d+\n)+$/);
      expect(err).toMatch(/^(warn \d+\n)+$/);
      const numbers = out.match(/\d+/g)!.map(Number);
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i)); // consecutive: nothing lost while attached
      ws.close();
    });

    it('refuses client-node Exec into a paused container with a clear Status', async () => {
      await running('h1-paused', { command: ['sleep', '3600'] });
      const patched = await cp.request('PATCH', `${CTRS}/h1-paused`, { body: { spec: { state: 'Paused' } }, contentType: 'application/merge-patch+json' });
      expect(patched.status).toBe(200);
      await vi.waitFor(async () => expect((await cp.request('GET', `${CTRS}/h1-paused`)).body.status.phase).toBe('Paused'), { timeout: 10_000, interval: 100 });
      const status = await new Promise<any>((resolve, reject) => {
        new Exec(kc).exec('default', 'h1-paused', 'h1-paused', ['sh'], new PassThrough(), null, null, true, resolve).catch(reject);
      });
      expect(status).toMatchObject({ status: 'Failure', reason: 'Conflict', code: 409, message: 'cannot exec into a paused container' });
    });
  });
}

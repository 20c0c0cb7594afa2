/**
 * Volumes end to end with real containers (runc under conmon), as root: two containers
 * share a named volume (one writes, the other reads) and the data outlives both; a
 * Volume deleted while in use waits for its last user; tmpfs size and mode; an image
 * `VOLUME` seeded into an anonymous volume that goes with its container; a bind mount
 * outside the server's allow-list refused with 422. Everything is removed afterwards.
 *
 * Skipped unless running as root with runc, conmon and kubectl.
 */
import { readFile, stat } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ContainerId } from '../../runtime/cri/index.ts';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { narrator, realContainersMissing, sweepDataDir } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const CTRS = `${NS}/containers`;
const VOLS = `${NS}/volumes`;
const LOOP = ['sh', '-c', 'while true; do sleep 1; done'];
const WAIT = { timeout: 20_000, interval: 100 };

const missing = realContainersMissing();

function container(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name, namespace: 'default' }, spec: { image: 'busybox', command: LOOP, stopGracePeriodSeconds: 1, ...spec } };
}

if (missing) {
  describe('volumes end to end (runc, conmon)', () => {
    it.skip(`SKIPPED: needs root with runc, conmon and kubectl installed (${missing})`, () => {});
  });
} else {
  describe('volumes end to end (runc, conmon)', () => {
    let root: string;
    let cp: ControlPlane;
    const ids = new Set<string>();
    const log = narrator('e2e-volumes');

    const create = async (path: string, obj: unknown) => {
      const r = await cp.request('POST', path, { body: obj });
      expect(r.status, r.text).toBe(201);
      return r.body;
    };
    const get = async (path: string) => (await cp.request('GET', path)).body;
    const running = async (name: string): Promise<ContainerId> => {
      let id = '';
      await vi.waitFor(async () => {
        const c = await get(`${CTRS}/${name}`);
        expect(c.status?.phase, JSON.stringify(c.status)).toBe('Running');
        id = c.status.containerID;
      }, WAIT);
      ids.add(id);
      return id as ContainerId;
    };
    const sh = async (id: ContainerId, script: string) => {
      const r = await cp.server.runtime!.execSync(id, ['sh', '-c', script], 10);
      return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
    };
    const gone = async (path: string) => vi.waitFor(async () => expect((await cp.request('GET', path)).status).toBe(404), WAIT);

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-h7-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      const withVolume = await buildBusyboxImage(join(root, 'fixture-vol'), { tag: 'vol', config: { Volumes: { '/bin': {} } } });
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = root;
      try {
        cp = await startControlPlane({ runtime: 'runc', controllers: true, nodeName: 'h7' });
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      for (const [name, path, tag] of [['busybox', fixture.ociArchive, 'busybox:latest'], ['busybox-vol', withVolume.ociArchive, 'busybox:vol']] as const) {
        await create(`${NS}/images`, { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name, namespace: 'default' }, spec: { source: { import: { path } }, tags: [tag] } });
      }
      await vi.waitFor(async () => {
        for (const n of ['busybox', 'busybox-vol']) expect((await get(`${NS}/images/${n}`)).status?.phase).toBe('Ready');
      }, WAIT);
      log(`berth server (runc) at ${cp.url}, data dir ${cp.dataDir}`);
    }, 60_000);

    afterEach(async () => {
      if (!cp) return;
      for (const c of (await get(CTRS)).items ?? []) {
        if (c.status?.containerID) ids.add(c.status.containerID);
        await cp.request('DELETE', `${CTRS}/${c.metadata.name}`);
      }
      await vi.waitFor(async () => expect((await get(CTRS)).items).toEqual([]), WAIT);
      for (const v of (await get(VOLS)).items ?? []) await cp.request('DELETE', `${VOLS}/${v.metadata.name}`);
      await vi.waitFor(async () => expect((await get(VOLS)).items).toEqual([]), WAIT);
    }, 60_000);

    afterAll(async () => {
      if (cp) await cp.server.close();
      if (root) await sweepDataDir(root, ids);
    }, 60_000);

    it('shares a volume between two containers, and keeps the data after both are deleted', async () => {
      log('create volume "shared" and two containers mounting it');
      await create(VOLS, { apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name: 'shared' }, spec: { driver: 'local' } });
      await create(CTRS, container('writer', { volumeMounts: [{ name: 'shared', mountPath: '/data' }] }));
      await create(CTRS, container('reader', { volumeMounts: [{ name: 'shared', mountPath: '/in', readOnly: true }] }));
      const writer = await running('writer');
      const reader = await running('reader');

      log('the writer writes, the reader reads it at once; the reader cannot write');
      expect(await sh(writer, 'echo hello from writer > /data/note.txt')).toMatchObject({ code: 0 });
      expect(await sh(reader, 'cat /in/note.txt')).toMatchObject({ code: 0, out: 'hello from writer' });
      expect((await sh(reader, 'echo x > /in/other')).err).toContain('Read-only file system');

      const vol = await get(`${VOLS}/shared`);
      expect(vol.status).toMatchObject({ phase: 'InUse', nodeName: 'h7', usedBy: ['reader', 'writer'] });
      const mountpoint: string = vol.status.mountpoint;
      expect(mountpoint).toBe(join(cp.dataDir, 'volumes', 'default', 'shared', '_data'));

      log('delete both containers: the data stays, the volume is Available');
      await cp.request('DELETE', `${CTRS}/writer`);
      await cp.request('DELETE', `${CTRS}/reader`);
      await gone(`${CTRS}/writer`);
      await gone(`${CTRS}/reader`);
      await vi.waitFor(async () => expect((await get(`${VOLS}/shared`)).status?.phase).toBe('Available'), WAIT);
      expect(await readFile(join(mountpoint, 'note.txt'), 'utf8')).toBe('hello from writer\n');

      log('a new container sees the old data');
      await create(CTRS, container('later', { volumeMounts: [{ name: 'shared', mountPath: '/d' }] }));
      expect(await sh(await running('later'), 'cat /d/note.txt')).toMatchObject({ out: 'hello from writer' });
    }, 60_000);

    it('creates an undeclared volume on first use, and deleting it waits for its last user', async () => {
      await create(CTRS, container('user', { volumeMounts: [{ name: 'auto', mountPath: '/a', subPath: 'sub/dir' }] }));
      const id = await running('user');
      expect(await sh(id, 'echo kept > /a/f && cat /a/f')).toMatchObject({ out: 'kept' });
      const vol = await get(`${VOLS}/auto`);
      expect(vol.metadata.labels).toEqual({ 'berth.dev/auto-created': 'true' });
      const dir = join(vol.status.mountpoint, '..');

      log('delete the Volume while "user" mounts it: it waits with Ready=False, reason InUse');
      await cp.request('DELETE', `${VOLS}/auto`);
      await vi.waitFor(async () => {
        const v = await get(`${VOLS}/auto`);
        expect(v.metadata.deletionTimestamp).toBeTruthy();
        expect(v.status.conditions.find((c: { type: string }) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'InUse' });
      }, WAIT);
      expect(await readFile(join(dir, '_data', 'sub', 'dir', 'f'), 'utf8')).toBe('kept\n');
      expect((await sh(id, 'cat /a/f')).out).toBe('kept');

      log('delete the container: the Volume and its directory go');
      await cp.request('DELETE', `${CTRS}/user`);
      await gone(`${VOLS}/auto`);
      await expect(stat(dir)).rejects.toThrow();
    }, 60_000);

    it('fills an empty volume with what the image has at its path (Docker copy-up), but not one with data in it, nor with noCopy', async () => {
      log('an empty volume at /etc gets the image\'s /etc: files, owner and mode');
      await create(CTRS, container('fill', { volumeMounts: [{ name: 'etcv', mountPath: '/etc' }] }));
      const fill = await running('fill');
      expect(await sh(fill, 'grep -c "^root:" /etc/passwd; stat -c "%a %u" /etc')).toMatchObject({ code: 0, out: '1\n755 0' });
      const mountpoint: string = (await get(`${VOLS}/etcv`)).status.mountpoint;
      expect((await readFile(join(mountpoint, 'group'), 'utf8'))).toMatch(/^root:/m);
      await sh(fill, 'rm /etc/passwd && echo mine > /etc/marker');
      await cp.request('DELETE', `${CTRS}/fill`);
      await gone(`${CTRS}/fill`);

      log('mounted again: not empty, so nothing is copied over what is there');
      await create(CTRS, container('again', { volumeMounts: [{ name: 'etcv', mountPath: '/etc' }] }));
      expect(await sh(await running('again'), 'cat /etc/marker; test -e /etc/passwd || echo no-passwd')).toMatchObject({ out: 'mine\nno-passwd' });

      log('noCopy: the empty volume stays without the image\'s files');
      await create(CTRS, container('nocopy', { volumeMounts: [{ name: 'ncv', mountPath: '/etc', noCopy: true }] }));
      const nocopy = await running('nocopy');
      expect(await sh(nocopy, 'test -e /etc/passwd || echo no-passwd')).toMatchObject({ out: 'no-passwd' });
      await expect(stat(join((await get(`${VOLS}/ncv`)).status.mountpoint, 'passwd'))).rejects.toThrow();
    }, 90_000);

    it('mounts a tmpfs with its size limit and mode', async () => {
      await create(CTRS, container('tmp', { tmpfs: [{ mountPath: '/scratch', sizeBytes: 1_048_576, mode: 0o700 }] }));
      const id = await running('tmp');
      expect((await sh(id, 'stat -c %a /scratch')).out).toBe('700');
      expect((await sh(id, 'grep " /scratch " /proc/mounts')).out).toMatch(/tmpfs \/scratch tmpfs .*size=1024k/);
      const full = await sh(id, 'dd if=/dev/zero of=/scratch/big bs=1024 count=2048');
      expect(full.code).not.toBe(0);
      expect(full.err).toContain('No space left on device');
    }, 60_000);

    it("gives an image's VOLUME an anonymous volume seeded from the image, removed with the container", async () => {
      await create(CTRS, container('anon', { image: 'busybox:vol' }));
      const id = await running('anon');
      const hostDir = join(cp.dataDir, 'runtime', 'containers', id, 'volumes', '0');
      expect((await stat(join(hostDir, 'busybox'))).isFile()).toBe(true);
      expect((await sh(id, 'grep " /bin " /proc/mounts && echo ok > /bin/written')).code).toBe(0);
      expect(await readFile(join(hostDir, 'written'), 'utf8')).toBe('ok\n');
      await cp.request('DELETE', `${CTRS}/anon`);
      await gone(`${CTRS}/anon`);
      await expect(stat(hostDir)).rejects.toThrow();
    }, 60_000);

    it('refuses a bind mount of a host path the server does not allow, with 422 naming the field and path', async () => {
      const r = await cp.request('POST', CTRS, { body: container('escape', { bindMounts: [{ hostPath: '/etc', mountPath: '/host-etc' }] }) });
      expect(r.status).toBe(422);
      expect(r.body.reason).toBe('Invalid');
      expect(r.body.details.causes).toEqual([expect.objectContaining({ reason: 'FieldValueForbidden', field: 'spec.bindMounts[0].hostPath', message: expect.stringContaining('"/etc"') })]);
      expect((await cp.request('GET', `${CTRS}/escape`)).status).toBe(404);
    });
  });
}

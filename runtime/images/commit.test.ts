import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import type { Digest } from './digest.ts';
import { applyConfigChanges, type CommitChanges } from './commit.ts';
import { ImageStore } from './image-store.ts';
import { MEDIA_TYPE, parseManifest } from './oci.ts';

let fixtureDir: string;
let fx: BusyboxImage;
beforeAll(async () => {
  fixtureDir = mkdtempSync('/tmp/berth-images-test-commit-fixture-');
  fx = await buildBusyboxImage(fixtureDir, { config: { Labels: { base: 'yes' }, ExposedPorts: { '80/tcp': {} } } });
});
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync('/tmp/berth-images-test-commit-');
  dirs.push(d);
  return d;
}

const isRoot = process.getuid?.() === 0;

describe('applyConfigChanges', () => {
  const base = {
    Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Entrypoint: null, Labels: { a: '1' }, ExposedPorts: { '80/tcp': {} },
    Volumes: null, WorkingDir: '/', User: '', StopSignal: 'SIGTERM',
  };
  const cases: { name: string; changes: CommitChanges; want: Record<string, unknown> }[] = [
    { name: 'keeps everything without changes', changes: {}, want: base },
    { name: 'overrides and adds environment variables in place', changes: { env: [{ name: 'A', value: '2' }, { name: 'B', value: 'x=y' }] },
      want: { ...base, Env: ['PATH=/bin', 'A=2', 'B=x=y'] } },
    { name: 'replaces cmd and entrypoint, an empty list clearing', changes: { cmd: [], entrypoint: ['/bin/app', '-v'] },
      want: { ...base, Cmd: null, Entrypoint: ['/bin/app', '-v'] } },
    { name: 'merges labels', changes: { labels: { b: '2', a: 'x' } }, want: { ...base, Labels: { a: 'x', b: '2' } } },
    { name: 'adds exposed ports with tcp as the default protocol', changes: { exposedPorts: ['8080', '53/udp'] },
      want: { ...base, ExposedPorts: { '80/tcp': {}, '8080/tcp': {}, '53/udp': {} } } },
    { name: 'adds volumes', changes: { volumes: ['/data'] }, want: { ...base, Volumes: { '/data': {} } } },
    { name: 'sets working directory, user and stop signal', changes: { workingDir: '/srv', user: '1000:1000', stopSignal: 'SIGINT' },
      want: { ...base, WorkingDir: '/srv', User: '1000:1000', StopSignal: 'SIGINT' } },
  ];
  it.each(cases)('$name', ({ changes, want }) => {
    expect(applyConfigChanges(base, changes)).toEqual(want);
  });

  it.each([
    { name: 'a port that is not a number', changes: { exposedPorts: ['http'] } },
    { name: 'a relative volume', changes: { volumes: ['data'] } },
    { name: 'a relative working directory', changes: { workingDir: 'srv' } },
    { name: 'an environment name with =', changes: { env: [{ name: 'A=B', value: '' }] } },
  ])('rejects $name', ({ changes }) => {
    let err: unknown;
    try {
      applyConfigChanges(base, changes);
    } catch (e) {
      err = e;
    }
    expect(isRuntimeError(err, 'InvalidArgument'), String(err)).toBe(true);
  });
});

describe.skipIf(!isRoot)('ImageStore.commit (root: whiteouts)', () => {
  /** An upper directory: a new file, a changed passwd, /etc/group deleted, /root replaced by an opaque directory. */
  function upperDir(): string {
    const up = join(tmp(), 'upper');
    mkdirSync(join(up, 'etc'), { recursive: true });
    mkdirSync(join(up, 'srv'), { recursive: true });
    mkdirSync(join(up, 'root'), { recursive: true });
    writeFileSync(join(up, 'srv/hello.txt'), 'hello from the container\n');
    writeFileSync(join(up, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(up, 'etc/hosts'), '');
    writeFileSync(join(up, 'root/only'), 'only\n');
    execFileSync('mknod', [join(up, 'etc/group'), 'c', '0', '0']);
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(up, 'root')]);
    return up;
  }

  async function withBase(): Promise<ImageStore> {
    const store = new ImageStore({ root: join(tmp(), 'store') });
    await store.importImage(fx.ociArchive, { tags: ['busybox:latest'] });
    return store;
  }

  it('adds the upper directory as a top layer with whiteouts, a history entry and the changes', async () => {
    const store = await withBase();
    const createdAt = new Date('2026-01-02T03:04:05Z');
    const result = await store.commit({
      baseImage: 'busybox', upperDir: upperDir(), tags: ['team/app:1'], author: 'dev <dev@example.com>', comment: 'add hello',
      createdBy: 'sh -c echo', createdAt, exclude: ['etc/hosts'],
      changes: { cmd: ['cat', '/srv/hello.txt'], env: [{ name: 'GREETING', value: 'hi' }], labels: { app: 'x' }, exposedPorts: ['8080'] },
    });
    const content = await store.content();
    const manifest = parseManifest(await content.readBlob(result.manifestDigest), 'manifest');
    const config = JSON.parse((await content.readBlob(result.id as string as Digest)).toString()) as Record<string, any>;
    expect(manifest.mediaType).toBe(MEDIA_TYPE.ociManifest);
    expect(manifest.layers.map((l) => l.digest)).toEqual([fx.layerDigest, result.layer.digest]);
    expect(config.rootfs.diff_ids).toEqual([fx.diffId, result.layer.diffId]);
    expect(config.created).toBe(createdAt.toISOString());
    expect(config.author).toBe('dev <dev@example.com>');
    expect(config.history.at(-1)).toEqual({ created: createdAt.toISOString(), author: 'dev <dev@example.com>', created_by: 'sh -c echo', comment: 'add hello' });
    expect(config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer)).toHaveLength(2);
    expect(config.config).toMatchObject({
      Cmd: ['cat', '/srv/hello.txt'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hi'],
      Labels: { base: 'yes', app: 'x' }, ExposedPorts: { '80/tcp': {}, '8080/tcp': {} },
    });

    const image = await store.imageStatus('team/app:1');
    expect(image?.id).toBe(result.id);
    expect(image?.repoTags).toEqual(['docker.io/team/app:1']);
    const { layerDirs } = await store.resolveForRun('team/app:1');
    const top = layerDirs.at(-1)!;
    expect(readFileSync(join(top, 'srv/hello.txt'), 'utf8')).toBe('hello from the container\n');
    expect(lstatSync(join(top, 'etc/group')).isCharacterDevice()).toBe(true);
    expect(readdirSync(join(top, 'etc')).sort()).toEqual(['group', 'passwd']);
    expect(execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(top, 'root')], { encoding: 'utf8' })).toBe('y');
  });

  it('gives the same image for the same directory and time, and keeps the base untouched', async () => {
    const store = await withBase();
    const up = upperDir();
    const createdAt = new Date('2026-01-02T03:04:05Z');
    const a = await store.commit({ baseImage: 'busybox', upperDir: up, createdAt, tags: ['a'] });
    const b = await store.commit({ baseImage: 'busybox', upperDir: up, createdAt, tags: ['b'] });
    expect(b.id).toBe(a.id);
    expect(b.manifestDigest).toBe(a.manifestDigest);
    expect((await store.imageStatus('busybox'))?.id).toBe(fx.configDigest);
  });

  it('rejects a missing base image or upper directory and stores nothing', async () => {
    const store = await withBase();
    const before = readdirSync(join(store.root, 'blobs/sha256')).sort();
    const noBase = await store.commit({ baseImage: 'nope:1', upperDir: upperDir() }).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(noBase, 'NotFound'), String(noBase)).toBe(true);
    const noDir = await store.commit({ baseImage: 'busybox', upperDir: join(tmp(), 'missing') }).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(noDir, 'NotFound'), String(noDir)).toBe(true);
    const badTag = await store.commit({ baseImage: 'busybox', upperDir: upperDir(), tags: ['UPPER:case'] }).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(badTag, 'InvalidArgument'), String(badTag)).toBe(true);
    expect(readdirSync(join(store.root, 'blobs/sha256')).sort()).toEqual(before);
    expect((await store.listImages()).map((i) => i.id)).toEqual([fx.configDigest]);
  });
});

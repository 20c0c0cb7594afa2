import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, lutimesSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import { ContentStore } from './content-store.ts';
import { sha256Of } from './digest.ts';
import { writeLayerFromDir, type WrittenLayer } from './layer-diff.ts';
import { MEDIA_TYPE } from './oci.ts';
import type { TarHeader } from './tar/header.ts';
import { readTar } from './tar/reader.ts';
import { unpackLayer } from './unpack.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync('/tmp/berth-images-test-layer-diff-');
  dirs.push(d);
  return d;
}

const isRoot = process.getuid?.() === 0;
const T0 = 1_600_000_000;

const sh = (script: string, ...args: string[]): void => {
  execFileSync('sh', ['-c', script, 'sh', ...args]);
};

/**
 * An upper directory as a container leaves it: new and changed files with odd
 * modes and owners, a symlink pointing out of the tree, hard links, a fifo, a
 * whiteout (char 0/0), an opaque directory, user xattrs and overlayfs' own xattrs.
 */
function makeUpper(root: string): string {
  const up = join(root, 'upper');
  mkdirSync(join(up, 'etc'), { recursive: true });
  mkdirSync(join(up, 'usr/share'), { recursive: true });
  mkdirSync(join(up, 'tmp'));
  chmodSync(join(up, 'tmp'), 0o1777);
  writeFileSync(join(up, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(up, 'usr/share/new.txt'), 'brand new\n');
  writeFileSync(join(up, 'usr/share/big.bin'), Buffer.alloc(700_000, 7));
  writeFileSync(join(up, 'suid'), '#!/bin/sh\n');
  chownSync(join(up, 'suid'), 1000, 1001);
  chmodSync(join(up, 'suid'), 0o4755);
  linkSync(join(up, 'usr/share/new.txt'), join(up, 'etc/hard'));
  symlinkSync('/etc/shadow', join(up, 'escape'));
  symlinkSync('../../../../../../etc', join(up, 'usr/up'));
  sh('mkfifo "$1"', join(up, 'tmp/fifo'));
  sh('mknod "$1" c 0 0', join(up, 'etc/deleted.conf'));
  sh('mknod "$1" c 0 0', join(up, 'gone-dir'));
  mkdirSync(join(up, 'var/lib/replaced'), { recursive: true });
  writeFileSync(join(up, 'var/lib/replaced/only.txt'), 'only me\n');
  sh('setfattr -n trusted.overlay.opaque -v y "$1"', join(up, 'var/lib/replaced'));
  sh('setfattr -n trusted.overlay.origin -v 0x00fb "$1"', join(up, 'etc'));
  sh('setfattr -n trusted.overlay.impure -v y "$1"', join(up, 'usr'));
  sh('setfattr -n user.comment -v 0x00ff10 "$1"', join(up, 'usr/share/new.txt'));
  for (const rel of ['tmp/fifo', 'etc/deleted.conf', 'gone-dir', 'escape', 'usr/up']) lutimesSync(join(up, rel), T0, T0);
  for (const rel of ['etc/passwd', 'usr/share/new.txt', 'usr/share/big.bin', 'suid', 'var/lib/replaced/only.txt',
    'var/lib/replaced', 'var/lib', 'var', 'usr/share', 'usr', 'etc', 'tmp']) utimesSync(join(up, rel), T0 + 1, T0 + 1);
  return up;
}

interface Node {
  readonly type: string;
  readonly mode: string;
  readonly owner: string;
  readonly mtime: number;
  readonly content?: string;
  readonly xattrs: Record<string, string>;
}

const kindOf = (st: Stats): string =>
  st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? `char ${st.rdev}` : 'other';

/** Every path under `root` with what a layer preserves, without overlayfs' bookkeeping xattrs. */
function snapshot(root: string): Record<string, Node> {
  const out: Record<string, Node> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, p);
      const st = lstatSync(abs);
      const dump = execFileSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', abs], { encoding: 'utf8' });
      const xattrs = Object.fromEntries(dump.split('\n').filter((l) => l.includes('=') && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
        .filter(([k]) => k !== 'trusted.overlay.origin' && k !== 'trusted.overlay.impure'));
      let content: string | undefined;
      if (st.isFile()) {
        const first = st.nlink > 1 ? inodes.get(st.ino) : undefined;
        if (st.nlink > 1 && first === undefined) inodes.set(st.ino, p);
        content = first !== undefined ? `link to ${first}` : createHash('sha256').update(readFileSync(abs)).digest('hex');
      } else if (st.isSymbolicLink()) content = readlinkSync(abs);
      // A whiteout's own metadata means nothing: unpackLayer makes every one mode 000, owned by root, now.
      const whiteout = st.isCharacterDevice() && st.rdev === 0;
      out[p] = {
        type: kindOf(st),
        mode: whiteout ? '-' : (st.mode & 0o7777).toString(8),
        owner: `${st.uid}:${st.gid}`,
        mtime: whiteout ? 0 : Math.floor(st.mtimeMs / 1000),
        xattrs,
        ...(content !== undefined && { content }),
      };
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

async function entriesOf(store: ContentStore, layer: WrittenLayer): Promise<TarHeader[]> {
  const gz = await store.readBlob(layer.digest);
  const out: TarHeader[] = [];
  for await (const e of readTar(Readable.from([gunzipSync(gz)]))) out.push(e.header);
  return out;
}

async function write(root: string, dir: string, extra: Partial<Parameters<typeof writeLayerFromDir>[0]> = {}): Promise<{ store: ContentStore; layer: WrittenLayer }> {
  const store = await ContentStore.open({ root: join(root, 'store') });
  const lease = store.lease();
  const layer = await writeLayerFromDir({ store, dir, lease, ...extra });
  return { store, layer };
}

describe.skipIf(!isRoot)('writeLayerFromDir (root: mknod and trusted xattrs)', () => {
  it('stores a gzip blob whose digests are the blob and its uncompressed tar', async () => {
    const root = tmp();
    const { store, layer } = await write(root, makeUpper(root));
    const blob = await store.readBlob(layer.digest);
    expect(layer.mediaType).toBe(MEDIA_TYPE.ociLayerGzip);
    expect(sha256Of(blob)).toBe(layer.digest);
    expect(blob.length).toBe(layer.size);
    expect(sha256Of(gunzipSync(blob))).toBe(layer.diffId);
  });

  it('writes sorted entries with OCI whiteouts, an opaque marker after its directory, hard links and no overlay xattrs', async () => {
    const root = tmp();
    const { store, layer } = await write(root, makeUpper(root));
    const entries = await entriesOf(store, layer);
    expect(entries.map((e) => `${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`)).toEqual([
      'symlink escape -> /etc/shadow',
      'directory etc',
      'file etc/.wh.deleted.conf',
      'file etc/hard',
      'file etc/passwd',
      'file .wh.gone-dir',
      'file suid',
      'directory tmp',
      'fifo tmp/fifo',
      'directory usr',
      'directory usr/share',
      'file usr/share/big.bin',
      'hardlink usr/share/new.txt -> etc/hard',
      'symlink usr/up -> ../../../../../../etc',
      'directory var',
      'directory var/lib',
      'directory var/lib/replaced',
      'file var/lib/replaced/.wh..wh..opq',
      'file var/lib/replaced/only.txt',
    ]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get('suid')).toMatchObject({ mode: 0o4755, uid: 1000, gid: 1001, mtimeSeconds: T0 + 1, uname: '', gname: '' });
    expect(byName.get('tmp')).toMatchObject({ mode: 0o1777 });
    expect(byName.get('etc/.wh.deleted.conf')).toMatchObject({ mode: 0o600, size: 0, mtimeSeconds: T0 });
    expect(Object.keys(byName.get('etc')!.xattrs)).toEqual([]);
    expect(byName.get('etc/hard')!.xattrs).toEqual({ 'user.comment': Buffer.from([0x00, 0xff, 0x10]) });
    // GNU tar reads it too.
    const listed = execFileSync('tar', ['-tzf', store.blobPath(layer.digest)], { encoding: 'utf8' }).trim().split('\n');
    expect(listed).toEqual(entries.map((e) => (e.type === 'directory' ? `${e.name}/` : e.name)));
  });

  it('round-trips through unpackLayer to the same tree, whiteouts and opaque directories included', async () => {
    const root = tmp();
    const upper = makeUpper(root);
    const { store, layer } = await write(root, upper);
    const unpacked = await unpackLayer({ layersDir: join(root, 'layers'), diffId: layer.diffId, open: () => store.openBlob(layer.digest) });
    const want = snapshot(upper);
    delete (want as Record<string, Node>)['tmp/fifo']; // unpackLayer never creates fifos or devices other than whiteouts
    expect(unpacked.skipped).toEqual(['tmp/fifo']);
    expect(snapshot(unpacked.dir)).toEqual(want);
    expect(want['etc/deleted.conf']!.type).toBe('char 0');
    expect(want['var/lib/replaced']!.xattrs).toEqual({ 'trusted.overlay.opaque': '0x79' });
  });

  it('gives the same digests for the same tree, and for a copy of it', async () => {
    const root = tmp();
    const upper = makeUpper(root);
    const a = await write(root, upper);
    const b = await write(root, upper);
    const copy = join(root, 'copy');
    execFileSync('cp', ['-a', upper, copy]);
    const c = await write(root, copy);
    expect(b.layer.digest).toBe(a.layer.digest);
    expect(c.layer.digest).toBe(a.layer.digest);
    expect(c.layer.diffId).toBe(a.layer.diffId);
  });

  it('clamps mtimes to clampMtimeSec so touching files keeps the digest', async () => {
    const root = tmp();
    const upper = makeUpper(root);
    const before = (await write(root, upper, { clampMtimeSec: T0 - 100 })).layer;
    const unclamped = (await write(root, upper)).layer;
    utimesSync(join(upper, 'etc/passwd'), T0 + 500, T0 + 500);
    const touched = (await write(root, upper)).layer;
    const after = (await write(root, upper, { clampMtimeSec: T0 - 100 })).layer;
    expect(touched.digest).not.toBe(unclamped.digest);
    expect(after.digest).toBe(before.digest);
    const { store } = await write(root, upper);
    expect((await entriesOf(store, after)).every((e) => e.mtimeSeconds === T0 - 100)).toBe(true);
  });

  it('stores a symlink that points outside as a symlink and never reads through it', async () => {
    const root = tmp();
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'host secret\n');
    const upper = join(root, 'upper');
    mkdirSync(upper);
    symlinkSync(outside, join(upper, 'dir-link'));
    symlinkSync(join(outside, 'secret'), join(upper, 'file-link'));
    const { store, layer } = await write(root, upper);
    const entries = await entriesOf(store, layer);
    expect(entries.map((e) => [e.name, e.type, e.linkname, e.size])).toEqual([
      ['dir-link', 'symlink', outside, 0],
      ['file-link', 'symlink', join(outside, 'secret'), 0],
    ]);
    expect(gunzipSync(await store.readBlob(layer.digest)).includes('host secret')).toBe(false);
  });

  it('leaves out excluded mount points with what is under them, and sockets', async () => {
    const root = tmp();
    const upper = join(root, 'upper');
    mkdirSync(join(upper, 'etc'), { recursive: true });
    mkdirSync(join(upper, 'proc/sub'), { recursive: true });
    writeFileSync(join(upper, 'etc/hosts'), '');
    writeFileSync(join(upper, 'etc/kept'), 'x');
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(upper, 'sock')]);
    const { store, layer } = await write(root, upper, { exclude: ['/etc/hosts', 'proc'] });
    expect((await entriesOf(store, layer)).map((e) => e.name)).toEqual(['etc', 'etc/kept']);
    expect(layer.skipped).toEqual(['sock']);
  });

  it('refuses upper directories that use overlayfs redirects or metacopy', async () => {
    const root = tmp();
    const upper = join(root, 'upper');
    mkdirSync(join(upper, 'moved'), { recursive: true });
    sh('setfattr -n trusted.overlay.redirect -v /orig "$1"', join(upper, 'moved'));
    const err = await write(root, upper).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(err, 'FailedPrecondition'), String(err)).toBe(true);
    expect(String(err)).toContain('"moved" is a renamed directory');
  });

  it('rejects a missing directory with NotFound', async () => {
    const root = tmp();
    const err = await write(root, join(root, 'nope')).then(() => undefined, (e: unknown) => e);
    expect(isRuntimeError(err, 'NotFound'), String(err)).toBe(true);
  });
});

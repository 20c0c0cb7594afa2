import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import { sha256Of, type Digest } from './digest.ts';
import type { TarWriteHeader } from './tar/header.ts';
import { tarToBuffer, type TarWriteEntry } from './tar/writer.ts';
import { unpackLayer, type UnpackLayerResult } from './unpack.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync('/tmp/berth-images-test-unpack-');
  dirs.push(d);
  return d;
}

type Spec = Omit<TarWriteHeader, 'size'> & { readonly body?: string };
const tarOf = (specs: readonly Spec[]): Promise<Buffer> =>
  tarToBuffer(specs.map(({ body, ...h }): TarWriteEntry => ({
    header: { mode: h.type === 'directory' ? 0o755 : 0o644, ...h, size: body === undefined ? 0 : Buffer.byteLength(body) },
    ...(body !== undefined && { body: Buffer.from(body) }),
  })));

/** Unpacks `blob` whose uncompressed form is `tar` into `<root>/layers`. */
function unpack(root: string, tar: Buffer, blob: Buffer = tar, diffId: Digest = sha256Of(tar)): Promise<UnpackLayerResult> {
  return unpackLayer({ layersDir: join(root, 'layers'), diffId, open: () => [blob] });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isRuntimeError(err, 'InvalidArgument'), String(err)).toBe(true);
  return err as Error;
}

const statType = (p: string): string => execFileSync('stat', ['-c', '%F %t %T', p], { encoding: 'utf8' }).trim();

describe('unpackLayer: hostile archives', () => {
  const cases: { name: string; entries: (outside: string) => Spec[]; entry: string; why: string }[] = [
    {
      name: 'a .. path that climbs out',
      entries: () => [{ name: '../../etc/x', type: 'file', body: 'pwned' }],
      entry: '../../etc/x', why: 'path escapes the layer',
    },
    {
      name: 'a .. path that climbs out after a directory',
      entries: () => [{ name: 'a/../../x', type: 'file', body: 'pwned' }],
      entry: 'a/../../x', why: 'path escapes the layer',
    },
    {
      name: 'an absolute path',
      entries: (outside) => [{ name: `${outside}/abs`, type: 'file', body: 'pwned' }],
      entry: '<outside>/abs', why: 'path is absolute',
    },
    {
      name: 'a file written through a symlink that points out',
      entries: (outside) => [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/x', type: 'file', body: 'pwned' },
      ],
      entry: 'link/x', why: 'path goes through symlink "link"',
    },
    {
      name: 'a file written through a relative symlink that points out',
      entries: () => [
        { name: 'd', type: 'directory' },
        { name: 'd/up', type: 'symlink', linkname: '../../../../../../../../../..' },
        { name: 'd/up/tmp/x', type: 'file', body: 'pwned' },
      ],
      entry: 'd/up/tmp/x', why: 'path goes through symlink "d/up"',
    },
    {
      name: 'a directory created through a symlink',
      entries: (outside) => [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/newdir', type: 'directory' },
      ],
      entry: 'link/newdir', why: 'path goes through symlink "link"',
    },
    {
      name: 'a whiteout placed through a symlink',
      entries: (outside) => [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/.wh.victim', type: 'file' },
      ],
      entry: 'link/.wh.victim', why: 'path goes through symlink "link"',
    },
    {
      name: 'a hard link to a file outside the layer',
      entries: (outside) => [{ name: 'h', type: 'hardlink', linkname: `${outside}/victim` }],
      entry: 'h', why: 'hard link target is absolute',
    },
    {
      name: 'a hard link that climbs out with ..',
      entries: () => [{ name: 'h', type: 'hardlink', linkname: '../../../../etc/passwd' }],
      entry: 'h', why: 'hard link target escapes the layer',
    },
    {
      name: 'a hard link through a symlink that points out',
      entries: (outside) => [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'h', type: 'hardlink', linkname: 'link/victim' },
      ],
      entry: 'h', why: 'hard link target goes through symlink "link"',
    },
    {
      name: 'a hard link to a missing file',
      entries: () => [{ name: 'h', type: 'hardlink', linkname: 'nothing' }],
      entry: 'h', why: 'hard link target "nothing" does not exist in the layer',
    },
    {
      name: 'a file whose parent is a regular file',
      entries: () => [{ name: 'f', type: 'file', body: 'x' }, { name: 'f/g', type: 'file', body: 'y' }],
      entry: 'f/g', why: 'path parent "f" is not a directory',
    },
  ];

  it.each(cases)('rejects $name, naming the entry', async ({ entries, entry, why }) => {
    const root = tmp();
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'original');
    const tar = await tarOf(entries(outside));
    const err = await rejection(unpack(root, tar));
    expect(err.message).toBe(`layer ${sha256Of(tar)}: entry ${JSON.stringify(entry.replace('<outside>', outside))}: ${why}`);
    expect(readdirSync(outside)).toEqual(['victim']);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('original');
    expect(readdirSync(join(root, 'layers'))).toEqual([]);
  });

  it('replaces a symlink by a file instead of writing through it', async () => {
    const root = tmp();
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'original');
    const tar = await tarOf([
      { name: 'f', type: 'symlink', linkname: join(outside, 'victim') },
      { name: 'f', type: 'file', body: 'new' },
    ]);
    const { dir } = await unpack(root, tar);
    expect(lstatSync(join(dir, 'f')).isFile()).toBe(true);
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('new');
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('original');
  });

  it('skips device nodes and fifos and reports them', async () => {
    const root = tmp();
    const tar = await tarOf([
      { name: 'dev', type: 'directory' },
      { name: 'dev/sda', type: 'blockdev', devmajor: 8, devminor: 0 },
      { name: 'dev/mem', type: 'chardev', devmajor: 1, devminor: 1 },
      { name: 'dev/null0', type: 'chardev', devmajor: 0, devminor: 0 },
      { name: 'fifo', type: 'fifo' },
    ]);
    const r = await unpack(root, tar);
    expect(r.skipped).toEqual(['dev/sda', 'dev/mem', 'dev/null0', 'fifo']);
    expect(readdirSync(join(r.dir, 'dev'))).toEqual([]);
    expect(existsSync(join(r.dir, 'fifo'))).toBe(false);
  });

  it('ignores trusted.* extended attributes, which could forge overlay metadata', async () => {
    const root = tmp();
    const src = join(root, 'src');
    mkdirSync(src);
    mkdirSync(join(src, 'd'));
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(src, 'd')]);
    execFileSync('setfattr', ['-n', 'user.keep', '-v', 'yes', join(src, 'd')]);
    execFileSync('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', join(root, 'x.tar'), 'd']);
    const withXattrs = readFileSync(join(root, 'x.tar'));
    const r = await unpack(root, withXattrs);
    expect(r.skipped).toEqual(['d (xattr trusted.overlay.opaque)']);
    expect(execFileSync('getfattr', ['-d', '-m', '-', '--absolute-names', join(r.dir, 'd')], { encoding: 'utf8' })).toContain('user.keep="yes"');
    expect(execFileSync('getfattr', ['-d', '-m', 'trusted', '--absolute-names', join(r.dir, 'd')], { encoding: 'utf8' })).toBe('');
  });

  it('rejects content whose digest is not the diff ID, leaving no layer', async () => {
    const root = tmp();
    const tar = await tarOf([{ name: 'a', type: 'file', body: 'x' }]);
    const claimed = sha256Of('other');
    const err = await rejection(unpack(root, tar, tar, claimed));
    expect(err.message).toBe(`layer ${claimed}: uncompressed content has digest ${sha256Of(tar)}, not the config's diff_id`);
    expect(readdirSync(join(root, 'layers'))).toEqual([]);
  });

  it.each([
    { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]) },
    { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]) },
  ])('rejects $name-compressed layers with a clear error', async ({ name, magic }) => {
    const root = tmp();
    const err = await rejection(unpack(root, magic, magic, sha256Of('x')));
    expect(err.message).toContain(`${name}-compressed content is not supported`);
    expect(readdirSync(join(root, 'layers'))).toEqual([]);
  });

  it('rejects corrupt archives naming the layer', async () => {
    const root = tmp();
    const junk = Buffer.alloc(1024, 7);
    const err = await rejection(unpack(root, junk));
    expect(err.message).toMatch(/^layer sha256:[a-f0-9]{64}: header checksum mismatch/);
  });
});

describe('unpackLayer: faithful content', () => {
  it('keeps modes with setuid, numeric owners and mtimes, gzip or not', async () => {
    const root = tmp();
    const tar = await tarOf([
      { name: './', type: 'directory', mode: 0o755, mtimeSeconds: 100 },
      { name: './bin', type: 'directory', mode: 0o711, uid: 7, gid: 8, mtimeSeconds: 200 },
      { name: './bin/su', type: 'file', mode: 0o4755, uid: 1234, gid: 5678, mtimeSeconds: 300, body: 'su' },
      { name: './bin/sg', type: 'file', mode: 0o2711, mtimeSeconds: 300, body: 'sg' },
      { name: './tmp', type: 'directory', mode: 0o1777, mtimeSeconds: 400 },
      { name: './bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 3, gid: 4, mtimeSeconds: 500 },
      { name: './bin/su2', type: 'hardlink', linkname: './bin/su' },
      { name: './implicit/deep/file', type: 'file', mode: 0o600, body: 'x' },
    ]);
    const { dir, existed } = await unpack(root, tar, gzipSync(tar));
    expect(existed).toBe(false);
    expect(dir).toBe(join(root, 'layers', sha256Of(tar).slice(7)));
    const su = statSync(join(dir, 'bin/su'));
    expect([su.mode & 0o7777, su.uid, su.gid, su.mtimeMs]).toEqual([0o4755, 1234, 5678, 300_000]);
    expect(statSync(join(dir, 'bin/sg')).mode & 0o7777).toBe(0o2711);
    const bin = statSync(join(dir, 'bin'));
    expect([bin.mode & 0o7777, bin.uid, bin.gid, bin.mtimeMs]).toEqual([0o711, 7, 8, 200_000]);
    expect(statSync(join(dir, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(statSync(dir).mtimeMs).toBe(100_000);
    const sh = lstatSync(join(dir, 'bin/sh'));
    expect([readlinkSync(join(dir, 'bin/sh')), sh.uid, sh.gid, sh.mtimeMs]).toEqual(['/bin/busybox', 3, 4, 500_000]);
    expect(statSync(join(dir, 'bin/su2')).ino).toBe(su.ino);
    expect(statSync(join(dir, 'implicit/deep')).mode & 0o7777).toBe(0o755);
  });

  it('unpacks a layer once and reports it as existing afterwards', async () => {
    const root = tmp();
    const tar = await tarOf([{ name: 'a', type: 'file', body: 'x' }]);
    await unpack(root, tar);
    let opened = false;
    const again = await unpackLayer({ layersDir: join(root, 'layers'), diffId: sha256Of(tar), open: () => { opened = true; return [tar]; } });
    expect(again.existed).toBe(true);
    expect(opened).toBe(false);
  });

  it('turns OCI whiteouts into overlayfs whiteouts and opaque directories', async () => {
    const root = tmp();
    const tar = await tarOf([
      { name: 'etc', type: 'directory' },
      { name: 'etc/.wh.gone', type: 'file' },
      { name: 'usr', type: 'directory' },
      { name: 'usr/.wh..wh..opq', type: 'file' },
      { name: 'usr/x', type: 'file', body: 'x' },
      { name: 'var/.wh.www', type: 'file' },
      { name: '.wh..wh.plnk', type: 'directory' },
    ]);
    const { dir, skipped } = await unpack(root, tar);
    expect(statType(join(dir, 'etc/gone'))).toBe('character special file 0 0');
    expect(statType(join(dir, 'var/www'))).toBe('character special file 0 0');
    expect(existsSync(join(dir, 'etc/.wh.gone'))).toBe(false);
    expect(execFileSync('getfattr', ['-n', 'trusted.overlay.opaque', '--only-values', '--absolute-names', join(dir, 'usr')], { encoding: 'utf8' })).toBe('y');
    expect(readdirSync(join(dir, 'usr'))).toEqual(['x']);
    expect(skipped).toEqual(['.wh..wh.plnk']);
  });

  it('stacks in a real overlay mount: whiteouts hide lower files, opaque dirs hide lower contents', async () => {
    const root = tmp();
    const lower = await tarOf([
      { name: 'etc', type: 'directory' },
      { name: 'etc/a', type: 'file', body: 'a' },
      { name: 'etc/b', type: 'file', body: 'b' },
      { name: 'dir', type: 'directory' },
      { name: 'dir/old', type: 'file', body: 'old' },
    ]);
    const upper = await tarOf([
      { name: 'etc/.wh.a', type: 'file' },
      { name: 'dir/.wh..wh..opq', type: 'file' },
      { name: 'dir/new', type: 'file', body: 'new' },
    ]);
    const l1 = (await unpack(root, lower)).dir;
    const l2 = (await unpack(root, upper)).dir;
    const merged = join(root, 'merged');
    mkdirSync(merged);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l2}:${l1}`, merged]);
    try {
      expect(readdirSync(join(merged, 'etc'))).toEqual(['b']);
      expect(readdirSync(join(merged, 'dir'))).toEqual(['new']);
      expect(readFileSync(join(merged, 'dir/new'), 'utf8')).toBe('new');
    } finally {
      // Before the temp dir goes (afterEach): an rm under a live mount would fail, or worse.
      execFileSync('umount', [merged]);
    }
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { TarFormatError, type TarHeader } from './header.ts';
import { readTar } from './reader.ts';
import { tarToBuffer, type TarWriteEntry } from './writer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync('/tmp/berth-images-test-tar-');
  dirs.push(d);
  return d;
};

async function readAll(buf: Buffer, chunkSize = 7_000): Promise<{ header: TarHeader; data: Buffer }[]> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  const out: { header: TarHeader; data: Buffer }[] = [];
  for await (const e of readTar(Readable.from(chunks))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.push({ header: e.header, data: Buffer.concat(parts) });
  }
  return out;
}

const longName = `${'d'.repeat(120)}/${'e'.repeat(80)}/${'f'.repeat(110)}`;

describe('tar writer and reader', () => {
  it('round-trips files, directories, links, long names and large ids', async () => {
    const entries: TarWriteEntry[] = [
      { header: { name: 'dir', type: 'directory', mode: 0o1777, mtimeSeconds: 5 } },
      { header: { name: 'dir/file', type: 'file', mode: 0o4755, uid: 1000, gid: 1001, size: 3, mtimeSeconds: 7 }, body: Buffer.from('abc') },
      { header: { name: 'dir/link', type: 'symlink', linkname: '/somewhere/far' } },
      { header: { name: 'dir/hard', type: 'hardlink', linkname: 'dir/file' } },
      { header: { name: longName, type: 'file', size: 1, uid: 3_000_000 }, body: Buffer.from('x') },
      { header: { name: 'sym-long', type: 'symlink', linkname: 'l'.repeat(150) } },
      { header: { name: 'big', type: 'file', size: 70_000 }, body: Buffer.alloc(70_000, 1) },
    ];
    const got = await readAll(await tarToBuffer(entries));
    expect(got.map((e) => [e.header.name, e.header.type])).toEqual([
      ['dir', 'directory'], ['dir/file', 'file'], ['dir/link', 'symlink'], ['dir/hard', 'hardlink'],
      [longName, 'file'], ['sym-long', 'symlink'], ['big', 'file'],
    ]);
    expect(got[0]!.header.mode).toBe(0o1777);
    expect(got[1]).toMatchObject({ header: { mode: 0o4755, uid: 1000, gid: 1001, mtimeSeconds: 7 }, data: Buffer.from('abc') });
    expect(got[2]!.header.linkname).toBe('/somewhere/far');
    expect(got[4]!.header.uid).toBe(3_000_000);
    expect(got[5]!.header.linkname).toBe('l'.repeat(150));
    expect(got[6]!.data.equals(Buffer.alloc(70_000, 1))).toBe(true);
  });

  it('writes archives GNU tar lists identically', async () => {
    const d = tmp();
    const entries: TarWriteEntry[] = [
      { header: { name: 'a', type: 'directory', mode: 0o755 } },
      { header: { name: 'a/b.txt', type: 'file', mode: 0o644, size: 2 }, body: Buffer.from('hi') },
      { header: { name: longName, type: 'file', mode: 0o644, size: 0 } },
      { header: { name: 'a/s', type: 'symlink', linkname: 'b.txt' } },
    ];
    writeFileSync(join(d, 'x.tar'), await tarToBuffer(entries));
    const listed = execFileSync('tar', ['-tf', join(d, 'x.tar')], { encoding: 'utf8' }).trim().split('\n');
    expect(listed).toEqual(['a/', 'a/b.txt', longName, 'a/s']);
  });

  it.each([
    { format: 'gnu', name: 'reads GNU long names and long link targets written by GNU tar' },
    { format: 'posix', name: 'reads pax headers written by GNU tar' },
    { format: 'ustar', name: 'reads ustar prefix names written by GNU tar' },
  ])('$name', async ({ format }) => {
    const d = tmp();
    const src = join(d, 'src');
    const deep = format === 'ustar' ? `${'p'.repeat(90)}/${'q'.repeat(90)}` : longName;
    mkdirSync(join(src, deep), { recursive: true });
    writeFileSync(join(src, deep, 'file'), 'content');
    if (format !== 'ustar') symlinkSync('t'.repeat(140), join(src, 'long-link'));
    execFileSync('tar', [`--format=${format}`, '-C', src, '-cf', join(d, 'x.tar'), '.']);
    const got = await readAll(readFileSync(join(d, 'x.tar')), 100);
    const file = got.find((e) => e.header.name === `./${deep}/file`);
    expect(file?.data.toString()).toBe('content');
    if (format !== 'ustar') expect(got.find((e) => e.header.name === './long-link')?.header.linkname).toBe('t'.repeat(140));
  });

  it('reads extended attributes from pax headers', async () => {
    const d = tmp();
    writeFileSync(join(d, 'f'), 'x');
    execFileSync('setfattr', ['-n', 'user.berth', '-v', 'yes', join(d, 'f')]);
    execFileSync('tar', ['--format=posix', '--xattrs', '--xattrs-include=user.*', '-C', d, '-cf', join(d, 'x.tar'), 'f']);
    const [entry] = await readAll(readFileSync(join(d, 'x.tar')));
    expect(entry!.header.xattrs['user.berth']?.toString()).toBe('yes');
  });

  it.each([
    { name: 'rejects a header with a bad checksum', mutate: (b: Buffer) => { b[0] = 0x41; }, want: 'checksum' },
    { name: 'rejects an archive cut inside a body', mutate: (b: Buffer) => b.subarray(0, 600), want: 'unexpected end' },
    { name: 'rejects an archive without end marker', mutate: (b: Buffer) => b.subarray(0, 1024), want: 'unexpected end' },
    { name: 'rejects sparse (GNU S) entries', mutate: (b: Buffer) => { b[156] = 'S'.charCodeAt(0); fixChecksum(b); }, want: 'unsupported entry type "S"' },
  ])('$name', async ({ mutate, want }) => {
    const buf = Buffer.from(await tarToBuffer([{ header: { name: 'f', type: 'file', size: 600 }, body: Buffer.alloc(600) }]));
    const bad = mutate(buf) ?? buf;
    await expect(readAll(bad)).rejects.toThrow(TarFormatError);
    await expect(readAll(bad)).rejects.toThrow(want);
  });

  it('skips bodies the consumer does not read', async () => {
    const buf = await tarToBuffer([
      { header: { name: 'a', type: 'file', size: 1000 }, body: Buffer.alloc(1000, 2) },
      { header: { name: 'b', type: 'file', size: 1 }, body: Buffer.from('z') },
    ]);
    const names: string[] = [];
    for await (const e of readTar(Readable.from([buf]))) names.push(e.header.name);
    expect(names).toEqual(['a', 'b']);
  });
});

function fixChecksum(b: Buffer): void {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

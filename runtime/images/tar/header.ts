/**
 * Tar header fields and the 512-byte ustar block codec shared by the reader and
 * the writer. Formats: POSIX ustar, pax extended headers (`x`, `g`) and GNU long
 * names (`L`, `K`). Sparse files and other GNU extensions are rejected.
 */

export const BLOCK_SIZE = 512;

/** What an entry is. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'directory' | 'fifo';

/** One entry's metadata, after pax and GNU long-name records are applied. */
export interface TarHeader {
  /** Path inside the archive as written (may start with `./`; directories without trailing `/`). */
  readonly name: string;
  readonly type: TarEntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777` at most). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Body length in bytes (0 for everything but files). */
  readonly size: number;
  /** Modification time in seconds since the epoch (may be fractional from pax). */
  readonly mtimeSeconds: number;
  /** Target of a symlink, or the archive path a hard link points to. */
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.*` records. */
  readonly xattrs: Readonly<Record<string, Buffer>>;
}

/** Raised for malformed archives; the caller wraps it with the archive's name. */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

const TYPE_FLAGS: Readonly<Record<string, TarEntryType>> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink',
  '3': 'chardev', '4': 'blockdev', '5': 'directory', '6': 'fifo',
};
const FLAG_OF: Readonly<Record<TarEntryType, string>> = {
  file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', directory: '5', fifo: '6',
};

/** A decoded header block before pax / GNU records are applied. */
export interface RawHeader {
  readonly flag: string;
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeSeconds: number;
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
}

export const entryTypeOfFlag = (flag: string): TarEntryType | undefined => TYPE_FLAGS[flag];

const isZero = (b: Buffer): boolean => {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
};

/** True for the all-zero blocks that end an archive. */
export const isEndBlock = isZero;

function cString(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function numeric(b: Buffer, start: number, len: number, field: string): number {
  const bytes = b.subarray(start, start + len);
  if (bytes[0]! & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte marks it; negatives are not valid here.
    if (bytes[0] === 0xff) throw new TarFormatError(`negative ${field} in header`);
    let n = bytes[0]! & 0x7f;
    for (let i = 1; i < bytes.length; i++) {
      n = n * 256 + bytes[i]!;
      if (n > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${field} too large in header`);
    }
    return n;
  }
  const text = bytes.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '').replace(/\0.*$/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid ${field} ${JSON.stringify(text)} in header`);
  return parseInt(text, 8);
}

/** Decodes one header block, verifying its checksum. */
export function decodeHeaderBlock(b: Buffer): RawHeader {
  let stored: number;
  try {
    stored = numeric(b, 148, 8, 'checksum');
  } catch {
    stored = -1;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) throw new TarFormatError('header checksum mismatch (not a tar archive, or corrupt)');

  const magic = b.subarray(257, 263).toString('latin1');
  let name = cString(b, 0, 100);
  // POSIX ustar splits long names into prefix + name; GNU tar uses those bytes for other fields.
  if (magic === 'ustar\0') {
    const prefix = cString(b, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    flag: String.fromCharCode(b[156]!),
    name,
    mode: numeric(b, 100, 8, 'mode'),
    uid: numeric(b, 108, 8, 'uid'),
    gid: numeric(b, 116, 8, 'gid'),
    size: numeric(b, 124, 12, 'size'),
    mtimeSeconds: numeric(b, 136, 12, 'mtime'),
    linkname: cString(b, 157, 100),
    uname: cString(b, 265, 32),
    gname: cString(b, 297, 32),
    devmajor: numeric(b, 329, 8, 'devmajor'),
    devminor: numeric(b, 337, 8, 'devminor'),
  };
}

/**
 * Parses pax extended header records (`<len> <key>=<value>\n`). Values stay
 * bytes: `SCHILY.xattr.*` values are binary.
 */
export function parsePaxRecords(body: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad the body with NULs
    const space = body.indexOf(0x20, pos);
    if (space < 0) throw new TarFormatError('malformed pax record');
    const len = Number(body.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a)
      throw new TarFormatError('malformed pax record length');
    const record = body.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('malformed pax record');
    records.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return records;
}

/** Serialises pax records; each record's length prefix counts itself. */
export function encodePaxRecords(records: ReadonlyMap<string, Buffer | string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const payload = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
    let len = payload.length + 1;
    while (String(len).length + payload.length !== len) len = String(len).length + payload.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), payload]));
  }
  return Buffer.concat(parts);
}

/** Fields the writer takes; absent numbers are 0, absent strings empty. */
export interface TarWriteHeader {
  readonly name: string;
  readonly type: TarEntryType;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly size?: number;
  readonly mtimeSeconds?: number;
  readonly linkname?: string;
  readonly uname?: string;
  readonly gname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  /** Extended attributes, written as pax `SCHILY.xattr.<name>` records (binary values allowed). */
  readonly xattrs?: Readonly<Record<string, Uint8Array>>;
}

function putString(b: Buffer, start: number, len: number, s: string): boolean {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) return false;
  bytes.copy(b, start);
  return true;
}

function putOctal(b: Buffer, start: number, len: number, n: number): boolean {
  const text = Math.trunc(n).toString(8);
  if (n < 0 || text.length > len - 1) return false;
  b.write(text.padStart(len - 1, '0'), start, 'latin1');
  b[start + len - 1] = 0;
  return true;
}

/** Splits a long name into ustar prefix + name, or undefined when it does not fit. */
function splitUstarName(name: string): [string, string] | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return ['', name];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return [prefix, rest];
  }
  return undefined;
}

function headerBlock(h: TarWriteHeader, flag: string, name: [string, string], pax: Map<string, string | Buffer>): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  putString(b, 0, 100, name[1]);
  const fields: [number, number, number, string][] = [
    [100, 8, (h.mode ?? 0) & 0o7777, ''],
    [108, 8, h.uid ?? 0, 'uid'],
    [116, 8, h.gid ?? 0, 'gid'],
    [124, 12, h.size ?? 0, 'size'],
    [136, 12, Math.trunc(h.mtimeSeconds ?? 0), 'mtime'],
    [329, 8, h.devmajor ?? 0, ''],
    [337, 8, h.devminor ?? 0, ''],
  ];
  for (const [start, len, n, paxKey] of fields) {
    if (!putOctal(b, start, len, n)) {
      if (paxKey === '') throw new TarFormatError(`value ${n} does not fit a tar header`);
      pax.set(paxKey, String(n));
      putOctal(b, start, len, 0);
    }
  }
  b[156] = flag.charCodeAt(0);
  if (!putString(b, 157, 100, h.linkname ?? '')) pax.set('linkpath', h.linkname ?? '');
  b.write('ustar\x0000', 257, 'latin1');
  if (!putString(b, 265, 32, h.uname ?? '')) pax.set('uname', h.uname ?? '');
  if (!putString(b, 297, 32, h.gname ?? '')) pax.set('gname', h.gname ?? '');
  putString(b, 345, 155, name[0]);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export const paddingFor = (size: number): number => (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;

/**
 * Encodes one entry's header: a single ustar block, preceded by a pax `x`
 * header when a name, link target or number does not fit ustar.
 */
export function encodeHeader(h: TarWriteHeader): Buffer {
  const name = h.type === 'directory' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const pax = new Map<string, string | Buffer>();
  let split = splitUstarName(name);
  if (split === undefined) {
    pax.set('path', name);
    split = ['', Buffer.from(name).subarray(0, 99).toString('latin1').replace(/[^\x20-\x7e]/g, '_')];
  }
  const block = headerBlock(h, FLAG_OF[h.type], split, pax);
  for (const key of Object.keys(h.xattrs ?? {}).sort()) pax.set(`SCHILY.xattr.${key}`, Buffer.from(h.xattrs![key]!));
  if (pax.size === 0) return block;
  const body = encodePaxRecords(pax);
  const paxHeader = headerBlock(
    { name: 'PaxHeader', type: 'file', mode: 0o644, size: body.length },
    'x', ['', 'PaxHeader'], new Map(),
  );
  return Buffer.concat([paxHeader, body, Buffer.alloc(paddingFor(body.length)), block]);
}

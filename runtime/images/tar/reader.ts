import {
  BLOCK_SIZE, TarFormatError, decodeHeaderBlock, entryTypeOfFlag, isEndBlock, paddingFor, parsePaxRecords,
  type RawHeader, type TarHeader,
} from './header.ts';

/** An entry being read: its header and its body, which is only valid until the next entry is requested. */
export interface TarEntry {
  readonly header: TarHeader;
  /** The body bytes (files only). Unconsumed bytes are skipped when the next entry is read. */
  readonly body: AsyncIterable<Buffer>;
}

/** Caps the size of pax and GNU long-name records held in memory. */
const MAX_META_BYTES = 1 << 20;
const PER_ENTRY_KEYS = new Set(['path', 'linkpath', 'size']);

/** Pulls exact byte counts out of an async iterable of chunks. */
class ChunkReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
        this.chunks.push(b);
        this.buffered += b.length;
      }
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      const rest = all.subarray(n);
      this.chunks = rest.length > 0 ? [rest] : [];
    }
    this.buffered -= n;
    return out;
  }

  /** Exactly `n` bytes; undefined at a clean end of input; throws when the input ends part-way. */
  async readExact(n: number): Promise<Buffer | undefined> {
    await this.fill(n);
    if (this.buffered === 0 && this.ended) return undefined;
    if (this.buffered < n) throw new TarFormatError('unexpected end of archive');
    return this.take(n);
  }

  /** Up to `max` bytes (at least one), or throws at the end of input. */
  async readSome(max: number): Promise<Buffer> {
    await this.fill(1);
    if (this.buffered === 0) throw new TarFormatError('unexpected end of archive');
    return this.take(Math.min(max, this.chunks[0]!.length));
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.readSome(n)).length;
  }

  /** Reads and discards everything left. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
    }
  }

  async close(): Promise<void> {
    if (!this.ended) await this.it.return?.();
  }
}

function applyRecords(raw: RawHeader, pax: Map<string, Buffer>, longName?: string, longLink?: string): TarHeader {
  const str = (k: string): string | undefined => pax.get(k)?.toString('utf8');
  const num = (k: string, fallback: number): number => {
    const v = str(k);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new TarFormatError(`invalid pax ${k} ${JSON.stringify(v)}`);
    return n;
  };
  let name = str('path') ?? longName ?? raw.name;
  let type = entryTypeOfFlag(raw.flag);
  if (type === undefined) throw new TarFormatError(`entry ${JSON.stringify(name)}: unsupported entry type ${JSON.stringify(raw.flag)}`);
  // Old (v7) archives mark directories only by the trailing slash.
  if (type === 'file' && name.endsWith('/')) type = 'directory';
  if (type === 'directory') name = name.replace(/\/+$/, '') || '.';
  if (name.includes('\0')) throw new TarFormatError(`entry ${JSON.stringify(name)}: NUL in name`);
  const linkname = str('linkpath') ?? longLink ?? raw.linkname;
  const xattrs: Record<string, Buffer> = {};
  for (const [k, v] of pax) {
    if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
  }
  const size = num('size', raw.size);
  if (!Number.isSafeInteger(size)) throw new TarFormatError(`entry ${JSON.stringify(name)}: invalid size`);
  return {
    name, type, linkname, xattrs,
    mode: raw.mode & 0o7777,
    uid: num('uid', raw.uid),
    gid: num('gid', raw.gid),
    size: type === 'file' ? size : 0,
    mtimeSeconds: num('mtime', raw.mtimeSeconds),
    uname: str('uname') ?? raw.uname,
    gname: str('gname') ?? raw.gname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
  };
}

/**
 * Reads a tar stream entry by entry (ustar, pax, GNU long names). Each entry's
 * body must be read before asking for the next entry, or it is skipped. After
 * the end-of-archive blocks the rest of the input is read and discarded, so a
 * hash computed upstream covers every byte. Rejects malformed archives with
 * `TarFormatError`. Stops reading (and returns the source) when the consumer stops.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const input = new ChunkReader(source[Symbol.asyncIterator]());
  let pax = new Map<string, Buffer>();
  const globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let finished = false;
  try {
    for (;;) {
      const block = await input.readExact(BLOCK_SIZE);
      if (block === undefined) throw new TarFormatError('unexpected end of archive (no end-of-archive marker)');
      if (isEndBlock(block)) {
        // The second zero block is sometimes missing; accept either.
        await input.drain();
        finished = true;
        return;
      }
      const raw = decodeHeaderBlock(block);
      if (raw.flag === 'x' || raw.flag === 'g' || raw.flag === 'L' || raw.flag === 'K') {
        if (raw.size > MAX_META_BYTES) throw new TarFormatError(`extended header of ${raw.size} bytes is too large`);
        const body = raw.size > 0 ? await input.readExact(raw.size) : Buffer.alloc(0);
        if (body === undefined) throw new TarFormatError('unexpected end of archive');
        await input.skip(paddingFor(raw.size));
        if (raw.flag === 'x') for (const [k, v] of parsePaxRecords(body)) pax.set(k, v);
        else if (raw.flag === 'g') {
          // A global path or size would apply to every entry: meaningless, so ignored.
          for (const [k, v] of parsePaxRecords(body)) if (!PER_ENTRY_KEYS.has(k)) globalPax.set(k, v);
        }
        else {
          const nul = body.indexOf(0);
          const text = body.subarray(0, nul < 0 ? body.length : nul).toString('utf8');
          if (raw.flag === 'L') longName = text;
          else longLink = text;
        }
        continue;
      }
      const header = applyRecords(raw, new Map([...globalPax, ...pax]), longName, longLink);
      pax = new Map();
      longName = undefined;
      longLink = undefined;

      let remaining = header.size;
      const body: AsyncIterable<Buffer> = {
        async *[Symbol.asyncIterator]() {
          while (remaining > 0) {
            const chunk = await input.readSome(remaining);
            remaining -= chunk.length;
            yield chunk;
          }
        },
      };
      yield { header, body };
      await input.skip(remaining + paddingFor(header.size));
      remaining = 0;
    }
  } finally {
    if (!finished) await input.close();
  }
}

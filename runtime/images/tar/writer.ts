import { encodeHeader, paddingFor, type TarWriteHeader } from './header.ts';

/** One entry to write. A file's body must be exactly `header.size` bytes. */
export interface TarWriteEntry {
  readonly header: TarWriteHeader;
  readonly body?: Uint8Array | AsyncIterable<Uint8Array>;
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

/**
 * Produces a tar stream (ustar, with pax headers where ustar cannot hold a
 * value) from entries, in the order given. Output is deterministic for a given
 * input: callers sort entries and fix mtimes and owners for reproducible archives.
 * Throws when a body's length differs from `header.size`.
 */
export async function* writeTar(
  entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>,
): AsyncGenerator<Buffer> {
  for await (const { header, body } of entries) {
    const size = header.type === 'file' ? (header.size ?? 0) : 0;
    yield encodeHeader({ ...header, size });
    let written = 0;
    if (body !== undefined) {
      const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = body instanceof Uint8Array ? [body] : body;
      for await (const chunk of chunks) {
        written += chunk.length;
        if (written > size) break;
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      }
    }
    if (written !== size) throw new Error(`tar entry ${JSON.stringify(header.name)}: body is ${written} bytes, header says ${size}`);
    const pad = paddingFor(size);
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield END_OF_ARCHIVE;
}

/** Collects `writeTar` output into one buffer (for small archives and tests). */
export async function tarToBuffer(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of writeTar(entries)) parts.push(b);
  return Buffer.concat(parts);
}

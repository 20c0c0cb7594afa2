/**
 * Unpacks image layers into directories that overlayfs can use as lowerdirs,
 * safely against hostile archives.
 *
 * Rules for every entry (violations reject with `RuntimeError('InvalidArgument')`
 * naming the layer and the entry): paths are cleaned lexically and must stay in
 * the layer (no `..` escape, no absolute path); no entry is written through a
 * symlink or a non-directory; hard links must point at an existing non-directory
 * inside the layer, reached without symlinks; device nodes and fifos are skipped
 * (reported in `skipped`); modes (setuid/setgid/sticky included), numeric
 * owners and mtimes are kept; only `user.*` and `security.capability` xattrs
 * are applied. OCI whiteouts become overlayfs whiteouts: `.wh.<name>` a char
 * device 0/0 `<name>`, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on
 * its directory; other `.wh..wh.` entries (aufs metadata) are skipped.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rename, rm, stat, symlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';
import { Digester, digestHex, type Digest } from './digest.ts';
import { TarFormatError, type TarHeader } from './tar/header.ts';
import { readTar } from './tar/reader.ts';

/** How a stream is compressed, from its first bytes. */
export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** Detects compression by magic number. */
export function detectCompression(head: Uint8Array): Compression {
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/**
 * The uncompressed bytes of `input` (gzip or plain tar, detected by magic).
 * Rejects zstd, xz and bzip2 with `InvalidArgument` naming `what`.
 */
export async function decompress(input: AsyncIterable<Uint8Array>, what: string): Promise<AsyncIterable<Uint8Array>> {
  const it = input[Symbol.asyncIterator]();
  const held: Buffer[] = [];
  let heldBytes = 0;
  let ended = false;
  while (heldBytes < 6 && !ended) {
    const r = await it.next();
    if (r.done) ended = true;
    else {
      held.push(Buffer.from(r.value));
      heldBytes += r.value.length;
    }
  }
  const head = Buffer.concat(held);
  const compression = detectCompression(head);
  if (compression !== 'none' && compression !== 'gzip') {
    await it.return?.();
    throw new RuntimeError('InvalidArgument', `${what}: ${compression}-compressed content is not supported (only gzip or uncompressed tar)`);
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    let done = ended;
    try {
      if (head.length > 0) yield head;
      while (!done) {
        const r = await it.next();
        if (r.done) done = true;
        else yield r.value;
      }
    } finally {
      if (!done) await it.return?.();
    }
  }
  if (compression === 'none') return replay();
  const gunzip = createGunzip();
  return pipeline(Readable.from(replay()), gunzip, () => undefined);
}

export interface ExtractOptions extends CallOptions {
  /** Names the archive in errors: `layer sha256:…`, `archive /srv/x.tar`. */
  readonly what: string;
  /** `overlay`: turn OCI whiteouts into overlayfs whiteouts (layers). `keep`: write them as plain files (archives). */
  readonly whiteouts: 'overlay' | 'keep';
}

export interface ExtractResult {
  /** Entries not created (device nodes, fifos, aufs metadata, unsupported xattrs), as named in the archive. */
  readonly skipped: readonly string[];
  readonly entries: number;
}

const ALLOWED_XATTR = (name: string): boolean => name.startsWith('user.') || name === 'security.capability';
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

class EntryError extends Error {}

/** Cleans an archive path lexically; throws when it escapes the root. '' is the root itself. */
function cleanPath(name: string, role: string, scope: string): string {
  if (name.startsWith('/')) throw new EntryError(`${role} is absolute`);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new EntryError(`${role} escapes the ${scope}`);
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const baseOf = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err) reject(new RuntimeError('Internal', `${cmd} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve();
    });
  });
}

/** Runs `cmd fixedArgs... path...` in batches that fit an argument list. */
async function runBatched(cmd: string, fixedArgs: readonly string[], paths: readonly string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 500) await run(cmd, [...fixedArgs, ...paths.slice(i, i + 500)]);
}

/** Writes one archive into one directory, enforcing the module's rules. */
class Extractor {
  private readonly knownDirs = new Set<string>(['']);
  private readonly dirTimes = new Map<string, number>();
  private readonly whiteouts = new Set<string>();
  private readonly opaques = new Set<string>();
  readonly skipped: string[] = [];

  private readonly scope: string;

  constructor(private readonly root: string, private readonly opts: ExtractOptions) {
    this.scope = opts.whiteouts === 'overlay' ? 'layer' : 'archive';
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes sure every ancestor of `rel` is a real directory, creating missing ones when `create`. */
  private async ensureParents(rel: string, create: boolean, role = 'path'): Promise<void> {
    const parts = rel.split('/').slice(0, -1);
    let prefix = '';
    for (const part of parts) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      if (this.knownDirs.has(prefix)) continue;
      const st = await lstat(this.abs(prefix)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (st === undefined) {
        if (!create) throw new EntryError(`${role} parent "${prefix}" does not exist in the ${this.scope}`);
        await mkdir(this.abs(prefix), 0o755);
        await chmod(this.abs(prefix), 0o755);
      } else if (st.isSymbolicLink()) {
        throw new EntryError(`${role} goes through symlink "${prefix}"`);
      } else if (!st.isDirectory()) {
        throw new EntryError(`${role} parent "${prefix}" is not a directory`);
      }
      this.knownDirs.add(prefix);
    }
  }

  private forget(rel: string): void {
    for (const d of this.knownDirs) if (d === rel || d.startsWith(`${rel}/`)) this.knownDirs.delete(d);
    for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(`${rel}/`)) this.dirTimes.delete(d);
  }

  private async removeExisting(rel: string, keepDir: boolean): Promise<boolean> {
    const st = await lstat(this.abs(rel)).catch(() => undefined);
    if (st === undefined) return false;
    if (keepDir && st.isDirectory()) return true;
    this.forget(rel);
    await rm(this.abs(rel), { recursive: true, force: true });
    return false;
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = cleanPath(h.name, 'path', this.scope);
    if (rel === '') {
      if (h.type !== 'directory') throw new EntryError(`cannot replace the ${this.scope} root`);
      await this.applyDirMeta('', h);
      return;
    }
    await this.ensureParents(rel, true);
    const base = baseOf(rel);
    if (this.opts.whiteouts === 'overlay' && base.startsWith(WHITEOUT_PREFIX)) {
      if (base === OPAQUE) this.opaques.add(parentOf(rel));
      else if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) this.skipped.push(h.name);
      else {
        const hidden = base.slice(WHITEOUT_PREFIX.length);
        if (hidden === '' || hidden === '.' || hidden === '..') throw new EntryError('invalid whiteout name');
        const target = parentOf(rel) === '' ? hidden : `${parentOf(rel)}/${hidden}`;
        this.whiteouts.add(target);
      }
      return;
    }
    const path = this.abs(rel);
    switch (h.type) {
      case 'directory': {
        if (!(await this.removeExisting(rel, true))) await mkdir(path, 0o700);
        this.knownDirs.add(rel);
        await this.applyDirMeta(rel, h);
        break;
      }
      case 'file': {
        await this.removeExisting(rel, false);
        const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          await writeBody(fh, body, this.opts.signal);
          // chown before chmod: chown clears setuid/setgid.
          await fh.chown(h.uid, h.gid);
          await fh.chmod(h.mode);
          await fh.utimes(h.mtimeSeconds, h.mtimeSeconds);
        } finally {
          await fh.close();
        }
        await this.applyXattrs(h, path);
        break;
      }
      case 'symlink': {
        if (h.linkname === '') throw new EntryError('symlink has an empty target');
        await this.removeExisting(rel, false);
        await symlink(h.linkname, path);
        await lchown(path, h.uid, h.gid);
        await lutimes(path, h.mtimeSeconds, h.mtimeSeconds);
        await this.applyXattrs(h, path);
        break;
      }
      case 'hardlink': {
        const target = cleanPath(h.linkname, 'hard link target', this.scope);
        if (target === '' || target === rel) throw new EntryError(`hard link target "${h.linkname}" is invalid`);
        await this.ensureParents(target, false, 'hard link target');
        const st = await lstat(this.abs(target)).catch(() => undefined);
        if (st === undefined) throw new EntryError(`hard link target "${h.linkname}" does not exist in the ${this.scope}`);
        if (st.isDirectory()) throw new EntryError(`hard link target "${h.linkname}" is a directory`);
        await this.removeExisting(rel, false);
        await link(this.abs(target), path);
        break;
      }
      case 'chardev':
      case 'blockdev':
      case 'fifo':
        this.skipped.push(h.name);
        break;
    }
  }

  private async applyDirMeta(rel: string, h: TarHeader): Promise<void> {
    const path = this.abs(rel);
    await lchown(path, h.uid, h.gid);
    await chmod(path, h.mode);
    await this.applyXattrs(h, path);
    this.dirTimes.set(rel, h.mtimeSeconds);
  }

  private async applyXattrs(h: TarHeader, path: string): Promise<void> {
    for (const [name, value] of Object.entries(h.xattrs)) {
      if (!ALLOWED_XATTR(name)) {
        this.skipped.push(`${h.name} (xattr ${name})`);
        continue;
      }
      await run('setfattr', ['-h', '-n', name, '-v', value.length > 0 ? `0x${value.toString('hex')}` : '', path]);
    }
  }

  /** Creates whiteouts and opaque markers, then directory mtimes (children changed them). */
  async finish(): Promise<void> {
    const devices: string[] = [];
    for (const rel of [...this.whiteouts].sort()) {
      try {
        await this.ensureParents(rel, true);
      } catch (err) {
        if (err instanceof EntryError) throw new EntryError(`whiteout for "${rel}": ${err.message}`);
        throw err;
      }
      await this.removeExisting(rel, false);
      devices.push(this.abs(rel));
    }
    if (devices.length > 0) await run('sh', ['-c', 'for p; do mknod -m 000 "$p" c 0 0 || exit 1; done', 'mknod', ...devices]);
    const opaque: string[] = [];
    for (const rel of [...this.opaques].sort()) {
      const st = await lstat(this.abs(rel));
      if (!st.isDirectory()) throw new EntryError(`opaque marker in "${rel}", which is not a directory`);
      opaque.push(this.abs(rel));
    }
    await runBatched('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y'], opaque);
    const deepestFirst = [...this.dirTimes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, mtime] of deepestFirst) {
      const st = await lstat(this.abs(rel)).catch(() => undefined);
      if (st?.isDirectory()) await utimes(this.abs(rel), mtime, mtime);
    }
  }
}

async function writeBody(fh: FileHandle, body: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
  for await (const chunk of body) {
    signal?.throwIfAborted();
    let off = 0;
    while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }
}

/**
 * Extracts an uncompressed tar stream into `dest` (an existing directory that
 * only this call writes to), under the rules in the module comment. Rejects
 * with `InvalidArgument` (`<what>: entry "<name>": <why>`) on hostile or
 * malformed input; `dest` is then left partly written for the caller to remove.
 */
export async function extractTar(source: AsyncIterable<Uint8Array>, dest: string, opts: ExtractOptions): Promise<ExtractResult> {
  const x = new Extractor(dest, opts);
  let entries = 0;
  let current = '';
  try {
    for await (const { header, body } of readTar(source)) {
      opts.signal?.throwIfAborted();
      current = header.name;
      await x.entry(header, body);
      entries++;
    }
    current = '';
    await x.finish();
  } catch (err) {
    if (err instanceof EntryError)
      throw new RuntimeError('InvalidArgument', current === '' ? `${opts.what}: ${err.message}` : `${opts.what}: entry ${JSON.stringify(current)}: ${err.message}`);
    if (err instanceof TarFormatError) throw new RuntimeError('InvalidArgument', `${opts.what}: ${err.message}`, { cause: err });
    if (isRuntimeError(err) || (err as Error).name === 'AbortError') throw err;
    if ((err as NodeJS.ErrnoException).code === 'Z_DATA_ERROR' || (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR')
      throw new RuntimeError('InvalidArgument', `${opts.what}: corrupt gzip data`, { cause: err });
    throw new RuntimeError('Internal', `${opts.what}${current ? `: entry ${JSON.stringify(current)}` : ''}: ${(err as Error).message}`, { cause: err });
  }
  return { skipped: x.skipped, entries };
}

export interface UnpackLayerOptions extends CallOptions {
  /** Directory holding unpacked layers, one subdirectory per diff ID. */
  readonly layersDir: string;
  /** The layer's uncompressed digest (config `rootfs.diff_ids[i]`); the content must match it. */
  readonly diffId: Digest;
  /** Opens the layer blob (gzip or plain tar). */
  readonly open: () => Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Called with the count of blob bytes read so far. */
  readonly onBytes?: (bytes: number) => void;
}

export interface UnpackLayerResult {
  /** `<layersDir>/<diffID hex>`. */
  readonly dir: string;
  /** True when the layer was already unpacked and nothing was read. */
  readonly existed: boolean;
  readonly skipped: readonly string[];
}

/** Where a layer is (or will be) unpacked. */
export const layerDir = (layersDir: string, diffId: Digest): string => join(layersDir, digestHex(diffId));

/**
 * Unpacks a layer into `<layersDir>/<diffID hex>` once: into a temporary
 * directory that is synced and renamed into place only when the whole archive
 * was extracted and its uncompressed digest equals `diffId`, so a crash or a
 * rejection never leaves a partial layer. Resolves at once (`existed`) when
 * the layer is already there. Callers must not unpack the same diff ID twice
 * concurrently in one process (the image store de-duplicates); a concurrent
 * unpack by a second process loses the rename and uses the winner's directory.
 */
export async function unpackLayer(opts: UnpackLayerOptions): Promise<UnpackLayerResult> {
  const what = `layer ${opts.diffId}`;
  const dir = layerDir(opts.layersDir, opts.diffId);
  if (await stat(dir).then(() => true, () => false)) return { dir, existed: true, skipped: [] };
  await mkdir(opts.layersDir, { recursive: true });
  const tmp = join(opts.layersDir, `.tmp-${digestHex(opts.diffId).slice(0, 12)}-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp, 0o755);
  await chmod(tmp, 0o755);
  let done = false;
  try {
    const raw = await opts.open();
    let read = 0;
    const counted = (async function* () {
      for await (const chunk of raw) {
        read += chunk.length;
        opts.onBytes?.(read);
        yield chunk;
      }
    })();
    const digester = new Digester();
    const plain = await decompress(counted, what);
    const hashed = (async function* () {
      for await (const chunk of plain) {
        digester.update(chunk);
        yield chunk;
      }
    })();
    const result = await extractTar(hashed, tmp, { what, whiteouts: 'overlay', ...(opts.signal && { signal: opts.signal }) });
    const got = digester.digest();
    if (got !== opts.diffId) throw new RuntimeError('InvalidArgument', `${what}: uncompressed content has digest ${got}, not the config's diff_id`);
    await run('sync', ['-f', tmp]);
    try {
      await rename(tmp, dir);
      done = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      return { dir, existed: true, skipped: result.skipped };
    }
    return { dir, existed: false, skipped: result.skipped };
  } finally {
    if (!done) await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Turns an overlayfs upper directory (a container's writable layer, or a build
 * step's) into an OCI layer blob in the content store: the reverse of
 * `unpackLayer`.
 *
 * Conversion rules:
 * - The walk is depth first, names sorted bytewise (as `tar --sort=name`), a
 *   directory before its contents, the upper directory itself left out (as
 *   Docker does), so the same tree always gives the same tar, and so the same
 *   diff ID and blob digest.
 * - A char device 0/0 is an overlayfs whiteout and becomes an empty file
 *   `.wh.<name>` (mode 0600, the device's owner and mtime); a directory with
 *   `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`) is written, then an
 *   empty `<dir>/.wh..wh..opq` right after it.
 * - Files, directories, symlinks (never followed: their target is stored as
 *   written), fifos and other device nodes keep permission bits (setuid, setgid
 *   and sticky included), numeric uid/gid and whole-second mtimes; no user or
 *   group names. A second path to an inode already written becomes a tar hard
 *   link to the first path. Sockets are left out (reported in `skipped`).
 * - Only `user.*` and `security.capability` xattrs are stored, the ones
 *   `unpackLayer` applies; overlayfs' own (`trusted.overlay.*`) never are. An
 *   upper directory that uses overlayfs redirects or metacopy (files whose data
 *   is still in a lower layer) is rejected with `FailedPrecondition`.
 *
 * File contents are read through a descriptor opened without following
 * symlinks and checked (via /proc/self/fd) to be the walked path, so a tree
 * changed under the walk cannot make it read a file outside the directory; it
 * may still give an inconsistent layer, which is why callers pause containers.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';
import type { ContentStore, Lease } from './content-store.ts';
import { Digester, type Digest } from './digest.ts';
import { MEDIA_TYPE } from './oci.ts';
import type { TarWriteHeader } from './tar/header.ts';
import { writeTar, type TarWriteEntry } from './tar/writer.ts';

export interface WriteLayerFromDirOptions extends CallOptions {
  readonly store: ContentStore;
  /** The upper directory to convert. Not modified. */
  readonly dir: string;
  /** The blob (and its diff ID) is added to this lease; the caller records an image, then releases it. */
  readonly lease: Lease;
  /** Called as the compressed blob is written, with its byte count so far. */
  readonly onBytes?: (bytes: number) => void;
  /**
   * Caps every mtime at this many seconds since the epoch (buildkit's
   * `SOURCE_DATE_EPOCH` rewrite), so a rebuild that touches files gives the same
   * digest. Absent: mtimes are kept.
   */
  readonly clampMtimeSec?: number;
  /**
   * Relative paths (`etc/hosts`, `proc`) left out with everything under them:
   * mount points the runtime created in the upper directory.
   */
  readonly exclude?: readonly string[];
  /** zlib level, 1 (fast) to 9 (small); default zlib's 6. */
  readonly gzipLevel?: number;
  /** Names the layer in errors, e.g. `commit of container web`. Default `layer from <dir>`. */
  readonly what?: string;
}

/** The stored layer: a descriptor for the manifest plus the diff ID for the config. */
export interface WrittenLayer {
  /** Digest of the gzip blob. */
  readonly digest: Digest;
  /** Digest of the uncompressed tar (`rootfs.diff_ids`). */
  readonly diffId: Digest;
  /** Size of the gzip blob in bytes. */
  readonly size: number;
  readonly mediaType: typeof MEDIA_TYPE.ociLayerGzip;
  /** Entries left out (sockets), as relative paths. */
  readonly skipped: readonly string[];
}

const STORED_XATTR = (name: string): boolean =>
  (name.startsWith('user.') && !name.startsWith('user.overlay.')) || name === 'security.capability';
const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];
const REJECTED_XATTRS: Readonly<Record<string, string>> = {
  'trusted.overlay.redirect': 'a renamed directory (overlayfs redirect_dir)',
  'user.overlay.redirect': 'a renamed directory (overlayfs redirect_dir)',
  'trusted.overlay.metacopy': 'a metadata-only copy-up (overlayfs metacopy)',
  'user.overlay.metacopy': 'a metadata-only copy-up (overlayfs metacopy)',
};
const READ_CHUNK_BYTES = 256 << 10;

type Xattrs = Map<string, Map<string, Buffer>>;

/** Bytewise order of UTF-8 names, as C's strcmp and `tar --sort=name`. */
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Decodes getfattr's octal escapes (`\012`, `\134`) in a latin1 view of its bytes. */
const unescapeOctal = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * Every xattr of every path under `root` (relative paths, '' for the root),
 * from one `getfattr -R` run that does not follow symlinks.
 */
export async function readXattrsRecursive(root: string): Promise<Xattrs> {
  const out = await new Promise<Buffer>((resolve, reject) => {
    execFile(
      'getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root],
      { encoding: 'buffer', maxBuffer: 1 << 30 },
      (err, stdout, stderr) => {
        if (err) reject(new RuntimeError('Internal', `getfattr ${root} failed: ${stderr.toString().trim() || err.message}`, { cause: err }));
        else resolve(stdout);
      },
    );
  });
  const byPath: Xattrs = new Map();
  let current: Map<string, Buffer> | undefined;
  const prefix = `${root}/`;
  for (const line of out.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const path = Buffer.from(unescapeOctal(line.slice('# file: '.length)), 'latin1').toString('utf8');
      const rel = path === root ? '' : path.startsWith(prefix) ? path.slice(prefix.length) : undefined;
      current = rel === undefined ? undefined : new Map();
      if (rel !== undefined) byPath.set(rel, current!);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq <= 0) continue;
    const name = Buffer.from(unescapeOctal(line.slice(0, eq)), 'latin1').toString('utf8');
    const value = line.slice(eq + 1);
    current.set(name, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.alloc(0));
  }
  return byPath;
}

class Walker {
  readonly skipped: string[] = [];
  /** `dev:ino` → archive path of the first name written for a multiply-linked inode. */
  private readonly links = new Map<string, string>();
  private readonly exclude: Set<string>;

  constructor(
    private readonly root: string,
    private readonly xattrs: Xattrs,
    private readonly opts: WriteLayerFromDirOptions,
  ) {
    this.exclude = new Set((opts.exclude ?? []).map((p) => p.split('/').filter((x) => x !== '' && x !== '.').join('/')));
  }

  private mtime(st: Stats): number {
    const s = Math.floor(st.mtimeMs / 1000);
    return this.opts.clampMtimeSec === undefined ? s : Math.min(s, this.opts.clampMtimeSec);
  }

  private storedXattrs(rel: string): Record<string, Buffer> | undefined {
    const all = this.xattrs.get(rel);
    if (!all) return undefined;
    for (const [name, why] of Object.entries(REJECTED_XATTRS)) {
      if (all.has(name)) throw new RuntimeError('FailedPrecondition', `${this.what()}: "${rel}" is ${why}, which a layer cannot express`);
    }
    const kept = [...all].filter(([name]) => STORED_XATTR(name) && !/[=\n]/.test(name));
    return kept.length > 0 ? Object.fromEntries(kept) : undefined;
  }

  private what(): string {
    return this.opts.what ?? `layer from ${this.root}`;
  }

  async *entries(rel = ''): AsyncGenerator<TarWriteEntry> {
    const names = (await readdir(rel === '' ? this.root : join(this.root, rel))).sort(byteOrder);
    for (const name of names) {
      this.opts.signal?.throwIfAborted();
      const path = rel === '' ? name : `${rel}/${name}`;
      if (this.exclude.has(path)) continue;
      const st = await lstat(join(this.root, path));
      yield* this.entry(path, name, st);
    }
  }

  private async *entry(path: string, name: string, st: Stats): AsyncGenerator<TarWriteEntry> {
    const parent = path.slice(0, path.length - name.length);
    const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSeconds: this.mtime(st) };
    if (st.isCharacterDevice() && st.rdev === 0) {
      yield { header: { ...base, name: `${parent}.wh.${name}`, type: 'file', mode: 0o600, size: 0 } };
      return;
    }
    if (st.isSocket()) {
      this.skipped.push(path);
      return;
    }
    const xattrs = this.storedXattrs(path);
    const withXattrs = <T extends TarWriteHeader>(h: T): T => (xattrs ? { ...h, xattrs } : h);
    if (st.isDirectory()) {
      yield { header: withXattrs({ ...base, name: path, type: 'directory' }) };
      const all = this.xattrs.get(path);
      if (OPAQUE_XATTRS.some((x) => all?.get(x)?.toString('latin1') === 'y')) {
        yield { header: { ...base, name: `${path}/.wh..wh..opq`, type: 'file', mode: st.mode & 0o777, size: 0 } };
      }
      yield* this.entries(path);
      return;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        yield { header: { ...base, name: path, type: 'hardlink', linkname: first } };
        return;
      }
      this.links.set(key, path);
    }
    if (st.isFile()) {
      yield { header: withXattrs({ ...base, name: path, type: 'file', size: st.size }), body: this.contents(path, st) };
    } else if (st.isSymbolicLink()) {
      yield { header: withXattrs({ ...base, name: path, type: 'symlink', linkname: await readlink(join(this.root, path)) }) };
    } else if (st.isFIFO()) {
      yield { header: withXattrs({ ...base, name: path, type: 'fifo' }) };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const devmajor = Number((BigInt(st.rdev) >> 8n) & 0xfffn) | Number((BigInt(st.rdev) >> 32n) & ~0xfffn);
      const devminor = Number(BigInt(st.rdev) & 0xffn) | Number((BigInt(st.rdev) >> 12n) & ~0xffn);
      yield { header: withXattrs({ ...base, name: path, type: st.isCharacterDevice() ? 'chardev' : 'blockdev', devmajor, devminor }) };
    }
  }

  /** Exactly `st.size` bytes of the file, read through a descriptor proven to be `root/path`. */
  private async *contents(path: string, st: Stats): AsyncGenerator<Uint8Array> {
    const abs = join(this.root, path);
    const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const now = await fh.stat();
      const real = await readlink(`/proc/self/fd/${fh.fd}`);
      if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev || real !== abs)
        throw new RuntimeError('FailedPrecondition', `${this.what()}: "${path}" changed while it was read`);
      let left = st.size;
      while (left > 0) {
        this.opts.signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, left));
        const { bytesRead } = await fh.read(buf, 0, buf.length, st.size - left);
        if (bytesRead === 0) throw new RuntimeError('FailedPrecondition', `${this.what()}: "${path}" shrank while it was read`);
        left -= bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }
}

/**
 * Writes the OCI layer (gzip tar, rules in the module comment) of the upper
 * directory `opts.dir` into the content store, in one pass that computes the
 * diff ID and the blob digest. The blob and diff ID are added to `opts.lease`.
 * Deterministic: the same tree (same contents, modes, owners, mtimes or clamp)
 * gives the same digests.
 *
 * Rejects with `NotFound` (no such directory), `FailedPrecondition` (overlayfs
 * redirects or metacopy in the tree, a file changed under the walk), `Internal`.
 */
export async function writeLayerFromDir(opts: WriteLayerFromDirOptions): Promise<WrittenLayer> {
  const what = opts.what ?? `layer from ${opts.dir}`;
  let root: string;
  try {
    root = await realpath(opts.dir);
    if (!(await lstat(root)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new RuntimeError('NotFound', `${what}: ${opts.dir} is not a directory`, { cause: err });
  }
  const walker = new Walker(root, await readXattrsRecursive(root), opts);
  const diff = new Digester();
  const hashed = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of writeTar(walker.entries())) {
      diff.update(chunk);
      yield chunk;
    }
  };
  const gzip = createGzip({ level: opts.gzipLevel ?? zlibConstants.Z_DEFAULT_COMPRESSION });
  try {
    const written = await opts.store.writeBlob(() => pipeline(Readable.from(hashed()), gzip, () => undefined), {
      what, lease: opts.lease,
      ...(opts.signal && { signal: opts.signal }),
      ...(opts.onBytes && { onBytes: opts.onBytes }),
    });
    const diffId = diff.digest();
    opts.lease.add(diffId);
    return { digest: written.digest, diffId, size: written.size, mediaType: MEDIA_TYPE.ociLayerGzip, skipped: walker.skipped };
  } catch (err) {
    if (isRuntimeError(err) || (err as Error).name === 'AbortError') throw err;
    throw new RuntimeError('Internal', `${what}: ${(err as Error).message}`, { cause: err });
  } finally {
    gzip.destroy();
  }
}

/**
 * COPY and ADD into a mounted root filesystem, with Docker's semantics:
 * a directory source copies its contents; a file source goes to `dest/<name>`
 * when `dest` ends in `/` or is a directory, else to `dest`; several sources
 * need a directory `dest` ending in `/`. Modes and mtimes are kept; owners
 * become `owner` (0:0 for context files unless `--chown`), or are kept for
 * `--from` copies. Symlinks inside copied directories are copied as symlinks.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RuntimeError } from '../cri/errors.ts';
import type { SourceMatch } from './context.ts';
import { mkdirInRoot, resolveInRoot } from './scoped-path.ts';

export interface CopyOptions {
  /** Owner of everything copied; undefined: keep the source's owner. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Permission bits for everything copied (`--chmod`). */
  readonly mode?: number;
  /** Skips paths (relative to the source root) for which this returns true. */
  readonly isIgnored?: (rel: string) => boolean;
}

/** Where a source lands in the root filesystem: the container path, already absolute. */
export function copyDestination(dest: string, workdir: string): { path: string; isDir: boolean } {
  const isDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const abs = dest.startsWith('/') ? dest : `${workdir.replace(/\/+$/, '')}/${dest}`;
  return { path: abs, isDir };
}

/**
 * Copies `sources` into the root filesystem at `rootfs` (a mounted overlay),
 * to the container path `dest` (absolute). Rejects `InvalidArgument` when
 * several sources go to a destination that is not a directory.
 */
export async function copyInto(rootfs: string, sources: readonly SourceMatch[], dest: { path: string; isDir: boolean }, opts: CopyOptions): Promise<void> {
  if (sources.length > 1 && !dest.isDir) {
    throw new RuntimeError('InvalidArgument', 'When using COPY with more than one source file, the destination must be a directory and end with a /');
  }
  for (const src of sources) {
    const st = await lstat(src.host);
    if (st.isDirectory()) {
      const existed = await lstat(await resolveInRoot(rootfs, dest.path)).then(() => true, () => false);
      const target = await mkdirInRoot(rootfs, dest.path);
      if (!existed) await applyMeta(target, st, opts, true);
      await copyChildren(src.host, target, src.rel, opts);
      continue;
    }
    const existing = await resolveInRoot(rootfs, dest.path);
    const existingIsDir = await lstat(existing).then((s) => s.isDirectory(), () => false);
    const path = dest.isDir || existingIsDir ? `${dest.path.replace(/\/+\.?$/, '')}/${basename(src.rel)}` : dest.path;
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    const parentHost = await mkdirInRoot(rootfs, parent);
    await copyEntry(src.host, join(parentHost, basename(path)), src.rel, opts);
  }
}

async function copyChildren(srcDir: string, destDir: string, rel: string, opts: CopyOptions): Promise<void> {
  for (const name of (await readdir(srcDir)).sort()) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    if (opts.isIgnored?.(childRel)) continue;
    await copyEntry(join(srcDir, name), join(destDir, name), childRel, opts);
  }
}

async function copyEntry(src: string, dest: string, rel: string, opts: CopyOptions): Promise<void> {
  const st = await lstat(src);
  const existing = await lstat(dest).catch(() => undefined);
  if (existing && !(existing.isDirectory() && st.isDirectory())) await rm(dest, { recursive: true, force: true });
  if (st.isDirectory()) {
    if (!existing?.isDirectory()) await mkdir(dest);
    await applyMeta(dest, st, opts, true);
    await copyChildren(src, dest, rel, opts);
    await utimes(dest, st.atime, st.mtime);
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dest);
    const owner = opts.owner ?? { uid: st.uid, gid: st.gid };
    await lchown(dest, owner.uid, owner.gid);
    await lutimes(dest, st.atime, st.mtime);
  } else if (st.isFile()) {
    await pipeline(createReadStream(src), createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    await applyMeta(dest, st, opts, false);
  }
  // Sockets, fifos and devices in a context are not copied, as Docker skips them.
}

async function applyMeta(path: string, st: { mode: number; uid: number; gid: number; atime: Date; mtime: Date }, opts: CopyOptions, isDir: boolean): Promise<void> {
  const owner = opts.owner ?? { uid: st.uid, gid: st.gid };
  await lchown(path, owner.uid, owner.gid);
  await chmod(path, opts.mode ?? st.mode & 0o7777);
  if (!isDir) await utimes(path, st.atime, st.mtime);
}

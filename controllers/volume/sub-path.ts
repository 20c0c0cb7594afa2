/**
 * `subPath` of a volume mount: a path inside the volume, never outside it — neither by
 * `..`, nor as an absolute path, nor through a symlink (which a container can plant in a
 * volume it shares).
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** A `subPath` that would leave its volume; the message says how. */
export class SubPathError extends Error {
  override readonly name = 'SubPathError';
}

/**
 * Why `subPath` is not a plain relative path inside a volume (absolute, or with a `..`
 * component), or undefined when it is one. Pure; empty and `.` mean the volume's root.
 */
export function subPathProblem(subPath: string): string | undefined {
  if (subPath.startsWith('/')) return `subPath ${JSON.stringify(subPath)} must be relative to the volume, not absolute`;
  if (subPath.split('/').includes('..')) return `subPath ${JSON.stringify(subPath)} must not contain ".." (it would leave the volume)`;
  if (subPath.includes('\0')) return 'subPath must not contain NUL';
  return undefined;
}

/**
 * The host directory to mount for `subPath` of the volume whose data is at `root`:
 * `root` itself for an empty subPath, else the real path of `root/subPath`, created
 * (mode 0755, as a directory) when missing, as kubelet does. Rejects with `SubPathError`
 * when the path, once symlinks are resolved, is not inside `root`, or is neither a
 * directory nor a regular file.
 *
 * A container sharing the volume could swap a directory for a symlink between this
 * check and the mount; the returned path is fully resolved, so what is mounted is what
 * was checked as long as no component is replaced in that window.
 */
export async function resolveSubPath(root: string, subPath: string | undefined): Promise<string> {
  const realRoot = await realpath(root);
  const rel = (subPath ?? '').split('/').filter((p) => p && p !== '.');
  if (rel.length === 0) return realRoot;
  const problem = subPathProblem(subPath ?? '');
  if (problem) throw new SubPathError(problem);
  const inside = (p: string) => p === realRoot || p.startsWith(realRoot + sep);
  let at = realRoot;
  for (const part of rel) {
    const next = join(at, part);
    const st = await lstat(next).catch(() => undefined);
    if (!st) {
      await mkdir(next, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOTDIR') throw new SubPathError(`subPath ${JSON.stringify(subPath)} goes through a file of the volume`);
        if (err.code !== 'EEXIST') throw err;
      });
    }
    at = await realpath(next);
    if (!inside(at)) throw new SubPathError(`subPath ${JSON.stringify(subPath)} leaves the volume through a symlink`);
  }
  const st = await lstat(at);
  if (!st.isDirectory() && !st.isFile()) throw new SubPathError(`subPath ${JSON.stringify(subPath)} is neither a directory nor a file in the volume`);
  return at;
}

/**
 * Path resolution confined to a root directory (a root filesystem or a build
 * context), as `chroot` would see it: absolute symlink targets and `..` stay
 * inside the root. Used for every path a Dockerfile names, so a symlink in an
 * image or a context can never make the builder read or write host files.
 */
import { chmod, lchown, lstat, mkdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';

const MAX_LINKS = 255;

/** `path` cleaned lexically into root-relative components (`..` clamped at the root). */
export function cleanComponents(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * The host path of `path` inside `root`, following symlinks as if `root` were
 * `/` (the last component too when `followLast`). Components that do not exist
 * are appended as they are. Rejects `InvalidArgument` after too many links.
 */
export async function resolveInRoot(root: string, path: string, followLast = true): Promise<string> {
  const pending = cleanComponents(path);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    const candidate = [...done, part];
    const host = join(root, ...candidate);
    const st = await lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink() && (followLast || pending.length > 0)) {
      if (++links > MAX_LINKS) throw new RuntimeError('InvalidArgument', `too many levels of symbolic links in ${JSON.stringify(path)}`);
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/'));
      // Re-clean: the target may contain `..` that must clamp at the root.
      const rest = [...done, ...pending].join('/');
      done.length = 0;
      pending.length = 0;
      pending.push(...cleanComponents(rest));
      continue;
    }
    done.push(part);
    if (st === undefined && pending.length > 0) {
      // Missing component: the rest cannot be symlinks.
      done.push(...pending.splice(0));
    }
  }
  return done.length === 0 ? root : join(root, ...done);
}

/**
 * Makes directory `path` inside `root` and its missing parents (mode 0755,
 * owner `uid:gid` for the ones created), following symlinks inside the root.
 * Returns the host path. Rejects `InvalidArgument` when a component is not a directory.
 */
export async function mkdirInRoot(root: string, path: string, owner = { uid: 0, gid: 0 }, mode = 0o755): Promise<string> {
  let current = root;
  let sub = '';
  for (const part of cleanComponents(path)) {
    sub = `${sub}/${part}`;
    const host = await resolveInRoot(root, sub);
    const st = await lstat(host).catch(() => undefined);
    if (st === undefined) {
      await mkdir(host);
      await chmod(host, mode);
      await lchown(host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) {
      throw new RuntimeError('InvalidArgument', `cannot create directory ${JSON.stringify(path)}: ${JSON.stringify(sub)} is not a directory`);
    }
    current = host;
  }
  return current;
}

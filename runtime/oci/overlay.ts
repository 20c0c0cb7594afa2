import { spawn } from 'node:child_process';
import { lstat, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';

/** The kernel takes at most one page of mount options; stay well under it. */
const MAX_OPTIONS_BYTES = 3_500;

/**
 * Mounts an overlay at `<dir>/merged` with `<dir>/upper` and `<dir>/work`, and
 * `layerDirs` (bottom layer first) as lowerdirs, top layer leftmost. Runs
 * `mount` from `dir` with relative upper/work paths, and relative lowerdirs too
 * when absolute ones would make the option string too long.
 *
 * @throws RuntimeError `Internal` with mount's message.
 */
export async function mountOverlay(dir: string, layerDirs: readonly string[]): Promise<void> {
  if (layerDirs.length === 0) throw new RuntimeError('InvalidArgument', 'an image needs at least one layer');
  const top = [...layerDirs].reverse();
  let lower = top.join(':');
  if (lower.length > MAX_OPTIONS_BYTES) lower = top.map((l) => relative(dir, l)).join(':');
  const options = `lowerdir=${lower},upperdir=upper,workdir=work`;
  if (options.length > 4_000) throw new RuntimeError('InvalidArgument', `too many layers for one overlay mount (${layerDirs.length})`);
  await runTool('mount', ['-t', 'overlay', 'overlay', '-o', options, 'merged'], dir);
}

/**
 * Options of an overlay over `layerDirs` (bottom first) with `<dir>/upper` and
 * `<dir>/work`, all absolute, for runc to mount as the container's root (see
 * `SpecOptions.rootOverlay`); undefined when they would not fit in one mount's
 * option page (then `mountOverlay` mounts with relative paths on the host).
 */
export function rootOverlayOptions(dir: string, layerDirs: readonly string[]): string | undefined {
  if (layerDirs.length === 0) throw new RuntimeError('InvalidArgument', 'an image needs at least one layer');
  const options = `lowerdir=${[...layerDirs].reverse().join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
  return options.length <= MAX_OPTIONS_BYTES ? options : undefined;
}

/**
 * Reads `relPath` (e.g. `etc/passwd`) as the overlay of `layerDirs` (bottom first)
 * would show it: from the topmost layer that has it; undefined when absent or
 * deleted by a whiteout. (An opaque directory in an upper layer is not looked for.)
 */
export async function readFromLayers(layerDirs: readonly string[], relPath: string): Promise<string | undefined> {
  for (let i = layerDirs.length - 1; i >= 0; i--) {
    const p = join(layerDirs[i]!, relPath);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isFile()) return readFile(p, 'utf8');
    return undefined; // a whiteout (0/0 char device) or not a file
  }
  return undefined;
}

/** Unmounts `<dir>/merged` if mounted (idempotent); lazily when busy. */
export async function unmountOverlay(dir: string): Promise<void> {
  const target = join(dir, 'merged');
  if (!(await isMountPoint(target))) return;
  try {
    await runTool('umount', [target]);
  } catch {
    await runTool('umount', ['-l', target]);
  }
}

/** Whether `path` is a mount point in this mount namespace (from /proc/self/mountinfo). */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPointsUnder(path)).includes(path);
}

/** Mount points at or below `prefix`, from /proc/self/mountinfo. */
export async function mountPointsUnder(prefix: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === prefix || p.startsWith(`${prefix}/`)) out.push(p);
  }
  return out;
}

function runTool(cmd: string, args: readonly string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new RuntimeError('Internal', `${cmd}: ${e.message}`, { cause: e })));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new RuntimeError('Internal', `${cmd} ${args.join(' ')} failed (${code}): ${err.trim()}`)),
    );
  });
}

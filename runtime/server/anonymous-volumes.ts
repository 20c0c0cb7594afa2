import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { Mount } from '../cri/types.ts';
import { mountOverlay, unmountOverlay } from '../oci/overlay.ts';

/** Directory of a container's anonymous volumes, inside its container directory (removed with it). */
export const ANONYMOUS_VOLUMES_DIR = 'volumes';
/** Scratch overlay used while seeding anonymous volumes and filling empty named ones; unmounted and removed before create returns. */
const SEED_DIR = 'volume-seed';

/**
 * The image's `VOLUME` paths that get an anonymous volume: normalized, without
 * duplicates, and without those a mount of the config already covers (same path), as
 * Docker does. Relative paths are rejected.
 *
 * @throws RuntimeError `InvalidArgument` for a relative VOLUME path.
 */
export function anonymousVolumePaths(imageVolumes: readonly string[] | undefined, mounts: readonly Mount[] | undefined): string[] {
  const covered = new Set((mounts ?? []).map((m) => normalize(m.containerPath)));
  const out: string[] = [];
  for (const v of imageVolumes ?? []) {
    if (!v.startsWith('/')) throw new RuntimeError('InvalidArgument', `the image's VOLUME ${JSON.stringify(v)} is not an absolute path`);
    const p = normalize(v);
    if (p === '/' || covered.has(p) || out.includes(p)) continue;
    out.push(p);
  }
  return out;
}

/**
 * Makes one directory per path under `<containerDir>/volumes/<n>` holding what the
 * image has at that path (see `seedFromImage`), with its owner and mode, as Docker
 * seeds an anonymous volume. A path the image lacks gives an empty directory, mode
 * 0755. Resolves with the bind mounts to add. Everything lives in the container
 * directory: removing it removes the volumes.
 */
export async function prepareAnonymousVolumes(containerDir: string, paths: readonly string[], layerDirs: readonly string[]): Promise<Mount[]> {
  if (paths.length === 0) return [];
  const root = join(containerDir, ANONYMOUS_VOLUMES_DIR);
  await mkdir(root, { recursive: true, mode: 0o755 });
  const targets = paths.map((p, i) => ({ path: p, hostPath: join(root, String(i)) }));
  for (const t of targets) await mkdir(t.hostPath, { mode: 0o755 });
  await seedFromImage(containerDir, targets, layerDirs);
  return targets.map((t) => ({ containerPath: t.path, hostPath: t.hostPath, type: 'bind' as const }));
}

/**
 * Fills the host directory of each `copyUp` bind mount that is empty now with what the
 * image has at its container path, as Docker fills a named volume on first use; a
 * directory with anything in it is left alone. Resolves with the container paths filled.
 */
export async function copyUpMounts(containerDir: string, mounts: readonly Mount[], layerDirs: readonly string[]): Promise<string[]> {
  const targets: { path: string; hostPath: string }[] = [];
  for (const m of mounts) {
    if (!m.copyUp || m.type === 'tmpfs' || !m.hostPath) continue;
    const entries = await readdir(m.hostPath).catch(() => undefined);
    if (entries?.length === 0) targets.push({ path: normalize(m.containerPath), hostPath: m.hostPath });
  }
  return seedFromImage(containerDir, targets, layerDirs);
}

/**
 * Copies into each `hostPath` what the image (layers `layerDirs`, bottom first, read
 * through a scratch overlay so whiteouts and opaque directories count) has at `path`,
 * giving it that directory's owner and mode. A path the image lacks, that is not a
 * directory or that is reached through a symlink (which could point out of the image)
 * copies nothing. Leaves no mount behind, also on failure. Resolves with the paths copied.
 */
async function seedFromImage(containerDir: string, targets: readonly { path: string; hostPath: string }[], layerDirs: readonly string[]): Promise<string[]> {
  const inImage = await Promise.all(targets.map((t) => anyLayerHas(layerDirs, t.path)));
  if (!inImage.some(Boolean)) return [];
  const seed = join(containerDir, SEED_DIR);
  const copied: string[] = [];
  await Promise.all(['upper', 'work', 'merged'].map((d) => mkdir(join(seed, d), { recursive: true })));
  try {
    await mountOverlay(seed, layerDirs);
    try {
      const merged = join(seed, 'merged');
      for (const [i, t] of targets.entries()) if (inImage[i] && (await seedFrom(merged, t.path, t.hostPath))) copied.push(t.path);
    } finally {
      await unmountOverlay(seed);
    }
  } finally {
    await rm(seed, { recursive: true, force: true });
  }
  return copied;
}

/** Unmounts a seeding overlay a crash left mounted in `containerDir` (idempotent), so removing the directory never reaches through it. */
export async function unmountAnonymousVolumeSeed(containerDir: string): Promise<void> {
  await unmountOverlay(join(containerDir, SEED_DIR));
}

/**
 * `mounts` ordered so that a mount never hides one at a deeper path made before it:
 * by the number of path components, stable otherwise (Docker sorts its mounts the same way).
 */
export function sortMounts(mounts: readonly Mount[]): Mount[] {
  const depth = (m: Mount) => normalize(m.containerPath).split('/').filter(Boolean).length;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i).map((x) => x.m);
}

const normalize = (p: string): string => {
  const n = posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
};

async function anyLayerHas(layerDirs: readonly string[], path: string): Promise<boolean> {
  for (const l of layerDirs) if (await lstat(join(l, path)).catch(() => undefined)) return true;
  return false;
}

/** Copies the directory at `path` of the merged image into `target`, unless a component of it is a symlink or it is not a directory; resolves with whether it did. */
async function seedFrom(merged: string, path: string, target: string): Promise<boolean> {
  let at = merged;
  for (const part of path.split('/').filter(Boolean)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st || st.isSymbolicLink()) return false;
  }
  const st = await lstat(at);
  if (!st.isDirectory()) return false;
  await copyTree(`${at}/.`, target);
  await chown(target, st.uid, st.gid);
  await chmod(target, st.mode & 0o7777);
  return true;
}

/** `cp -a` (owners, modes, times, links, special files kept; symlinks not followed). */
function copyTree(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cp', ['-a', '--', from, to], (err, _stdout, stderr) => {
      if (err) reject(new RuntimeError('Internal', `filling a volume from the image: cp -a failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve();
    });
  });
}

/**
 * The build context `berth build` uploads: the directory as a tar archive, minus
 * what `.dockerignore` excludes (Docker's rules, by `@balena/dockerignore`), with
 * fixed owners and times so the same tree gives the same digest.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, lstat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { dockerignoreMatcher, parseDockerignore } from '../../runtime/build/context.ts';
import { tarToBuffer } from '../../runtime/images/tar/writer.ts';
import type { TarWriteEntry } from '../../runtime/images/tar/writer.ts';

/** The packed context: the archive and its sha256 digest. */
export interface PackedContext {
  readonly archive: Buffer;
  readonly digest: string;
  /** Paths included, relative to the context, `/`-separated. */
  readonly files: readonly string[];
}

/**
 * Packs `dir` as a tar, honouring `dir/.dockerignore`. The Dockerfile and
 * `.dockerignore` are always sent (as Docker does), even when ignored.
 */
export async function packContext(dir: string, dockerfile = 'Dockerfile'): Promise<PackedContext> {
  const ignoreText = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
  const ignores = dockerignoreMatcher(parseDockerignore(ignoreText));
  const keepAlways = new Set([dockerfile.split(sep).join('/'), '.dockerignore']);
  const entries: TarWriteEntry[] = [];
  const files: string[] = [];
  const walk = async (abs: string): Promise<void> => {
    const names = (await readdir(abs)).sort();
    for (const n of names) {
      const p = join(abs, n);
      const rel = relative(dir, p).split(sep).join('/');
      const st = await lstat(p);
      const ignored = !keepAlways.has(rel) && ignores(rel);
      // An ignored directory may still hold re-included files (`!dir/keep`): descend anyway.
      const header = { name: rel, mode: st.mode & 0o7777, mtimeSeconds: 0, uid: 0, gid: 0 };
      if (st.isDirectory()) {
        if (!ignored) entries.push({ header: { ...header, name: `${rel}/`, type: 'directory' } });
        await walk(p);
      } else if (ignored) {
        continue;
      } else if (st.isSymbolicLink()) {
        entries.push({ header: { ...header, type: 'symlink', linkname: await readlink(p) } });
        files.push(rel);
      } else if (st.isFile()) {
        const body = await readFile(p);
        entries.push({ header: { ...header, type: 'file', size: body.length }, body });
        files.push(rel);
      }
    }
  };
  await walk(dir);
  const archive = await tarToBuffer(entries);
  return { archive, digest: `sha256:${createHash('sha256').update(archive).digest('hex')}`, files };
}

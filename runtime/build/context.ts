/**
 * Build contexts: where a build's files come from, made into one directory on
 * this machine, with `.dockerignore` applied to what COPY and ADD may see.
 *
 * - `dir`: a directory on the server's machine, used in place (never written).
 * - `git`: a local Git repository (bare or not) at a ref, exported with
 *   `git archive` into a temporary directory (optionally only `subPath`).
 * - `tar`: a tar archive (plain or gzip), e.g. uploaded by the CLI, extracted
 *   into a temporary directory with the image store's safe extractor.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import dockerignore from '@balena/dockerignore';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';
import { decompress, extractTar } from '../images/unpack.ts';
import { cleanComponents, resolveInRoot } from './scoped-path.ts';

/** Where the build's files come from. */
export type BuildContext =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'git'; readonly repository: string; readonly ref: string; readonly subPath?: string }
  | { readonly kind: 'tar'; readonly path: string };

/** A context ready to read: a directory plus its ignore rules. Call `dispose` when done. */
export interface PreparedContext {
  /** The context's root directory. */
  readonly root: string;
  /** Whether the `.dockerignore` rules exclude the root-relative path (`a/b`). */
  isIgnored(relPath: string): boolean;
  /** Removes temporary files (nothing for a `dir` context). Idempotent. */
  dispose(): Promise<void>;
}

export interface PrepareContextOptions extends CallOptions {
  /** Parent directory for extracted contexts. */
  readonly tmpDir: string;
  /** The Dockerfile's path in the context, for `<Dockerfile>.dockerignore`. Default `Dockerfile`. */
  readonly dockerfile?: string;
}

/** Parses `.dockerignore` text into patterns (comments and blank lines dropped). */
export function parseDockerignore(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/** A matcher over root-relative paths for `.dockerignore` patterns, with Docker's rules. */
export function dockerignoreMatcher(patterns: readonly string[]): (relPath: string) => boolean {
  if (patterns.length === 0) return () => false;
  // A CommonJS module whose typings claim an ES default export.
  const factory = ((dockerignore as unknown as { default?: typeof dockerignore }).default ?? dockerignore) as unknown as (typeof import('@balena/dockerignore'))['default'];
  const ig = factory().add([...patterns]);
  return (relPath) => relPath !== '' && ig.ignores(relPath);
}

/**
 * Makes `context` readable as a directory. Rejects `NotFound` (no such path,
 * ref or sub-path), `InvalidArgument` (not a directory, hostile archive),
 * `Unavailable` (git not installed).
 */
export async function prepareContext(context: BuildContext, opts: PrepareContextOptions): Promise<PreparedContext> {
  let root: string;
  let tmp: string | undefined;
  if (context.kind === 'dir') {
    const st = await stat(context.path).catch(() => undefined);
    if (!st) throw new RuntimeError('NotFound', `build context ${context.path} does not exist`);
    if (!st.isDirectory()) throw new RuntimeError('InvalidArgument', `build context ${context.path} is not a directory`);
    root = context.path;
  } else {
    tmp = await mkdtemp(join(opts.tmpDir, 'context-'));
    root = tmp;
    try {
      if (context.kind === 'tar') await extractArchive(context.path, tmp, opts);
      else await exportGit(context, tmp, opts);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }
  const dockerfile = opts.dockerfile ?? 'Dockerfile';
  const patterns = (await readFile(join(root, `${dockerfile}.dockerignore`), 'utf8').catch(() => undefined))
    ?? (await readFile(join(root, '.dockerignore'), 'utf8').catch(() => ''));
  const isIgnored = dockerignoreMatcher(parseDockerignore(patterns));
  let disposed = false;
  return {
    root,
    isIgnored,
    dispose: async () => {
      if (disposed || tmp === undefined) return;
      disposed = true;
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

async function extractArchive(path: string, dest: string, opts: CallOptions): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new RuntimeError('NotFound', `build context archive ${path} does not exist`);
  const what = `build context archive ${path}`;
  await extractTar(await decompress(createReadStream(path), what), dest, { what, whiteouts: 'keep', ...(opts.signal && { signal: opts.signal }) });
}

async function exportGit(context: Extract<BuildContext, { kind: 'git' }>, dest: string, opts: CallOptions): Promise<void> {
  const st = await stat(context.repository).catch(() => undefined);
  if (!st?.isDirectory()) throw new RuntimeError('NotFound', `git repository ${context.repository} does not exist (only local repositories are supported)`);
  const sub = context.subPath ? cleanComponents(context.subPath).join('/') : '';
  const treeish = sub === '' ? context.ref : `${context.ref}:${sub}`;
  const what = `git archive ${treeish} of ${context.repository}`;
  const child = spawn('git', ['-C', context.repository, 'archive', '--format=tar', treeish], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.signal && { signal: opts.signal }),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT'
        ? new RuntimeError('Unavailable', 'git is not installed on this machine: cannot use a git build context', { cause: e })
        : e));
    child.on('close', (code) => resolve(code ?? 1));
  });
  let extractError: unknown;
  try {
    await extractTar(child.stdout, dest, { what, whiteouts: 'keep', ...(opts.signal && { signal: opts.signal }) });
  } catch (err) {
    extractError = err;
  }
  const code = await exited;
  if (code !== 0) {
    const msg = stderr.trim();
    const kind = /not a valid object name|not a tree object|path not found|did not match/i.test(msg) ? 'NotFound' : 'InvalidArgument';
    throw new RuntimeError(kind, `${what}: ${msg || `exit ${code}`}`);
  }
  if (extractError) throw extractError;
}

const GLOB = /[*?[\\]/;

/** Go's `filepath.Match` for one path component. */
export function matchComponent(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]!}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return false;
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `^${cls.slice(1).replace(/\\/g, '\\\\')}`;
      else cls = cls.replace(/\\/g, '\\\\');
      re += `[${cls}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(name);
}

/** One matched source: its root-relative path and the host path to read. */
export interface SourceMatch {
  readonly rel: string;
  readonly host: string;
}

/**
 * The sources a COPY/ADD source pattern names under `root` (a context or a
 * root filesystem): wildcards (`*`, `?`, `[…]`) per path component, as Docker
 * matches them; paths `isIgnored` excludes are invisible. A pattern without
 * wildcards that names nothing rejects `NotFound`; one with wildcards may match
 * nothing. Symlinks on the way are followed inside `root`.
 */
export async function matchSources(root: string, pattern: string, isIgnored: (rel: string) => boolean = () => false): Promise<SourceMatch[]> {
  const parts = cleanComponents(pattern);
  const hasGlob = parts.some((p) => GLOB.test(p));
  let current: string[] = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of current) {
      if (!GLOB.test(part)) {
        next.push(base === '' ? part : `${base}/${part}`);
        continue;
      }
      const dir = await resolveInRoot(root, base);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const n of names.sort()) if (matchComponent(part, n)) next.push(base === '' ? n : `${base}/${n}`);
    }
    current = next;
  }
  const out: SourceMatch[] = [];
  for (const rel of current) {
    if (isIgnored(rel)) continue;
    const host = await resolveInRoot(root, rel);
    if (await lstat(host).then(() => true, () => false)) out.push({ rel, host });
  }
  if (out.length === 0 && !hasGlob) throw new RuntimeError('NotFound', `${JSON.stringify(pattern)}: not found in the build context`);
  return out;
}

/**
 * A digest of the files under `match` that are visible (not ignored): relative
 * names, types, permission bits, sizes, contents and link targets. Owners and
 * mtimes are left out, as Docker's cache key leaves them out.
 */
export async function hashSource(match: SourceMatch, isIgnored: (rel: string) => boolean = () => false): Promise<string> {
  const h = createHash('sha256');
  const walk = async (host: string, rel: string, name: string): Promise<void> => {
    const st = await lstat(host);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      h.update(`d ${name} ${mode}\n`);
      for (const n of (await readdir(host)).sort()) {
        const childRel = rel === '' ? n : `${rel}/${n}`;
        if (isIgnored(childRel)) continue;
        await walk(join(host, n), childRel, `${name}/${n}`);
      }
    } else if (st.isSymbolicLink()) {
      h.update(`l ${name} ${await readlink(host)}\n`);
    } else if (st.isFile()) {
      h.update(`f ${name} ${mode} ${st.size} `);
      for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
      h.update('\n');
    } else {
      h.update(`o ${name} ${mode}\n`);
    }
  };
  await walk(match.host, match.rel, '.');
  return h.digest('hex');
}

/**
 * The container verbs that work through a command run in the container (the exec
 * stream of the API): `top` (`ps`), `cp` (`tar c` / `tar x` in the container, GNU tar
 * on this side); `stats`, through the Container's `stats` subresource (the node agent
 * reads the counters, as Docker's daemon does: any image); and the image verbs that
 * work through archives: `history` (the config of the image's export) and `load` (an
 * Image imported from a path the server can read). The image must have `ps` and `tar`
 * for `top` and `cp` (busybox has).
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Container, Image } from '../../api/types/index.ts';
import type { ContainerStatsReport } from '../../controllers/node/container-stats-report.ts';
import { Image as ImageKind } from '../../controllers/framework/resource-kind.ts';
import { readTar } from '../../runtime/images/tar/reader.ts';
import { familiarString, normalizeReference, parseReference } from '../../runtime/images/reference.ts';
import type { Connection } from './connection.ts';
import { FlagError } from './container-spec.ts';
import { findContainer, shortId, VerbError } from './containers.ts';
import { ellipsis, humanDuration, humanSize, renderFormat, renderTable } from './format.ts';
import { findImage } from './images.ts';
import { toImageName } from './login-secrets.ts';
import { execWithStreams, type ExecStatus } from './streams.ts';
import { waitForObject } from './wait.ts';

/** How a command run in a container ended. */
export interface ExecResult {
  readonly code: number;
  /** The Status message when the exec itself failed (not found, refused). */
  readonly message?: string;
}

/** Exit code and message of an exec's final Status. */
export function execResult(status: ExecStatus | undefined): ExecResult {
  if (!status) return { code: 1, message: 'the exec stream ended without a status' };
  if (status.status === 'Success') return { code: 0 };
  const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status.reason === 'NonZeroExitCode' && code !== undefined) return { code: Number(code) };
  return { code: 126, message: status.message ?? 'exec failed' };
}

/** Runs `command` in a running container with the given streams (no TTY); resolves when it ends. */
export async function execWith(conn: Connection, name: string, command: readonly string[], io: { stdout: Writable; stderr?: Writable; stdin?: Readable }): Promise<ExecResult> {
  return execResult(await execWithStreams(conn, name, command, io));
}

/** Runs `command` in the container and collects its output; throws `VerbError` when it fails. */
export async function execCapture(conn: Connection, name: string, command: readonly string[]): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough().on('data', (d: Buffer) => out.push(d));
  const stderr = new PassThrough().on('data', (d: Buffer) => err.push(d));
  const r = await execWith(conn, name, command, { stdout, stderr });
  if (r.code !== 0) throw new VerbError(`${command[0]} in ${name}: ${r.message ?? (Buffer.concat(err).toString('utf8').trim() || `exit code ${r.code}`)}`);
  return Buffer.concat(out).toString('utf8');
}

async function running(conn: Connection, ref: string): Promise<Container> {
  const c = await findContainer(conn, ref);
  if (c.status?.phase !== 'Running') throw new VerbError(`container ${c.metadata.name!} is not running`);
  return c;
}

/** `top CONTAINER [ps OPTIONS]`: `ps` run in the container (busybox's by default: PID USER TIME COMMAND). */
export async function top(conn: Connection, ref: string, psArgs: readonly string[], out: (s: string) => void): Promise<number> {
  const c = await running(conn, ref);
  const text = await execCapture(conn, c.metadata.name!, ['ps', ...psArgs]);
  // Re-align ps's columns as Docker's table; the last column (the command) keeps its spaces.
  const lines = text.split('\n').filter((l) => l.trim());
  const cols = lines[0]?.trim().split(/\s+/).length ?? 1;
  out(renderTable(lines.map((l) => {
    const parts = l.trim().split(/\s+/);
    return [...parts.slice(0, cols - 1), parts.slice(cols - 1).join(' ')];
  })));
  return 0;
}

/** One reading of a container's counters. */
export interface StatsSample {
  readonly atMs: number;
  readonly memBytes: number;
  readonly limitBytes: number;
  /** CPU time used so far, nanoseconds. */
  readonly cpuNs: number;
  readonly pids: number;
  readonly netRxBytes: number;
  readonly netTxBytes: number;
  /** Block devices' bytes read and written; absent: unknown (shown as 0B). */
  readonly blockReadBytes?: number;
  readonly blockWriteBytes?: number;
  readonly cpus: number;
}

/** The `docker stats` fields from two samples (CPU % over the interval, 100% = one core). */
export function statsRow(c: { id: string; name: string }, a: StatsSample, b: StatsSample): Record<string, unknown> {
  const dt = (b.atMs - a.atMs) * 1e6;
  const cpu = dt > 0 ? ((b.cpuNs - a.cpuNs) / dt) * 100 : 0;
  return {
    ID: c.id, Container: c.id, Name: c.name,
    CPUPerc: `${Math.max(0, cpu).toFixed(2)}%`,
    MemUsage: `${humanBinary(b.memBytes)} / ${humanBinary(b.limitBytes)}`,
    MemPerc: `${b.limitBytes > 0 ? ((b.memBytes / b.limitBytes) * 100).toFixed(2) : '0.00'}%`,
    NetIO: `${humanSize(b.netRxBytes)} / ${humanSize(b.netTxBytes)}`,
    BlockIO: `${humanSize(b.blockReadBytes ?? 0)} / ${humanSize(b.blockWriteBytes ?? 0)}`,
    PIDs: String(b.pids),
  };
}

/** Binary sizes as Docker's `units.BytesSize` (`%.4g`): `1.5MiB`, `7.6GiB`. */
export function humanBinary(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = Math.max(0, bytes);
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

const STATS_HEADERS = { ID: 'CONTAINER ID', Container: 'CONTAINER', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };
const STATS_DEFAULT = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

/**
 * A reading of the `stats` subresource as a sample: the time is the node's (both samples
 * of a CPU % come from the same clock), memory is the working set (usage without inactive
 * file pages, as `docker stats` shows it), and the limit is the node's memory when the
 * container has none or a larger one.
 */
export function sampleOf(r: ContainerStatsReport): StatsSample {
  const node = r.memory.nodeBytes;
  const limit = r.memory.limitBytes;
  return {
    atMs: Date.parse(r.timestamp),
    memBytes: r.memory.workingSetBytes,
    limitBytes: limit === undefined || (node > 0 && limit > node) ? node : limit,
    cpuNs: r.cpu.usageNanoseconds,
    pids: r.pids,
    netRxBytes: r.network?.rxBytes ?? 0,
    netTxBytes: r.network?.txBytes ?? 0,
    ...(r.blockIO ? { blockReadBytes: r.blockIO.readBytes, blockWriteBytes: r.blockIO.writeBytes } : {}),
    cpus: r.cpu.onlineCPUs,
  };
}

/** One reading of a Container's `stats` subresource (`GET …/containers/NAME/stats`). */
export async function readStats(conn: Connection, name: string): Promise<ContainerStatsReport> {
  const res = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${encodeURIComponent(conn.namespace)}/containers/${encodeURIComponent(name)}/stats`);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as ContainerStatsReport;
}

/**
 * `stats [--no-stream] [--format] [CONTAINER…]` (default: every running container): two
 * readings of the `stats` subresource a second apart give the CPU %; then one more each
 * second unless `--no-stream`. Without names, a container that stops is left out; a named
 * one that stops is an error.
 */
export async function stats(conn: Connection, refs: readonly string[], flags: { noStream?: boolean; format?: string }, out: (s: string) => void): Promise<number> {
  const { Container: ContainerKind } = await import('../../controllers/framework/resource-kind.ts');
  let ctrs = refs.length ? await Promise.all(refs.map((r) => running(conn, r))) : (await conn.client.list(ContainerKind, { namespace: conn.namespace })).items.filter((c) => c.status?.phase === 'Running');
  const sampleAll = async (): Promise<(StatsSample | undefined)[]> =>
    Promise.all(ctrs.map(async (c) => {
      try {
        return sampleOf(await readStats(conn, c.metadata.name!));
      } catch (err) {
        if (refs.length) throw err;
        return undefined; // stopped or removed since the list
      }
    }));
  let prev = await sampleAll();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const next = await sampleAll();
    const live = ctrs.map((c, i) => ({ c, a: prev[i], b: next[i] })).filter((x): x is { c: Container; a: StatsSample; b: StatsSample } => !!x.a && !!x.b);
    const rows = live.map(({ c, a, b }) => statsRow({ id: shortId(c), name: c.metadata.name! }, a, b));
    const text = renderFormat(flags.format ?? STATS_DEFAULT, rows, STATS_HEADERS);
    out(flags.noStream || !process.stdout.isTTY ? text : `\x1b[2J\x1b[H${text}`);
    if (flags.noStream) return 0;
    ctrs = live.map((x) => x.c);
    prev = live.map((x) => x.b);
  }
}

/** A `cp` argument: `CONTAINER:PATH` or a local path (`-`: a tar stream on stdin/stdout). */
export function parseCpArg(arg: string): { container?: string; path: string } {
  const m = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(.*)$/.exec(arg);
  if (m && !arg.startsWith('/') && !arg.startsWith('.')) return { container: m[1]!, path: m[2]! || '/' };
  return { path: arg };
}

/** Runs GNU tar here; resolves when it exits 0, else rejects with its stderr. */
function localTar(args: readonly string[]): { proc: ReturnType<typeof spawn>; done: Promise<void> } {
  const proc = spawn('tar', [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const done = new Promise<void>((ok, fail) => {
    proc.on('error', fail);
    proc.on('close', (code) => (code === 0 ? ok() : fail(new VerbError(`tar: ${err.trim() || `exit code ${code}`}`))));
  });
  done.catch(() => {}); // awaited by the caller unless the remote side failed first
  return { proc, done };
}

/** The `--transform` that renames an archive's top entry `from` to `to` (GNU tar). */
export const renameTransform = (from: string, to: string): string[] =>
  from === to ? [] : ['--transform', `s|^${from.replace(/[\\|.*[\]^$]/g, (c) => `\\${c}`)}|${to.replace(/[\\|&]/g, (c) => `\\${c}`)}|`];

/**
 * `cp CONTAINER:SRC DEST` and `cp SRC CONTAINER:DEST`, as Docker: into DEST when it is an
 * existing directory, else as DEST; `-` is a tar stream on stdout / stdin. Runs `tar`
 * in the container through the exec stream and GNU tar here.
 */
export async function cp(conn: Connection, srcArg: string, destArg: string, out: Writable = process.stdout, input: Readable = process.stdin): Promise<number> {
  const src = parseCpArg(srcArg);
  const dest = parseCpArg(destArg);
  if (!!src.container === !!dest.container) throw new FlagError('cp: copying between containers or between local paths is not supported: one of SRC and DEST must be CONTAINER:PATH');
  const stderr = new PassThrough();
  const errText: Buffer[] = [];
  stderr.on('data', (d: Buffer) => errText.push(d));
  const fail = (r: ExecResult, what: string) => {
    if (r.code !== 0) throw new VerbError(`${what}: ${r.message ?? (Buffer.concat(errText).toString('utf8').trim() || `exit code ${r.code}`)}`);
  };
  if (src.container) {
    const c = await running(conn, src.container);
    const p = src.path.replace(/\/+$/, '') || '/';
    const contents = p.endsWith('/.');
    const [dir, base] = contents ? [p.slice(0, -2) || '/', '.'] : [dirname(p), basename(p)];
    const remote = ['tar', 'cf', '-', '-C', dir, base];
    if (dest.path === '-') {
      fail(await execWith(conn, c.metadata.name!, remote, { stdout: out, stderr }), `copying ${srcArg}`);
      return 0;
    }
    const target = resolve(dest.path);
    const isDir = await stat(target).then((s) => s.isDirectory(), () => false);
    if (!isDir && !(await stat(dirname(target)).then((s) => s.isDirectory(), () => false))) throw new VerbError(`cp: ${dirname(target)}: no such directory`);
    if (contents && !isDir) await mkdir(target);
    const args = contents || isDir ? ['-x', '-f', '-', '-C', target] : ['-x', '-f', '-', '-C', dirname(target), ...renameTransform(base, basename(target))];
    const t = localTar(['--no-same-owner', ...args]);
    const r = await execWith(conn, c.metadata.name!, remote, { stdout: t.proc.stdin!, stderr });
    t.proc.stdin!.end();
    fail(r, `copying ${srcArg}`);
    await t.done;
    return 0;
  }
  const c = await running(conn, dest.container!);
  const target = dest.path.replace(/\/+$/, '') || '/';
  const probe = await execWith(conn, c.metadata.name!, ['test', '-d', target], { stdout: new PassThrough().resume() });
  const isDir = probe.code === 0;
  const extractIn = isDir ? target : dirname(target);
  const remote = ['tar', 'xf', '-', '-C', extractIn];
  if (src.path === '-') {
    if (!isDir) throw new VerbError(`cp: ${target}: a tar stream is extracted into a directory, and ${target} is not one`);
    fail(await execWith(conn, c.metadata.name!, remote, { stdout: new PassThrough().resume(), stderr, stdin: input }), `copying to ${destArg}`);
    return 0;
  }
  const local = resolve(src.path);
  await stat(local).catch(() => {
    throw new VerbError(`cp: ${src.path}: no such file or directory`);
  });
  const t = localTar(['-c', '-f', '-', '-C', dirname(local), ...(isDir ? [] : renameTransform(basename(local), basename(target))), basename(local)]);
  // Read tar's output at once: Node discards the unread output of a child that exited
  // (and the exec stream only starts reading once its WebSocket is open).
  const body = t.proc.stdout!.pipe(new PassThrough());
  const r = await execWith(conn, c.metadata.name!, remote, { stdout: new PassThrough().resume(), stderr, stdin: body });
  await t.done;
  fail(r, `copying to ${destArg}`);
  return 0;
}

/** One entry of an image config's `history`. */
export interface HistoryEntry {
  readonly created?: string;
  readonly created_by?: string;
  readonly comment?: string;
  readonly empty_layer?: boolean;
}

/** The small files and the sizes of every entry of a docker-archive or OCI archive stream. */
async function readArchive(stream: AsyncIterable<Uint8Array>): Promise<{ files: Map<string, Buffer>; sizes: Map<string, number> }> {
  const files = new Map<string, Buffer>();
  const sizes = new Map<string, number>();
  for await (const e of readTar(stream)) {
    const name = e.header.name.replace(/^\.\//, '');
    sizes.set(name, e.header.size);
    if (e.header.type === 'file' && e.header.size <= 4 << 20 && (name.endsWith('.json') || name.startsWith('blobs/') || !name.includes('/'))) {
      const chunks: Buffer[] = [];
      for await (const c of e.body) chunks.push(c);
      const b = Buffer.concat(chunks);
      if (b[0] === 0x7b || b[0] === 0x5b) files.set(name, b);
    }
  }
  return { files, sizes };
}

/** The rows of `history` from a docker-archive's manifest, config and layer sizes: newest first. */
export function historyRows(imageId: string, config: { history?: HistoryEntry[] }, layerSizes: readonly number[], nowMs: number, noTrunc: boolean): Record<string, unknown>[] {
  let layer = 0;
  const rows = (config.history ?? []).map((h) => {
    const size = h.empty_layer ? 0 : (layerSizes[layer++] ?? 0);
    const by = (h.created_by ?? '').replace(/\s+/g, ' ');
    return {
      ID: '<missing>',
      CreatedSince: h.created ? `${humanDuration(nowMs - Date.parse(h.created))} ago` : '<unknown>',
      CreatedAt: h.created ?? '',
      CreatedBy: noTrunc ? by : ellipsis(by, 45),
      Size: humanSize(size),
      Comment: h.comment ?? '',
    };
  }).reverse();
  if (rows[0]) rows[0] = { ...rows[0], ID: noTrunc ? imageId : imageId.replace(/^sha256:/, '').slice(0, 12) };
  return rows;
}

const HISTORY_HEADERS = { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' };
const HISTORY_DEFAULT = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';

/** `history [--no-trunc] [-q] [--format] IMAGE`: the config history of the Image's docker-archive export. */
export async function history(conn: Connection, ref: string, flags: { noTrunc?: boolean; quiet?: boolean; format?: string }, out: (s: string) => void): Promise<number> {
  const img = await findImage(conn, ref);
  const res = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${conn.namespace}/images/${img.metadata.name!}/export?format=docker-archive`);
  const { files, sizes } = await readArchive(res);
  const manifest = JSON.parse(files.get('manifest.json')?.toString('utf8') ?? '[]') as { Config: string; Layers: string[] }[];
  const m = manifest[0];
  if (!m || !files.has(m.Config)) throw new VerbError(`history ${ref}: the image export has no config`);
  const config = JSON.parse(files.get(m.Config)!.toString('utf8')) as { history?: HistoryEntry[] };
  const rows = historyRows(img.status?.id ?? `sha256:${m.Config.replace(/^blobs\/sha256\//, '').replace(/\.json$/, '')}`, config, m.Layers.map((l) => sizes.get(l) ?? 0), Date.now(), flags.noTrunc ?? false);
  out(flags.quiet ? rows.map((r) => `${r.ID as string}\n`).join('') : renderFormat(flags.format ?? HISTORY_DEFAULT, rows, HISTORY_HEADERS));
  return 0;
}

/** The references an archive names: docker-archive `RepoTags`, else OCI `index.json` ref annotations. */
export function archiveTags(files: ReadonlyMap<string, Buffer>): string[] {
  const manifest = files.get('manifest.json');
  if (manifest) return (JSON.parse(manifest.toString('utf8')) as { RepoTags?: string[] | null }[]).flatMap((m) => m.RepoTags ?? []);
  const index = files.get('index.json');
  if (!index) return [];
  return ((JSON.parse(index.toString('utf8')) as { manifests?: { annotations?: Record<string, string> }[] }).manifests ?? [])
    .map((m) => m.annotations?.['io.containerd.image.name'] ?? m.annotations?.['org.opencontainers.image.ref.name'])
    .filter((x): x is string => !!x && /[:@/]/.test(x));
}

/** The `index.json` of an OCI image layout directory, for `archiveTags`; another directory is refused. */
async function layoutFiles(dir: string, shown: string): Promise<Map<string, Buffer>> {
  const index = await readFile(join(dir, 'index.json')).catch(() => undefined);
  if (!index) throw new Error(`load: ${shown} is a directory without index.json: give a docker-archive or OCI archive, or an OCI image layout directory`);
  return new Map([['index.json', index]]);
}

/**
 * `load [-i FILE|DIR]`: an Image importing the archive (docker-archive or OCI), or an
 * OCI image layout directory as `podman load` takes, tagged with the references it
 * names. The server reads it itself, so it must be on the server's machine; stdin is
 * first written to a temporary file there.
 */
export async function load(conn: Connection, input: string | undefined, flags: { quiet?: boolean }, out: (s: string) => void): Promise<number> {
  let path = input ? resolve(input) : '';
  let tmp: string | undefined;
  try {
    if (!input) {
      if (process.stdin.isTTY) throw new VerbError('requested load from stdin, but stdin is empty');
      tmp = await mkdtemp(join(tmpdir(), 'berth-load-'));
      path = join(tmp, 'image.tar');
      await pipeline(process.stdin, createWriteStream(path));
    }
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new Error(`load: open ${input}: no such file or directory`) : err;
    });
    const files = st.isDirectory() ? await layoutFiles(path, input ?? path) : (await readArchive(createReadStream(path))).files;
    const tags = [...new Set(archiveTags(files).map((t) => {
      try {
        return familiarString(parseReference(normalizeReference(t)));
      } catch {
        return t;
      }
    }))];
    const name = tags.length ? toImageName(tags[0]!) : `load-${Date.now().toString(36)}`;
    const img = await conn.client.apply<Image>({
      apiVersion: 'berth.dev/v1', kind: 'Image',
      metadata: { name, namespace: conn.namespace },
      spec: { source: { import: { path } }, ...(tags.length ? { tags } : {}) },
    }, { force: true });
    const gen = img.metadata.generation ?? 1;
    const done = await waitForObject(conn, ImageKind, name, (i) => {
      if (!i) throw new VerbError(`image ${name} was deleted`);
      if ((i.status?.observedGeneration ?? 0) < gen) return false;
      if (i.status?.phase === 'Failed') throw new VerbError(`load: ${i.status.message ?? 'import failed'}`);
      return i.status?.phase === 'Ready';
    }, { timeoutMs: 600_000 });
    out(tags.length ? tags.map((t) => `Loaded image: ${t}\n`).join('') : `Loaded image ID: ${done!.status?.id ?? ''}\n`);
    return 0;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

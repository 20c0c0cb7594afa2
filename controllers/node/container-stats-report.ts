/**
 * What the `stats` subresource of a Container answers (`docker stats`' raw material):
 * the runtime's `containerStats` (CPU, memory, pids) plus the network and block I/O
 * counters the agent reads on the host, as Docker's daemon does — the container's
 * network namespace (`/proc/PID/net/dev`) and its blkio cgroup. Nothing is run
 * inside the container, so images without a shell work.
 */
import { readFile, readlink } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ContainerStats, ContainerStatus } from '../../runtime/cri/types.ts';

/** One reading of a container's counters, as the `stats` subresource sends it (one JSON object, or one per line with `stream=true`). */
export interface ContainerStatsReport {
  readonly kind: 'ContainerStats';
  readonly apiVersion: 'berth.dev/v1';
  readonly metadata: { readonly namespace: string; readonly name: string };
  /** The runtime container's ID. */
  readonly id: string;
  /** When the counters were read, RFC3339 with milliseconds (Docker's `read`). */
  readonly timestamp: string;
  readonly cpu: {
    /** CPU time used so far, nanoseconds (Docker's `cpu_stats.cpu_usage.total_usage`). */
    readonly usageNanoseconds: number;
    /** The node's CPUs (Docker's `online_cpus`). */
    readonly onlineCPUs: number;
  };
  readonly memory: {
    /** The cgroup's usage, page cache included. */
    readonly usageBytes: number;
    /** Usage without inactive file pages: what `docker stats` shows as MEM USAGE. */
    readonly workingSetBytes: number;
    /** The container's memory limit; absent when unlimited. */
    readonly limitBytes?: number;
    /** The node's memory: the limit `docker stats` shows for an unlimited container. */
    readonly nodeBytes: number;
  };
  /** Processes in the container (`pids.current`). */
  readonly pids: number;
  /** Bytes through the container's network interfaces but loopback; absent on the host's network or when unreadable. */
  readonly network?: IoPair<'rxBytes', 'txBytes'>;
  /** Bytes read and written by the container's block devices (blkio cgroup); absent when unreadable. */
  readonly blockIO?: IoPair<'readBytes', 'writeBytes'>;
}

type IoPair<A extends string, B extends string> = { readonly [k in A | B]: number };

/** The counters the runtime does not report, read on the host. */
export interface IoCounters {
  readonly network?: ContainerStatsReport['network'];
  readonly blockIO?: ContainerStatsReport['blockIO'];
}

/** Reads a container's `IoCounters` from its status (its pid); the agent's default is {@link readIoCounters}. */
export type IoCounterReader = (status: ContainerStatus) => Promise<IoCounters>;

/** Builds the report from the runtime's stats, the container's I/O counters and this node's size. */
export function statsReport(
  who: { namespace: string; name: string },
  stats: ContainerStats,
  io: IoCounters,
  node: { cpus: number; memoryBytes: number } = { cpus: availableParallelism(), memoryBytes: totalmem() },
): ContainerStatsReport {
  return {
    kind: 'ContainerStats',
    apiVersion: 'berth.dev/v1',
    metadata: { namespace: who.namespace, name: who.name },
    id: stats.id,
    timestamp: new Date(stats.timestampMs).toISOString(),
    cpu: { usageNanoseconds: Math.round(stats.cpuUsageSecondsTotal * 1e9), onlineCPUs: node.cpus },
    memory: {
      usageBytes: stats.memoryUsageBytes,
      workingSetBytes: stats.memoryWorkingSetBytes,
      ...(stats.memoryLimitBytes !== undefined ? { limitBytes: stats.memoryLimitBytes } : {}),
      nodeBytes: node.memoryBytes,
    },
    pids: stats.pids,
    ...(io.network ? { network: io.network } : {}),
    ...(io.blockIO ? { blockIO: io.blockIO } : {}),
  };
}

/** Where {@link readIoCounters} looks; tests point it at a directory of their own. */
export interface HostPaths {
  readonly proc: string;
  readonly cgroup: string;
}

const HOST: HostPaths = { proc: '/proc', cgroup: '/sys/fs/cgroup' };

/**
 * Network and block I/O counters of the container whose main process is `pid`: none
 * unless `/proc/PID/cgroup` names the container's ID (so a reused pid, or a pid a fake
 * runtime made up, reads nothing). Network from `/proc/PID/net/dev` (loopback left
 * out), unless the process shares this agent's network namespace (the host's network,
 * where Docker reports none either); block I/O from the blkio cgroup v1
 * (`blkio.throttle.io_service_bytes_recursive`) or the v2 `io.stat`.
 */
export async function readIoCounters(id: string, pid: number | undefined, paths: HostPaths = HOST): Promise<IoCounters> {
  if (!pid) return {};
  const cgroups = parseProcCgroup(await readFile(join(paths.proc, String(pid), 'cgroup'), 'utf8').catch(() => ''));
  if (![...cgroups.values()].some((p) => p.split('/').includes(id))) return {};
  const [network, blockIO] = await Promise.all([readNetwork(pid, paths), readBlockIO(cgroups, paths)]);
  return { ...(network ? { network } : {}), ...(blockIO ? { blockIO } : {}) };
}

async function readNetwork(pid: number, paths: HostPaths): Promise<IoCounters['network']> {
  const [theirs, ours] = await Promise.all([
    readlink(join(paths.proc, String(pid), 'ns/net')).catch(() => undefined),
    readlink(join(paths.proc, 'self/ns/net')).catch(() => undefined),
  ]);
  if (theirs !== undefined && theirs === ours) return undefined;
  const text = await readFile(join(paths.proc, String(pid), 'net/dev'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseNetDev(text);
}

async function readBlockIO(cgroups: ReadonlyMap<string, string>, paths: HostPaths): Promise<IoCounters['blockIO']> {
  const v1 = cgroups.get('blkio');
  if (v1 !== undefined) {
    for (const file of ['blkio.throttle.io_service_bytes_recursive', 'blkio.throttle.io_service_bytes']) {
      const text = await readFile(join(paths.cgroup, 'blkio', v1, file), 'utf8').catch(() => undefined);
      if (text !== undefined) return parseBlkioServiceBytes(text);
    }
    return undefined;
  }
  const v2 = cgroups.get('');
  if (v2 === undefined) return undefined;
  for (const root of [paths.cgroup, join(paths.cgroup, 'unified')]) {
    const text = await readFile(join(root, v2, 'io.stat'), 'utf8').catch(() => undefined);
    if (text !== undefined) return parseIoStat(text);
  }
  return undefined;
}

/** `/proc/PID/cgroup` as controller → path (`blkio` → `/berth/<id>`; the v2 line under ""; `cpu,cpuacct` under each). */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '') out.set('', m[2]!);
    for (const c of m[1]!.split(',')) if (c) out.set(c.replace(/^name=/, ''), m[2]!);
  }
  return out;
}

/** Received and transmitted bytes of every interface in a `/proc/net/dev` but `lo`. */
export function parseNetDev(text: string): { rxBytes: number; txBytes: number } {
  let rxBytes = 0;
  let txBytes = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    rxBytes += f[0] || 0;
    txBytes += f[8] || 0;
  }
  return { rxBytes, txBytes };
}

/** Read and written bytes of a blkio `io_service_bytes` file (`8:0 Read 4096` lines), summed over devices as Docker does. */
export function parseBlkioServiceBytes(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split('\n')) {
    const [dev, op, n] = line.trim().split(/\s+/);
    if (!dev?.includes(':')) continue;
    if (op === 'Read') readBytes += Number(n) || 0;
    else if (op === 'Write') writeBytes += Number(n) || 0;
  }
  return { readBytes, writeBytes };
}

/** Read and written bytes of a cgroup v2 `io.stat` (`8:0 rbytes=4096 wbytes=0 …` lines), summed over devices. */
export function parseIoStat(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const m of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (m[1] === 'r') readBytes += Number(m[2]);
    else writeBytes += Number(m[2]);
  }
  return { readBytes, writeBytes };
}

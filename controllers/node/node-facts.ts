/**
 * What a node agent reports about its machine: capacity (CPU, memory, pids),
 * addresses, kernel, OS and architecture. Read from `/proc`, `/etc/os-release` and
 * `node:os`; every read falls back to `node:os` or leaves the field out, never throws.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Schema } from '../../api/types/index.ts';
import { formatBytes, formatCpus } from '../framework/quantity.ts';

export type NodeAddress = Schema<'NodeAddress'>;
export type NodeInfo = Schema<'NodeInfo'>;

/** Label keys every agent puts on its Node. */
export const LABEL_HOSTNAME = 'berth.dev/hostname';
export const LABEL_OS = 'berth.dev/os';
export const LABEL_ARCH = 'berth.dev/arch';
/** Annotation carrying `/etc/os-release`'s PRETTY_NAME (the schema has no osImage field). */
export const ANNOTATION_OS_IMAGE = 'berth.dev/os-image';

/** The machine as the agent reports it. */
export interface NodeFacts {
  readonly hostname: string;
  /** Quantities: `cpu`, `memory`, `pids`. */
  readonly capacity: Readonly<Record<string, string>>;
  readonly addresses: readonly NodeAddress[];
  readonly nodeInfo: NodeInfo;
  /** `PRETTY_NAME` of /etc/os-release, when readable. */
  readonly osImage?: string;
}

/** Where facts are read from; tests point these at fixtures. */
export interface NodeFactsSources {
  readonly meminfoPath?: string;
  readonly pidMaxPath?: string;
  readonly osReleasePath?: string;
}

/** Go's GOARCH names for Node's `process.arch` names, as Kubernetes labels use them. */
export function toGoArch(arch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** `MemTotal` of a /proc/meminfo text, in bytes; undefined when absent. */
export function memTotalBytes(meminfo: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(meminfo);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** `PRETTY_NAME` of an os-release text, unquoted; undefined when absent. */
export function osPrettyName(osRelease: string): string | undefined {
  const m = /^PRETTY_NAME=(.*)$/m.exec(osRelease);
  if (!m) return undefined;
  return m[1]!.trim().replace(/^(["'])(.*)\1$/, '$2');
}

const readText = (path: string): Promise<string | undefined> => readFile(path, 'utf8').catch(() => undefined);

/** The machine's addresses: its hostname, then its non-internal IPv4 and IPv6 addresses. */
export function machineAddresses(hostname = os.hostname()): NodeAddress[] {
  const out: NodeAddress[] = [{ type: 'Hostname', address: hostname }];
  const seen = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || seen.has(a.address) || (a.family === 'IPv6' && a.address.startsWith('fe80:'))) continue;
      seen.add(a.address);
      out.push({ type: 'InternalIP', address: a.address });
    }
  }
  return out;
}

/** Reads the facts of this machine; `agentVersion` is the berth version to report. */
export async function readNodeFacts(agentVersion: string, sources: NodeFactsSources = {}): Promise<NodeFacts> {
  const hostname = os.hostname();
  const [meminfo, pidMax, osRelease] = await Promise.all([
    readText(sources.meminfoPath ?? '/proc/meminfo'),
    readText(sources.pidMaxPath ?? '/proc/sys/kernel/pid_max'),
    readText(sources.osReleasePath ?? '/etc/os-release'),
  ]);
  const memoryBytes = (meminfo && memTotalBytes(meminfo)) || os.totalmem();
  const capacity: Record<string, string> = { cpu: formatCpus(os.availableParallelism()), memory: formatBytes(memoryBytes) };
  const pids = Number(pidMax?.trim());
  if (Number.isSafeInteger(pids) && pids > 0) capacity.pids = String(pids);
  const osImage = osRelease ? osPrettyName(osRelease) : undefined;
  return {
    hostname,
    capacity,
    addresses: machineAddresses(hostname),
    nodeInfo: { hostname, os: process.platform, architecture: toGoArch(process.arch), kernelVersion: os.release(), agentVersion },
    ...(osImage ? { osImage } : {}),
  };
}

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContainerId, ContainerStats } from '../../runtime/cri/types.ts';
import { parseBlkioServiceBytes, parseIoStat, parseNetDev, parseProcCgroup, readIoCounters, statsReport } from './container-stats-report.ts';

const ID = 'a'.repeat(64);

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     999       9    0    0    0     0          0         0      999       9    0    0    0     0       0          0
  eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0
  eth1:      25       1    0    0    0     0          0         0       75       1    0    0    0     0       0          0
`;

const BLKIO = `8:0 Read 4096
8:0 Write 8192
8:0 Sync 12288
8:0 Async 0
8:0 Total 12288
8:16 Read 100
8:16 Write 0
Total 12388
`;

describe('parsers', () => {
  it('sums every interface but loopback in /proc/net/dev', () => {
    expect(parseNetDev(NET_DEV)).toEqual({ rxBytes: 1525, txBytes: 775 });
  });

  it('sums Read and Write over devices in blkio io_service_bytes, ignoring the totals', () => {
    expect(parseBlkioServiceBytes(BLKIO)).toEqual({ readBytes: 4196, writeBytes: 8192 });
  });

  it('sums rbytes and wbytes over devices in io.stat', () => {
    expect(parseIoStat('8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=0 rios=1 wios=0\n')).toEqual({ readBytes: 15, writeBytes: 20 });
  });

  it('maps /proc/PID/cgroup controllers to paths, v1 joined controllers and the v2 line included', () => {
    const m = parseProcCgroup(`9:name=systemd:/berth/${ID}\n2:cpu,cpuacct:/berth/${ID}\n7:blkio:/x\n0::/y\n`);
    expect(Object.fromEntries(m)).toEqual({ systemd: `/berth/${ID}`, cpu: `/berth/${ID}`, cpuacct: `/berth/${ID}`, blkio: '/x', '': '/y' });
  });
});

describe('statsReport', () => {
  const stats: ContainerStats = { id: ID as ContainerId, timestampMs: Date.UTC(2024, 4, 1, 10), cpuUsageSecondsTotal: 1.5, memoryUsageBytes: 3000, memoryWorkingSetBytes: 2000, pids: 4 };

  it("turns the runtime's stats into nanoseconds and an RFC3339 time, leaving out what it lacks", () => {
    expect(statsReport({ namespace: 'ns', name: 'h16-a' }, stats, {}, { cpus: 2, memoryBytes: 8e9 })).toEqual({
      kind: 'ContainerStats',
      apiVersion: 'berth.dev/v1',
      metadata: { namespace: 'ns', name: 'h16-a' },
      id: ID,
      timestamp: '2024-05-01T10:00:00.000Z',
      cpu: { usageNanoseconds: 1_500_000_000, onlineCPUs: 2 },
      memory: { usageBytes: 3000, workingSetBytes: 2000, nodeBytes: 8e9 },
      pids: 4,
    });
  });

  it('carries the limit and the I/O counters when there are some', () => {
    const r = statsReport({ namespace: 'ns', name: 'h16-a' }, { ...stats, memoryLimitBytes: 1 << 26 }, { network: { rxBytes: 1, txBytes: 2 }, blockIO: { readBytes: 3, writeBytes: 4 } });
    expect(r.memory.limitBytes).toBe(1 << 26);
    expect(r.network).toEqual({ rxBytes: 1, txBytes: 2 });
    expect(r.blockIO).toEqual({ readBytes: 3, writeBytes: 4 });
    expect(r.memory.nodeBytes).toBeGreaterThan(0);
  });
});

describe('readIoCounters', () => {
  let root: string;
  const paths = () => ({ proc: join(root, 'proc'), cgroup: join(root, 'cgroup') });

  /** A fake /proc/PID with the given cgroup file and network namespace link, and /proc/self's. */
  async function proc(pid: number, cgroup: string, netns: string, selfNetns = 'net:[1]'): Promise<void> {
    const dir = join(root, 'proc', String(pid));
    await mkdir(join(dir, 'ns'), { recursive: true });
    await mkdir(join(dir, 'net'), { recursive: true });
    await writeFile(join(dir, 'cgroup'), cgroup);
    await writeFile(join(dir, 'net', 'dev'), NET_DEV);
    await symlink(netns, join(dir, 'ns', 'net'));
    await mkdir(join(root, 'proc', 'self', 'ns'), { recursive: true });
    await symlink(selfNetns, join(root, 'proc', 'self', 'ns', 'net')).catch(() => {});
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-io-counters-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads the network of its namespace and the blkio cgroup v1 of a process in the container', async () => {
    await proc(42, `7:blkio:/berth/${ID}\n4:memory:/berth/${ID}\n0::/berth/${ID}\n`, 'net:[2]');
    await mkdir(join(root, 'cgroup', 'blkio', 'berth', ID), { recursive: true });
    await writeFile(join(root, 'cgroup', 'blkio', 'berth', ID, 'blkio.throttle.io_service_bytes_recursive'), BLKIO);
    expect(await readIoCounters(ID, 42, paths())).toEqual({ network: { rxBytes: 1525, txBytes: 775 }, blockIO: { readBytes: 4196, writeBytes: 8192 } });
  });

  it('reads io.stat on cgroup v2, and no network for a container on the host network', async () => {
    await proc(43, `0::/berth/${ID}\n`, 'net:[1]');
    await mkdir(join(root, 'cgroup', 'berth', ID), { recursive: true });
    await writeFile(join(root, 'cgroup', 'berth', ID, 'io.stat'), '8:0 rbytes=7 wbytes=9 rios=1 wios=1\n');
    expect(await readIoCounters(ID, 43, paths())).toEqual({ blockIO: { readBytes: 7, writeBytes: 9 } });
  });

  it('reads nothing for a pid that is not in the container (reused, or made up), nor for none', async () => {
    await proc(44, '7:blkio:/berth/' + 'b'.repeat(64) + '\n', 'net:[2]');
    expect(await readIoCounters(ID, 44, paths())).toEqual({});
    expect(await readIoCounters(ID, 45, paths())).toEqual({});
    expect(await readIoCounters(ID, undefined, paths())).toEqual({});
  });
});

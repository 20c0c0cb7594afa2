import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock, acquireLocks, HOST_LOCK_DIR, LockedError, lockHostNetwork, processStartTime } from './instance-lock.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'berth-lock-'));
  dirs.push(d);
  return d;
};
const describeHolder = (h: { pid: number; owner: string }) => `held by pid ${h.pid} (${h.owner})`;

/** A pid that is not running: one of a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('acquireLock', () => {
  it('creates the file with this pid and refuses a second holder while it is alive, naming it', async () => {
    const path = join(tempDir(), 'sub', 'berth.pid');
    const lock = await acquireLock(path, 'data dir /a', describeHolder);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ pid: process.pid, startTime: processStartTime(process.pid), owner: 'data dir /a' });
    expect(readdirSync(join(path, '..'))).toEqual(['berth.pid']); // written aside and linked into place: nothing else left
    // another process's view: the same record, held by a live process (this one, another "start")
    writeFileSync(path, JSON.stringify({ pid: process.ppid, startTime: processStartTime(process.ppid), owner: 'data dir /b' }));
    const err = await acquireLock(path, 'data dir /a', describeHolder).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toBe(`held by pid ${process.ppid} (data dir /b)`);
    await lock.release(); // not ours any more: left alone
    expect(existsSync(path)).toBe(true);
  });

  it('takes over a file whose process is gone, whose pid was reused, or that is unreadable; release removes it', async () => {
    const path = join(tempDir(), 'berth.pid');
    for (const stale of [
      JSON.stringify({ pid: deadPid(), startTime: '1', owner: 'gone' }),
      JSON.stringify({ pid: process.ppid, startTime: 'not-its-start-time', owner: 'reused pid' }),
      '{half-writ',
    ]) {
      writeFileSync(path, stale);
      const lock = await acquireLock(path, 'me', describeHolder);
      expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
      await lock.release();
      expect(existsSync(path)).toBe(false);
      await lock.release(); // idempotent
    }
  });

  it('takes all of several locks or none', async () => {
    const dir = tempDir();
    const [a, b] = [join(dir, 'a.pid'), join(dir, 'b.pid')];
    writeFileSync(b, JSON.stringify({ pid: process.ppid, startTime: processStartTime(process.ppid), owner: 'other' }));
    await expect(acquireLocks([a, b], 'me', describeHolder)).rejects.toThrow(/held by pid .* \(other\)/);
    expect(existsSync(a)).toBe(false);
    rmSync(b);
    const both = await acquireLocks([a, b], 'me', describeHolder);
    expect(existsSync(a) && existsSync(b)).toBe(true);
    await both.release();
    expect(existsSync(a) || existsSync(b)).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('lockHostNetwork (as root: files under /run/berth)', () => {
  it("locks the bridge and both nftables tables by name; a second node with any of them is refused, naming the first's data dir", async () => {
    const r = Math.random().toString(16).slice(2, 8);
    const names = { bridge: `blk${r}`, nftTables: [`blk_${r}`, `blk_ports_${r}`] };
    const files = [`bridge-blk${r}.pid`, `nft-blk_${r}.pid`, `nft-blk_ports_${r}.pid`].map((f) => join(HOST_LOCK_DIR, f));
    const lock = await lockHostNetwork(names, '/var/lib/berth-a');
    try {
      expect(files.every((f) => existsSync(f))).toBe(true);
      await expect(lockHostNetwork({ nftTables: [`blk_ports_${r}`] }, '/var/lib/berth-b')).rejects.toThrow(
        `this machine's container networks (nftables tables blk_ports_${r}) are managed by another berth process (pid ${process.pid}, data dir /var/lib/berth-a): run one berth server or agent with a runtime per machine, or stop that one first`,
      );
    } finally {
      await lock.release();
    }
    expect(files.some((f) => existsSync(f))).toBe(false);
  });
});

/**
 * One berth process per data directory and per set of host network names: a second
 * `berth server` on the same data directory would run a second set of controllers on
 * the same database, and one on another data directory but the same bridge and
 * nftables tables would hand out the same addresses and, recovering "its" rules, delete
 * the first one's. Like dockerd's pid file, a lock is a file holding the owner's pid,
 * created exclusively; a file left by a process that is gone (or whose pid now names
 * another process: the start time is recorded too) is taken over.
 */
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** Where host-wide locks live: cleared at boot, like the bridges and tables they guard. */
export const HOST_LOCK_DIR = '/run/berth';

/** What a lock file holds. */
interface LockRecord {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: tells a live owner from a new process with a reused pid. */
  readonly startTime: string;
  /** What the owner is, for the message a second process gets (e.g. its data directory). */
  readonly owner: string;
}

/** A lock this process holds. */
export interface InstanceLock {
  readonly path: string;
  /** Removes the file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/** Refused because another live process holds the lock. */
export class LockedError extends Error {
  constructor(
    readonly path: string,
    readonly holder: { readonly pid: number; readonly owner: string },
    message: string,
  ) {
    super(message);
    this.name = 'LockedError';
  }
}

/** The start time of process `pid` (clock ticks since boot), or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockRecord>;
    if (!Number.isSafeInteger(v.pid) || typeof v.startTime !== 'string' || typeof v.owner !== 'string') return undefined;
    return v as LockRecord;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock file `path` for this process, describing it as `owner`. Throws
 * `LockedError` (message from `describe`) when a live process holds it; a file whose
 * process is gone, or unreadable, is replaced.
 */
export async function acquireLock(path: string, owner: string, describe: (holder: { pid: number; owner: string }) => string): Promise<InstanceLock> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const mine: LockRecord = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', owner };
  const text = `${JSON.stringify(mine)}\n`;
  // written whole to a file of our own, then linked into place: the lock never exists half-written
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      }
      await takeOverIfStale(path, describe);
    }
  } finally {
    await rm(tmp, { force: true });
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      const held = parseRecord(await readFile(path, 'utf8').catch(() => ''));
      if (held?.pid === process.pid && held.startTime === mine.startTime) await rm(path, { force: true });
    },
  };
}

/** Throws `LockedError` when a live process holds `path`; otherwise removes the stale file. */
async function takeOverIfStale(path: string, describe: (holder: { pid: number; owner: string }) => string): Promise<void> {
  const held = parseRecord(await readFile(path, 'utf8').catch(() => ''));
  if (held && processStartTime(held.pid) === held.startTime)
    throw new LockedError(path, { pid: held.pid, owner: held.owner }, describe({ pid: held.pid, owner: held.owner }));
  // stale (its process is gone, or the file is unreadable): remove it and link ours again. Two
  // processes starting in the same instant over a stale file could both get here; that is the
  // one race a pid file (unlike flock, which Node lacks) leaves open.
  await rm(path, { force: true });
}

/** Takes all of `paths` or none: on a refusal the ones taken are released. */
export async function acquireLocks(paths: readonly string[], owner: string, describe: (holder: { pid: number; owner: string }) => string): Promise<InstanceLock> {
  const taken: InstanceLock[] = [];
  try {
    for (const p of paths) taken.push(await acquireLock(p, owner, describe));
  } catch (err) {
    for (const l of taken.reverse()) await l.release();
    throw err;
  }
  return {
    path: paths.join(', '),
    release: async () => {
      for (const l of [...taken].reverse()) await l.release();
    },
  };
}

/** Locks `<dataDir>/berth.pid` for a `berth server` or `berth agent` (`role`) of this data directory. */
export function lockDataDir(dataDir: string, role: string): Promise<InstanceLock> {
  return acquireLock(join(dataDir, 'berth.pid'), `${role}, data dir ${resolve(dataDir)}`, (h) =>
    `the data directory ${resolve(dataDir)} is in use by another berth process (pid ${h.pid}, ${h.owner}): stop it first, or give this one another --data-dir`);
}

/**
 * Locks this machine's container-network names for the node of `dataDir`: the default
 * network's bridge (if any) and the nftables tables of networks and published ports,
 * as `HOST_LOCK_DIR/bridge-NAME.pid` and `nft-NAME.pid`.
 */
export function lockHostNetwork(names: { readonly bridge?: string; readonly nftTables: readonly string[] }, dataDir: string): Promise<InstanceLock> {
  const paths = [...(names.bridge ? [join(HOST_LOCK_DIR, `bridge-${names.bridge}.pid`)] : []), ...names.nftTables.map((t) => join(HOST_LOCK_DIR, `nft-${t}.pid`))];
  const what = [...(names.bridge ? [`bridge ${names.bridge}`] : []), `nftables tables ${names.nftTables.join(' and ')}`].join(', ');
  return acquireLocks(paths, `data dir ${resolve(dataDir)}`, (h) =>
    `this machine's container networks (${what}) are managed by another berth process (pid ${h.pid}, ${h.owner}): run one berth server or agent with a runtime per machine, or stop that one first`);
}

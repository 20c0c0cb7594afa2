/**
 * How busy other work kept this shared machine while a container benchmark ran.
 *
 * The API benchmarks compare the machine's busy time with the server's and their own;
 * that does not work here, because the work of a container start is spread over many
 * short-lived processes (runc, conmon, mount, the container itself) that are not the
 * server's. So this sampler reads every process in `/proc` every 250 ms and sums the
 * CPU of the ones that are *not* ours. Ours: this process and its descendants, and any
 * process whose command line names one of the given markers (our temp directories:
 * conmon and runc carry the data directory, podman its private root) and their
 * descendants. A process's reaped children are counted through its `cutime`/`cstime`,
 * minus what was already counted for them while they were alive.
 */
import fs from 'node:fs';
import os from 'node:os';

const TICKS_PER_SECOND = 100;
const INTERVAL_MS = 250;

interface Proc {
  readonly ppid: number;
  /** utime + stime + cutime + cstime, ticks. */
  readonly totalTicks: number;
  readonly startTicks: number;
  ours: boolean;
}

interface Interval {
  readonly fromAbsMs: number;
  readonly toAbsMs: number;
  /** CPU of other processes in the interval, percent of one core. */
  readonly otherPercent: number;
}

const nowAbsMs = (): number => performance.timeOrigin + performance.now();

function bootTimeAbsMs(): number {
  const btime = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1];
  return Number(btime) * 1000;
}

/** Samples the CPU of other processes until `stop()`. */
export class OtherLoadSampler {
  private prev = new Map<number, Proc>();
  private prevAtAbsMs = nowAbsMs();
  private readonly intervals: Interval[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly bootAbsMs = bootTimeAbsMs();
  private readonly cmdlineOurs = new Map<number, boolean>();

  /** `markers`: substrings of the command line that make a process ours (temp directory paths). */
  constructor(private readonly markers: readonly string[]) {
    this.prev = this.snapshot();
    this.timer = setInterval(() => this.sample(), INTERVAL_MS);
    this.timer.unref();
  }

  private snapshot(): Map<number, Proc> {
    const procs = new Map<number, Proc>();
    let entries: string[];
    try {
      entries = fs.readdirSync('/proc');
    } catch {
      return procs;
    }
    for (const e of entries) {
      const pid = Number(e);
      if (!(pid > 0)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14) … starttime(19)
      // PID 1 reaps every orphan, ours included (conmon daemonizes): its children's time is not its own.
      const reapedTicks = pid === 1 ? 0 : Number(f[13]) + Number(f[14]);
      procs.set(pid, {
        ppid: Number(f[1]),
        totalTicks: Number(f[11]) + Number(f[12]) + reapedTicks,
        startTicks: Number(f[19]),
        ours: false,
      });
    }
    // Ours: this process, processes naming a marker, and everything below them.
    const isOurs = (pid: number, depth = 0): boolean => {
      const p = procs.get(pid);
      if (!p || depth > 64) return false;
      if (pid === process.pid || this.namesMarker(pid)) return true;
      return p.ppid > 1 ? isOurs(p.ppid, depth + 1) : false;
    };
    for (const [pid, p] of procs) p.ours = isOurs(pid);
    return procs;
  }

  private namesMarker(pid: number): boolean {
    let v = this.cmdlineOurs.get(pid);
    if (v === undefined) {
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        // gone
      }
      v = this.markers.some((m) => cmd.includes(m));
      this.cmdlineOurs.set(pid, v);
    }
    return v;
  }

  private sample(): void {
    const now = this.snapshot();
    const at = nowAbsMs();
    const windowStartTicks = ((this.prevAtAbsMs - this.bootAbsMs) / 1000) * TICKS_PER_SECOND;
    // What vanished processes had used when last seen, per nearest surviving ancestor: that
    // ancestor's cutime now includes it (a chain that ended together is reaped upwards).
    const vanishedByAncestor = new Map<number, number>();
    for (const [pid, p] of this.prev) {
      if (now.has(pid)) continue;
      this.cmdlineOurs.delete(pid);
      let a = p.ppid;
      for (let depth = 0; !now.has(a) && this.prev.has(a) && depth < 64; depth++) a = this.prev.get(a)!.ppid;
      vanishedByAncestor.set(a, (vanishedByAncestor.get(a) ?? 0) + p.totalTicks);
    }
    let otherTicks = 0;
    for (const [pid, p] of now) {
      if (p.ours) continue;
      const before = this.prev.get(pid);
      let delta: number;
      if (before && before.startTicks === p.startTicks) delta = p.totalTicks - before.totalTicks - (vanishedByAncestor.get(pid) ?? 0);
      else delta = p.startTicks >= windowStartTicks ? p.totalTicks : 0;
      otherTicks += Math.max(0, delta);
    }
    const seconds = (at - this.prevAtAbsMs) / 1000;
    if (seconds > 0) this.intervals.push({ fromAbsMs: this.prevAtAbsMs, toAbsMs: at, otherPercent: Math.round((otherTicks / TICKS_PER_SECOND / seconds) * 100) });
    this.prev = now;
    this.prevAtAbsMs = at;
  }

  /** Other processes' CPU (percent of one core) over the samples overlapping [fromAbsMs, toAbsMs], time-weighted. */
  otherPercentBetween(fromAbsMs: number, toAbsMs: number): number {
    let weighted = 0;
    let total = 0;
    for (const i of this.intervals) {
      const overlap = Math.min(i.toAbsMs, toAbsMs) - Math.max(i.fromAbsMs, fromAbsMs);
      // a run shorter than one sample still gets the sample it fell into
      const w = overlap > 0 ? overlap : i.fromAbsMs <= fromAbsMs && i.toAbsMs >= toAbsMs ? 1 : 0;
      weighted += w * i.otherPercent;
      total += w;
    }
    return total > 0 ? Math.round(weighted / total) : 0;
  }

  /** Takes a last sample, so that what just finished is covered, and stops. */
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

/** The load averages as printed by `uptime`. */
export const loadAverage = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');

/** Runs `fn` with a sampler; the sampler is stopped (after one last sample) when `fn` settles. */
export async function withLoadSampler<T>(markers: readonly string[], fn: (s: OtherLoadSampler) => Promise<T>): Promise<T> {
  const s = new OtherLoadSampler(markers);
  try {
    return await fn(s);
  } finally {
    s.stop();
  }
}

/** Waits until a last sample covers `untilAbsMs` (the sampler samples every 250 ms). */
export function settleSampler(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, INTERVAL_MS + 20));
}

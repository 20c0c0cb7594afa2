/**
 * Starts and stops `bench/server-child.ts` (a berth server in its own process) and
 * reads its resident memory. The child is killed by PID when the runner exits, even
 * on failure (`cleanup.ts`).
 *
 * The child runs as users run `berth server`: precompiled JavaScript, not TypeScript
 * through tsx (whose loader thread alone costs about 40 MB and some CPU). It is bundled
 * once per runner with the settings of `scripts/build.ts` (the `dist/berth.mjs`
 * bundle), from the sources as they are now, into `dist-bench/` (code finds files
 * such as `package.json` relative to its bundle's location, one level below the root).
 * `BERTH_FROM_SOURCE=1` runs the sources through tsx instead, as it does for `bin/berth.js`.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bundleSync } from '../scripts/bundle.ts';
import type { ApiEndpoint } from './api-client.ts';
import { spawnTracked, stopChild } from './cleanup.ts';
import { readProcessCpuSeconds, readProcessMemory } from './proc.ts';

const CHILD_SOURCE = fileURLToPath(new URL('./server-child.ts', import.meta.url));
const REPO_ROOT = path.resolve(path.dirname(CHILD_SOURCE), '..');
/** The bundled child; also where `profile-top.ts` maps profile lines back to source files. */
export const SERVER_CHILD_BUNDLE = path.join(REPO_ROOT, 'dist-bench', 'bench-server-child.mjs');

let bundled = false;

/** Bundles `server-child.ts` with `scripts/bundle.ts`, as `berth` itself is bundled, into `dist-bench/`. */
function bundleChild(): string {
  if (!bundled) {
    bundleSync({ 'bench-server-child': CHILD_SOURCE }, path.dirname(SERVER_CHILD_BUNDLE));
    bundled = true;
  }
  return SERVER_CHILD_BUNDLE;
}

export interface ServerProcessOptions {
  /** The server's `--data-dir`; kept as is on stop (the caller owns it). */
  readonly dataDir: string;
  /** Write a V8 CPU profile (`.cpuprofile`) of the server to this directory when it stops. */
  readonly cpuProfDir?: string;
  /** Milliseconds to wait for the server to print its address. Default 60,000. */
  readonly startTimeoutMs?: number;
}

/** A running berth server child process. */
export interface ServerProcess extends ApiEndpoint {
  readonly pid: number;
  readonly dataDir: string;
  /** `VmRSS` and `VmHWM` (peak) of the server process from `/proc/PID/status`, in bytes. */
  memory(): { rssBytes: number; peakRssBytes: number };
  /** User + system CPU seconds the server process has used so far (`/proc/PID/stat`). */
  cpuSeconds(): number;
  /** The server's own `process.memoryUsage()`, in bytes. */
  heap(): Promise<NodeJS.MemoryUsage>;
  /** Writes a V8 heap snapshot of the server into `dir`; resolves with its path. */
  heapSnapshot(dir: string): Promise<string>;
  /** Asks the server to run two full garbage collections; resolves when they ran. */
  gc(): Promise<void>;
  /** Closes the server gracefully (SIGKILL after 10 s) and waits for the process to exit. */
  stop(): Promise<void>;
}

/** Starts a berth server child on `dataDir` and resolves once it serves HTTPS. */
export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const fromSource = process.env.BERTH_FROM_SOURCE === '1';
  const nodeArgs = fromSource ? ['--import', 'tsx', '--expose-gc'] : ['--expose-gc'];
  if (opts.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  const entry = fromSource ? CHILD_SOURCE : bundleChild();
  const { child, exited } = spawnTracked(process.execPath, [...nodeArgs, entry, opts.dataDir], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const lines = readline.createInterface({ input: child.stdout! });
  const replies: ((line: string) => void)[] = [];
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const first = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server child did not start within ${startTimeoutMs} ms\n${stderr}`)), startTimeoutMs);
    replies.push((line) => {
      clearTimeout(timer);
      resolve(line);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server child exited (${code}) before serving\n${stderr}`));
    });
  });
  lines.on('line', (line) => replies.shift()?.(line));

  let info: { url: string; token: string; caPath: string; pid: number };
  try {
    info = JSON.parse(await first) as typeof info;
  } catch (err) {
    await stopChild(child, exited, 'SIGKILL', 0);
    throw err;
  }
  const pid = child.pid!;
  const caPem = fs.readFileSync(info.caPath, 'utf8');
  const command = (cmd: string): Promise<string> =>
    new Promise((resolve) => {
      replies.push(resolve);
      child.stdin!.write(`${cmd}\n`);
    });

  return {
    url: info.url,
    token: info.token,
    caPem,
    pid,
    dataDir: opts.dataDir,
    memory: () => readProcessMemory(pid),
    cpuSeconds: () => readProcessCpuSeconds(pid),
    heapSnapshot: async (dir) => (JSON.parse(await command(`heapsnapshot ${dir}`)) as { heapSnapshot: string }).heapSnapshot,
    heap: async () => JSON.parse(await command('mem')) as NodeJS.MemoryUsage,
    gc: async () => {
      await command('gc');
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end('stop\n');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      }, 10_000);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

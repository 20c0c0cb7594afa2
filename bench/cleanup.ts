/**
 * Process-exit safety net for the benchmarks: every child process and temporary
 * directory a benchmark makes is registered here, and whatever is still registered
 * when the runner exits (normally, by an uncaught error, or by SIGINT/SIGTERM/SIGHUP)
 * is killed by PID or removed. Actions are synchronous so that they also run from
 * the `exit` event. The normal path still stops things gracefully and unregisters them.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const actions = new Map<number, () => void>();
let nextId = 0;

/** Registers a synchronous cleanup action; returns a function that unregisters it. */
export function onExit(action: () => void): () => void {
  const id = nextId++;
  actions.set(id, action);
  return () => actions.delete(id);
}

/** Runs and unregisters every registered action, newest first; errors are ignored. */
export function runExitActions(): void {
  for (const [id, action] of [...actions].reverse()) {
    actions.delete(id);
    try {
      action();
    } catch {
      // best effort: the process is going away
    }
  }
}

process.on('exit', runExitActions);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    runExitActions();
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  });
}

/** Makes a temporary directory that is removed at exit unless `remove()` ran first. */
export function makeTempDir(prefix: string): { readonly path: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const unregister = onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    path: dir,
    remove: () => {
      unregister();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Spawns a child process that is sent SIGKILL (by its PID) at exit if it is still
 * running then. `exited` resolves with the exit code (or signal name) once it is gone.
 */
export function spawnTracked(
  command: string,
  args: readonly string[],
  options: SpawnOptions,
): { readonly child: ChildProcess; readonly exited: Promise<number | string> } {
  const child = spawn(command, args, options);
  const pid = child.pid;
  const unregister = onExit(() => {
    if (pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      unregister();
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', () => {
      unregister();
      resolve('spawn-error');
    });
  });
  return { child, exited };
}

/** Sends `signal` to a child by PID, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(
  child: ChildProcess,
  exited: Promise<number | string>,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 5_000,
): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  const kill = (s: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, s);
    } catch {
      // it exited in the meantime
    }
  };
  kill(signal);
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

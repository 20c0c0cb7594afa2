/**
 * V8 settings of berth's long-running processes (`berth server`, `agent`,
 * `controllers`). `--optimize-for-size` makes V8 grow the heap less eagerly and keep
 * less slack: about 25 MB less resident memory for the all-in-one server, measured
 * with no loss of API throughput (bench/README.md). Must run before the heap grows,
 * i.e. first thing in a command; flags set later do not shrink what has grown.
 */
import { createRequire } from 'node:module';

// Loaded when a daemon starts, not by every CLI command (node:v8 pulls in perf_hooks and more).
const requireBuiltin = createRequire(import.meta.url);

let tuned = false;

/** Applies the settings once per process. `BERTH_V8_DEFAULTS=1` leaves V8's defaults (for comparisons). */
export function tuneV8ForDaemon(): void {
  if (tuned || process.env.BERTH_V8_DEFAULTS === '1') return;
  tuned = true;
  (requireBuiltin('node:v8') as typeof import('node:v8')).setFlagsFromString('--optimize-for-size');
}

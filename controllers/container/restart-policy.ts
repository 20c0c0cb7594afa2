/**
 * Docker's restart rules: which exits restart the container, and the back-off
 * between restarts (100 ms doubling, capped at 10 s by default, reset once a run has
 * lasted 10 s).
 */
import type { Container } from '../../api/types/index.ts';

export interface RestartBackoffOptions {
  /** Delay before the first restart. Default 100 ms (Docker's). */
  readonly initialMs?: number;
  /** Largest delay. Default 10 s. */
  readonly maxMs?: number;
  /** A run at least this long resets the back-off. Default 10 s (Docker's). */
  readonly resetAfterMs?: number;
}

/**
 * Whether `spec`'s restart policy restarts a process that exited with `exitCode`
 * (`undefined`: unknown, counted as a failure) after `restarts` restarts: `OnFailure`
 * stops at `restartMaxRetries` (Docker's `on-failure:N`).
 */
export function shouldRestart(spec: Pick<Container['spec'], 'restartPolicy' | 'restartMaxRetries'>, exitCode: number | undefined, restarts: number): boolean {
  switch (spec.restartPolicy ?? 'Always') {
    case 'Always':
      return true;
    case 'OnFailure':
      return exitCode !== 0 && (spec.restartMaxRetries === undefined || restarts < spec.restartMaxRetries);
    case 'Never':
      return false;
  }
}

/**
 * The back-off exponent for the next restart: `step` (consecutive quick restarts so
 * far), or 0 when the run that just ended lasted at least `resetAfterMs`.
 */
export function effectiveBackoffStep(step: number, ranMs: number | undefined, opts: RestartBackoffOptions = {}): number {
  return ranMs !== undefined && ranMs >= (opts.resetAfterMs ?? 10_000) ? 0 : Math.max(0, step);
}

/** The wait before a restart at back-off exponent `step`: `initialMs · 2^step`, at most `maxMs`. */
export function restartDelayMs(step: number, opts: RestartBackoffOptions = {}): number {
  const initial = opts.initialMs ?? 100;
  const max = opts.maxMs ?? 10_000;
  return Math.min(max, initial * 2 ** Math.min(step, 40));
}

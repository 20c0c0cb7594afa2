import type { LogLine } from '../cri/types.ts';

/**
 * Parses one line of the CRI log format conmon writes:
 * `<RFC3339Nano> stdout|stderr F|P <text>`. Returns undefined for a malformed line.
 */
export function parseCriLogLine(line: string): LogLine | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a <= 0 || b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  if (tag !== 'F' && tag !== 'P') return undefined;
  return { timestamp: line.slice(0, a), stream, partial: tag === 'P', text: c < 0 ? '' : line.slice(c + 1) };
}

/** Milliseconds since the epoch of a log line's timestamp (nanoseconds dropped). */
export function logLineTimeMs(line: LogLine): number {
  return Date.parse(line.timestamp);
}

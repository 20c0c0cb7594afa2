/**
 * The process logger every berth role logs through: pino, JSON lines.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { LOG_LEVELS } from './log-levels.ts';

export { LOG_LEVELS, type LogLevel } from './log-levels.ts';

/** Paths whose values pino replaces with `[Redacted]` wherever a log line carries them. */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'authorization',
  'token',
];

export interface LoggerOptions {
  /** One of `LOG_LEVELS`, usually from `--log-level`. */
  readonly level: string;
  /** Logged as `name` on every line, e.g. `apiserver`. */
  readonly name?: string;
  /**
   * Where lines go: a file descriptor or a stream. Default: stderr (fd 2),
   * written synchronously so nothing is lost when the process exits.
   */
  readonly destination?: number | DestinationStream | NodeJS.WritableStream;
}

/**
 * Creates the root logger: one JSON object per line with `level` (number),
 * `time` (ISO 8601), `name` and `msg`, and credentials in `REDACT_PATHS`
 * redacted. Throws a `TypeError` naming the accepted levels when `level` is unknown.
 */
export function createLogger(opts: LoggerOptions): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(opts.level)) {
    throw new TypeError(`unknown log level ${JSON.stringify(opts.level)}: want one of ${LOG_LEVELS.join(', ')}`);
  }
  const dest = opts.destination ?? 2;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino(
    {
      level: opts.level,
      ...(opts.name ? { name: opts.name } : {}),
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS] },
    },
    stream,
  );
}

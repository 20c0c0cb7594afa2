/** Log levels `createLogger` (cli/logger.ts) accepts, most verbose first; apart so that `--log-level` does not load pino. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

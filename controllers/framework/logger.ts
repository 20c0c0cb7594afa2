/**
 * The logger the framework and reconcilers log through. It is the subset of pino's
 * `Logger` the framework uses, so a pino logger (or a child of one) can be passed as is.
 */

/** Structured logging: a bindings object first, then the message. */
export interface Logger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything: the default where none is passed. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

import { constants } from 'node:os';
import { RuntimeError } from '../cri/errors.ts';

/**
 * Normalises a stop signal (`TERM`, `SIGTERM`, `15`) to its `SIG…` name.
 *
 * @throws RuntimeError `InvalidArgument` for a signal Linux does not have.
 */
export function toSignalName(signal: string): string {
  const s = signal.trim().toUpperCase();
  const table = constants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) {
    const name = Object.keys(table).find((k) => table[k] === Number(s));
    if (name) return name;
  } else {
    const name = s.startsWith('SIG') ? s : `SIG${s}`;
    if (name in table) return name;
  }
  throw new RuntimeError('InvalidArgument', `unknown signal "${signal}"`);
}

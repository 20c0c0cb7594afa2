/**
 * Facts the CLI needs before it decides what to load: which container runtime the node agent can use here. Kept free of heavy imports so that
 * `berth server --runtime none` never loads the agent, the controllers or
 * `@kubernetes/client-node`.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONMON } from '../runtime/oci/conmon.ts';
import { DEFAULT_RUNC } from '../runtime/oci/runc.ts';

/** Which runtime the agent drives: the real one, the in-memory fake (tests, benchmarks), or none (no agent). */
export type RuntimeKind = 'runc' | 'fake' | 'none';

/** `runc` when running as root with runc and conmon installed, else `none`. */
export function defaultRuntimeKind(): 'runc' | 'none' {
  return process.getuid?.() === 0 && existsSync(DEFAULT_RUNC) && existsSync(DEFAULT_CONMON) ? 'runc' : 'none';
}

/** Why `defaultRuntimeKind` chose `none`, for the warning. */
export function whyNoRuntime(): string {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(DEFAULT_RUNC)) return `${DEFAULT_RUNC} not found (apt install runc)`;
  return `${DEFAULT_CONMON} not found (apt install conmon)`;
}

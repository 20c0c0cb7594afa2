/**
 * Admission of host bind mounts: a Container (or a Service's container template) may
 * bind-mount only host paths under those the server allows (`berth server
 * --allow-bind-mount`); none by default. A bind mount is a way out of the container,
 * so this is checked where every write passes, not on the node.
 */
import { posix } from 'node:path';
import type { FieldError } from '../errors.ts';
import type { KubeObjectLike } from './resources.ts';

/** Where a kind keeps container specs that can carry `bindMounts`. */
const SPEC_PATHS: Readonly<Record<string, readonly (readonly string[])[]>> = {
  Container: [['spec']],
  Service: [['spec', 'template', 'spec']],
};

/**
 * Errors (reason `FieldValueForbidden`, field `spec.bindMounts[i].hostPath`, the path in
 * the message) for each host path of `obj` that is not absolute and normalized, or not
 * `allowed` (equal to an allowed path or below one). Paths `old` (the stored object, on
 * an update) already had are not checked again, so objects admitted earlier can still be
 * updated (status, finalizers) after the allow-list shrank. Pure.
 */
export function bindMountErrors(kind: string, obj: KubeObjectLike, old: KubeObjectLike | undefined, allowed: readonly string[]): FieldError[] {
  const out: FieldError[] = [];
  for (const path of SPEC_PATHS[kind] ?? []) {
    const had = new Set(bindMountsAt(old, path).map((b) => b.hostPath));
    for (const [i, b] of bindMountsAt(obj, path).entries()) {
      if (had.has(b.hostPath)) continue;
      const field = `${path.join('.')}.bindMounts[${i}].hostPath`;
      const p = b.hostPath;
      if (typeof p !== 'string') continue; // the schema reports it
      const trimmed = (x: string) => x.replace(/(.)\/+$/, '$1');
      if (!p.startsWith('/') || trimmed(posix.normalize(p)) !== trimmed(p)) {
        out.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(p)}: must be an absolute path without "." or ".." components` });
      } else if (!isAllowed(p, allowed)) {
        const why = allowed.length
          ? `host path ${JSON.stringify(p)} is not under a path the server allows to bind-mount (${allowed.map((a) => JSON.stringify(a)).join(', ')})`
          : `host path ${JSON.stringify(p)} may not be bind-mounted: the server allows no host paths (start it with --allow-bind-mount <path>)`;
        out.push({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${why}` });
      }
    }
  }
  return out;
}

/** Whether `path` (absolute, normalized) is one of `allowed` or below one. */
export function isAllowed(path: string, allowed: readonly string[]): boolean {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return allowed.some((a) => {
    const base = posix.normalize(a).replace(/(.)\/+$/, '$1');
    return base === '/' || p === base || p.startsWith(`${base}/`);
  });
}

function bindMountsAt(obj: KubeObjectLike | undefined, path: readonly string[]): { hostPath?: unknown }[] {
  let at: unknown = obj;
  for (const k of path) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[k] : undefined;
  const list = at && typeof at === 'object' ? (at as Record<string, unknown>).bindMounts : undefined;
  return Array.isArray(list) ? (list as { hostPath?: unknown }[]) : [];
}

/**
 * Ordering of resourceVersions. Kubernetes calls them opaque; berth's (and etcd's)
 * are decimal revision numbers of one log, so they compare as integers. Anything
 * else compares only for equality.
 */

/** -1, 0 or 1 when both are decimal integers; 0 when equal strings; `undefined` when unordered. */
export function compareResourceVersions(a: string, b: string): -1 | 0 | 1 | undefined {
  if (a === b) return 0;
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True when `have` is at or after `want`. */
export function isAtOrAfter(have: string | undefined, want: string): boolean {
  if (have === undefined) return false;
  const c = compareResourceVersions(have, want);
  return c !== undefined && c >= 0;
}

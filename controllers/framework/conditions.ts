/**
 * Helpers for `status.conditions` (metav1.Condition), as apimachinery's
 * `meta.SetStatusCondition`: keep `lastTransitionTime` unless the status flips, so
 * that recomputing the same conditions yields an equal status and no write.
 */
import type { Condition } from '../../api/types/index.ts';

/** The condition of `type`, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** An RFC 3339 time with second precision, as metav1.Time serializes. */
export const toConditionTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Returns a copy of `conditions` with `next` set: added, or replacing the condition of
 * the same type. `lastTransitionTime` is kept from the old condition when `status` is
 * unchanged, else set to `nowMs`. Never mutates its input.
 */
export function setCondition(conditions: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, nowMs: number): Condition[] {
  const old = findCondition(conditions, next.type);
  const lastTransitionTime = old && old.status === next.status && old.lastTransitionTime ? old.lastTransitionTime : toConditionTime(nowMs);
  const merged: Condition = { ...next, lastTransitionTime };
  const out = (conditions ?? []).map((c) => (c.type === next.type ? merged : c));
  return old ? out : [...out, merged];
}

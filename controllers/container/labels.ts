/**
 * The labels berth puts on runtime containers, the finalizer of Containers, and the
 * spec hash that decides when a runtime container must be replaced.
 */
import { createHash } from 'node:crypto';
import { stableJson } from '../framework/stable-json.ts';
import type { Container } from '../framework/index.ts';

/** Namespace of the owning Container. */
export const LABEL_NAMESPACE = 'berth.dev/namespace';
/** Name of the owning Container. */
export const LABEL_NAME = 'berth.dev/name';
/** uid of the owning Container: a runtime container whose uid differs belongs to an older object of the same name. */
export const LABEL_UID = 'berth.dev/uid';
/** `metadata.generation` of the Container when the runtime container was created. */
export const LABEL_GENERATION = 'berth.dev/generation';
/** `specHash` of the spec the runtime container was created from. */
export const LABEL_SPEC_HASH = 'berth.dev/spec-hash';
/** The node whose agent created the runtime container. */
export const LABEL_NODE = 'berth.dev/node';
/** `status.restartCount` the runtime container was created with. */
export const LABEL_RESTART_COUNT = 'berth.dev/restart-count';
/** Consecutive quick restarts before this runtime container: the restart back-off exponent. */
export const LABEL_BACKOFF_STEP = 'berth.dev/backoff-step';

/** The Container finalizer: the agent removes the runtime container before the object goes. */
export const RUNTIME_FINALIZER = 'berth.dev/runtime';

/**
 * Spec fields that do not go into the runtime container: changing them never
 * replaces it. `state` is acted on in place; the others are policies read at the time
 * they apply (on exit, on stop, before a create), the binding itself, or the terminal's
 * size at the start (`consoleSize`; a running terminal follows resizes instead).
 */
export const SPEC_FIELDS_NOT_HASHED: readonly string[] = ['state', 'restartPolicy', 'restartMaxRetries', 'autoRemove', 'stopGracePeriodSeconds', 'imagePullPolicy', 'imagePullSecrets', 'nodeName', 'consoleSize'];

/** The labels that find every runtime container of the Container `namespace/name`. */
export const ownerLabels = (namespace: string, name: string): Record<string, string> => ({ [LABEL_NAMESPACE]: namespace, [LABEL_NAME]: name });

/**
 * A short hash of the spec without `SPEC_FIELDS_NOT_HASHED` (keys sorted, so equal specs
 * hash equally whatever their key order). A runtime container whose label differs from
 * the current hash was made from an older spec and is replaced.
 */
export function specHash(spec: Container['spec']): string {
  const rest = Object.fromEntries(Object.entries(spec ?? {}).filter(([k]) => !SPEC_FIELDS_NOT_HASHED.includes(k)));
  return createHash('sha256').update(stableJson(rest)).digest('hex').slice(0, 16);
}

/**
 * What the Image controller last made on this node, recorded on the Image so that a
 * later spec change can be told apart: a change of `spec.source` makes the image
 * again, a change of `spec.tags` only re-tags it and a change of `spec.push` only
 * pushes it. `ImageStatus` has no field for the source it was made from nor for the
 * tags applied in the store, so they live in the annotation `APPLIED_ANNOTATION`
 * (written by the agent, before the status that reports the result).
 */
import { createHash } from 'node:crypto';
import { stableJson } from '../framework/stable-json.ts';
import type { Image } from '../framework/index.ts';

/** Annotation holding the `AppliedImage` JSON. */
export const APPLIED_ANNOTATION = 'berth.dev/applied-image';

/** The image made from a source and the tags put on it in the store. */
export interface AppliedImage {
  /** `sourceHash` of the `spec.source` the image was made from. */
  readonly source: string;
  /** Image ID (config digest) of the result. */
  readonly id: string;
  /** The references it was tagged with (`spec.tags` as written, or `<name>:latest`). */
  readonly tags: readonly string[];
}

/**
 * A hash of `spec.source` (keys sorted; absent and undefined fields alike). All of the
 * source defines the content — import path, pull reference and credentials, build
 * context, Dockerfile, args, target and `noCache`, commit container, pause, changes,
 * message and author — so any change of it makes the image again; `spec.tags` and
 * `spec.push` are not part of it.
 */
export function sourceHash(source: Image['spec']['source'] | undefined): string {
  return `sha256:${createHash('sha256').update(stableJson(source ?? {})).digest('hex')}`;
}

/** The record on `img`, or undefined when absent or unreadable (then the status decides). */
export function appliedOf(img: Image): AppliedImage | undefined {
  const raw = img.metadata.annotations?.[APPLIED_ANNOTATION];
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<AppliedImage>;
    if (typeof v.source !== 'string' || typeof v.id !== 'string' || !Array.isArray(v.tags) || !v.tags.every((t) => typeof t === 'string')) return undefined;
    return { source: v.source, id: v.id, tags: v.tags };
  } catch {
    return undefined;
  }
}

/** The annotation value of `a` (stable: equal records give equal strings). */
export const formatApplied = (a: AppliedImage): string => JSON.stringify({ source: a.source, id: a.id, tags: a.tags });

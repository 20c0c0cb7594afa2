/**
 * What the Image controller last made on this node, kept in the Image's status so that
 * a later spec change can be told apart: a change of `spec.source` makes the image
 * again, a change of `spec.tags` only re-tags it and a change of `spec.push` only
 * pushes it. `status.id` is the image, `status.sourceHash` the source it was made from
 * and `status.tags` the references it carries in the store. Being status, the record
 * survives `kubectl replace` and apply of the spec; it is written as soon as the store
 * holds the image, before the `Ready` that reports it.
 */
import { createHash } from 'node:crypto';
import { stableJson } from '../framework/stable-json.ts';
import type { Image } from '../framework/index.ts';

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

/** The record in `img`'s status, or undefined when it has none (nothing made yet). */
export function appliedOf(img: Image): AppliedImage | undefined {
  const s = img.status;
  if (!s?.id || !s.sourceHash) return undefined;
  return { source: s.sourceHash, id: s.id, tags: s.tags ?? [] };
}

/** `a` as the status fields that record it. */
export const appliedStatus = (a: AppliedImage): { id: string; sourceHash: string; tags: string[] } => ({ id: a.id, sourceHash: a.source, tags: [...a.tags] });

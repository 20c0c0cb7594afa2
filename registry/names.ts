/**
 * Repository names, tags and manifest references as the OCI distribution spec
 * defines them.
 */
import { isDigest, type Digest } from '../runtime/images/digest.ts';
import { digestInvalid, nameInvalid, manifestInvalid } from './errors.ts';

const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** The longest repository name accepted (distribution's limit). */
export const MAX_NAME_LENGTH = 255;

/** True for a valid repository name (`team/busybox`). */
export const isRepositoryName = (s: string): boolean => s.length <= MAX_NAME_LENGTH && NAME.test(s);
/** True for a valid tag. */
export const isTag = (s: string): boolean => TAG.test(s);

/** Returns `name`, or throws `NAME_INVALID`. */
export function toRepositoryName(name: string): string {
  if (!isRepositoryName(name)) throw nameInvalid(`invalid repository name ${JSON.stringify(name)}`, { name });
  return name;
}

/** Returns `s` as a sha256 digest; throws `DIGEST_INVALID` for anything else (other algorithms too). */
export function toBlobDigest(s: string | undefined): Digest {
  if (s !== undefined && isDigest(s)) return s;
  throw digestInvalid(
    s !== undefined && ANY_DIGEST.test(s) ? `unsupported digest algorithm in ${JSON.stringify(s)} (only sha256)` : `invalid digest ${JSON.stringify(s ?? '')}`,
    { digest: s ?? '' },
  );
}

/** A manifest reference from a URL: a tag or a digest. */
export type ManifestReference = { readonly tag: string; readonly digest?: undefined } | { readonly digest: Digest; readonly tag?: undefined };

/** Parses the `<reference>` of `/v2/<name>/manifests/<reference>`; throws `DIGEST_INVALID` or `MANIFEST_INVALID` (bad tag). */
export function toManifestReference(s: string): ManifestReference {
  if (s.includes(':')) return { digest: toBlobDigest(s) };
  if (!isTag(s)) throw manifestInvalid(`invalid tag ${JSON.stringify(s)}`, { tag: s });
  return { tag: s };
}

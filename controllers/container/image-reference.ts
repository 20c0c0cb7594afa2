/**
 * Docker's normalisation of image references, so that `busybox`, `busybox:latest`
 * and `docker.io/library/busybox:latest` name the same image when a Container's
 * `spec.image` is matched against the tags of Image objects.
 */

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';

/**
 * The fully qualified form of a reference: `busybox` → `docker.io/library/busybox:latest`,
 * `127.0.0.1:5000/a/b` → `127.0.0.1:5000/a/b:latest`, `x@sha256:…` keeps its digest and
 * gets no tag. Never throws; a malformed reference comes back trimmed and otherwise as is,
 * so that it only ever equals itself.
 */
export function normalizeImageReference(ref: string): string {
  const s = ref.trim();
  if (s === '' || /\s/.test(s)) return s;
  const at = s.indexOf('@');
  const named = at >= 0 ? s.slice(0, at) : s;
  const digest = at >= 0 ? s.slice(at) : '';
  const lastSlash = named.lastIndexOf('/');
  const colon = named.lastIndexOf(':');
  const hasTag = colon > lastSlash;
  let name = hasTag ? named.slice(0, colon) : named;
  const tag = hasTag ? named.slice(colon + 1) : digest ? '' : 'latest';
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  const isDomain = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let domain = isDomain ? first : DEFAULT_DOMAIN;
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  let path = isDomain ? name.slice(slash + 1) : name;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  name = `${domain}/${path}`;
  return `${name}${tag ? `:${tag}` : ''}${digest}`;
}

/** Whether two references name the same image once normalised. */
export const sameImageReference = (a: string, b: string): boolean => normalizeImageReference(a) === normalizeImageReference(b);

/**
 * Docker image references, parsed and normalised as Docker does
 * (github.com/distribution/reference `ParseNormalizedNamed` + `TagNameOnly`).
 *
 * Words: the *domain* is the registry host (`docker.io`, `127.0.0.1:5000`,
 * `localhost`); the *path* is the repository inside it (`library/busybox`); the
 * *name* is `domain/path`; a reference adds a `:tag`, an `@digest`, or both.
 */
import { RuntimeError } from '../cri/errors.ts';

/** The registry Docker uses when a reference names none. */
export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const PATH_COMPONENT_ANY_CASE_RE = /^[a-zA-Z0-9]+(?:(?:[._]|__|-+)[a-zA-Z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const DIGEST_LENGTHS: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** A parsed, normalised reference. */
export interface ImageReference {
  /** Registry host with optional port, `docker.io` when none was written. */
  readonly domain: string;
  /** Repository path inside the registry, `library/busybox` for Docker Hub official images. */
  readonly path: string;
  readonly tag?: string;
  /** `sha256:<hex>` (or another registered algorithm). */
  readonly digest?: string;
}

const invalid = (input: string, why: string): RuntimeError =>
  new RuntimeError('InvalidArgument', `invalid reference ${JSON.stringify(input)}: ${why}`);

/**
 * Parses a reference as the user wrote it and fills in Docker's defaults (domain
 * `docker.io`, `library/` for official images) but not the `latest` tag: see
 * `normalizeReference`. Rejects with `RuntimeError('InvalidArgument')` naming
 * the bad part (`repository name "Busybox" must be lowercase`, `invalid tag "-x"`).
 */
export function parseReference(input: string): ImageReference {
  if (input === '') throw invalid(input, 'reference is empty');
  if (IDENTIFIER_RE.test(input))
    throw invalid(input, 'cannot specify 64-byte hexadecimal strings as a repository name');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(input, digest);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `invalid tag ${JSON.stringify(tag)}`);
  }
  if (rest === '') throw invalid(input, 'repository name is empty');
  if (rest.length > NAME_TOTAL_LENGTH_MAX)
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);

  const [domain, path] = splitDockerDomain(rest);
  if (!DOMAIN_RE.test(domain)) throw invalid(input, `invalid registry host ${JSON.stringify(domain)}`);
  if (path === '') throw invalid(input, 'repository path is empty');
  for (const component of path.split('/')) {
    if (PATH_COMPONENT_RE.test(component)) continue;
    if (PATH_COMPONENT_ANY_CASE_RE.test(component))
      throw invalid(input, `repository name ${JSON.stringify(path)} must be lowercase`);
    throw invalid(input, `invalid repository path component ${JSON.stringify(component)}`);
  }
  if (domain.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX)
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  return { domain, path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

function validateDigest(input: string, digest: string): void {
  if (!DIGEST_RE.test(digest)) throw invalid(input, `invalid digest ${JSON.stringify(digest)}`);
  const [algorithm, hex] = digest.split(':') as [string, string];
  const want = DIGEST_LENGTHS[algorithm];
  if (want === undefined) throw invalid(input, `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex))
    throw invalid(input, `invalid digest ${JSON.stringify(digest)}: want ${want} lowercase hex characters`);
}

/** distribution/reference `splitDockerDomain`: the first component is a domain only if it looks like one. */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  let domain: string;
  let path: string;
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  return [domain, path];
}

/** `domain/path`, without tag or digest. */
export const referenceName = (r: ImageReference): string => `${r.domain}/${r.path}`;

/** The full string form: `domain/path[:tag][@digest]`. */
export const formatReference = (r: ImageReference): string =>
  `${referenceName(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;

/**
 * Parses and adds the `latest` tag when neither tag nor digest is given
 * (`busybox` → `docker.io/library/busybox:latest`). Rejects as `parseReference`.
 */
export function normalizeReference(input: string): string {
  const r = parseReference(input);
  return formatReference(r.tag === undefined && r.digest === undefined ? { ...r, tag: 'latest' } : r);
}

/**
 * The short form Docker prints (`busybox:latest`, `user/app:1`,
 * `127.0.0.1:5000/a/b:1.2`): the default domain and `library/` left out.
 */
export function familiarString(r: ImageReference): string {
  let name = referenceName(r);
  if (r.domain === DEFAULT_DOMAIN) {
    const official = r.path.startsWith(OFFICIAL_REPO_PREFIX) && !r.path.slice(OFFICIAL_REPO_PREFIX.length).includes('/');
    name = official ? r.path.slice(OFFICIAL_REPO_PREFIX.length) : r.path;
  }
  return `${name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

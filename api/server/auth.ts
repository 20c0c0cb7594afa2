/**
 * Bearer-token authentication for the API server: who is calling, or 401.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { unauthorized } from '../errors.ts';
import { endJson, pathOf, plainNode } from './plain-node.ts';

/** The authenticated caller, as `res.locals.user`. */
export interface AuthUser {
  readonly name: string;
  readonly groups: readonly string[];
}

/** Who a token stands for (its `user` becomes `AuthUser.name`). */
export interface TokenIdentity {
  readonly user: string;
  readonly groups: readonly string[];
}

export interface BearerAuthOptions {
  /** Valid tokens and whom they authenticate. Read once, when `bearerAuth` is called. */
  readonly tokens: ReadonlyMap<string, TokenIdentity>;
  /**
   * Paths served without a token, each matching itself and anything below it
   * (`/healthz` matches `/healthz/ping`). Default: none.
   * See `PUBLIC_INFO_PATHS` for what kube-apiserver serves to anyone.
   */
  readonly anonymousPaths?: readonly string[];
}

/** What kube-apiserver lets unauthenticated clients read (`system:public-info-viewer`). */
export const PUBLIC_INFO_PATHS: readonly string[] = ['/healthz', '/livez', '/readyz', '/version'];

/** `res.locals.user` of a request to an anonymous path that carried no token. */
export const ANONYMOUS_USER: AuthUser = { name: 'system:anonymous', groups: ['system:unauthenticated'] };

/** The group kube-apiserver adds to every authenticated user. */
export const AUTHENTICATED_GROUP = 'system:authenticated';

/** The authenticated caller of a request that went through `bearerAuth`, if any. */
export const userOf = (res: Response): AuthUser | undefined => res.locals.user as AuthUser | undefined;

/**
 * Express middleware that authenticates `Authorization: Bearer <token>` (scheme
 * case-insensitive) against `opts.tokens` and sets `res.locals.user` to the
 * token's identity, with `system:authenticated` added to its groups.
 *
 * A missing or unknown token gets 401 with a Kubernetes `Status` (reason
 * `Unauthorized`), and the request goes no further — except on an anonymous
 * path, where a request *without* an `Authorization` header passes as
 * `ANONYMOUS_USER`. As in kube-apiserver, a request that presents a bad token
 * gets 401 on every path. Tokens are compared as SHA-256 digests with
 * `timingSafeEqual`, against every known token, so timing does not reveal them.
 */
export function bearerAuth(opts: BearerAuthOptions): RequestHandler {
  const known = [...opts.tokens].map(([token, id]) => ({
    digest: sha256(token),
    user: { name: id.user, groups: withGroup(id.groups, AUTHENTICATED_GROUP) } satisfies AuthUser,
  }));
  const anonymous = (opts.anonymousPaths ?? []).map((p) => p.replace(/\/+$/, ''));
  const isAnonymousPath = (path: string): boolean =>
    // a router that normalises `..`, `//` or encoded separators could route these elsewhere
    !UNCLEAN_PATH.test(path) &&
    anonymous.some((p) => (p === '' ? path === '/' : path === p || path.startsWith(`${p}/`)));

  // Node's http API only (see plain-node.ts).
  return plainNode((req, res, next) => {
    const header = req.headers.authorization;
    if (header === undefined && isAnonymousPath(pathOf(req.url))) {
      res.locals.user = ANONYMOUS_USER;
      next();
      return;
    }
    const user = header === undefined ? undefined : lookup(header);
    if (!user) {
      endJson(res, 401, JSON.stringify(unauthorized().toStatus()));
      return;
    }
    res.locals.user = user;
    next();
  });

  function lookup(header: string): AuthUser | undefined {
    const m = /^bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const digest = sha256(m[1]!);
    let found: AuthUser | undefined;
    for (const k of known) {
      // no early exit: every request costs the same number of comparisons
      if (timingSafeEqual(k.digest, digest) && !found) found = k.user;
    }
    return found;
  }
}

const UNCLEAN_PATH = /\/\.{1,2}(\/|$)|\/\/|%2e|%2f|%5c|\\/i;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function withGroup(groups: readonly string[], group: string): readonly string[] {
  return groups.includes(group) ? [...groups] : [...groups, group];
}

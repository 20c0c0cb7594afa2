/**
 * Registry authentication as Docker does it: the registry answers 401 with
 * `WWW-Authenticate`; `Basic` gets the username and password, `Bearer realm=…
 * service=… scope=…` gets a token from the realm (GET with basic credentials,
 * or POST with an OAuth2 refresh token), cached per scope set until it expires.
 * After the first challenge, later requests are authorised up front.
 */
import { RuntimeError } from '../cri/errors.ts';
import type { AuthConfig } from '../cri/types.ts';

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower case: `basic`, `bearer`. */
  readonly scheme: string;
  /** Parameter names lower case, values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235): several challenges, each a
 * scheme and `name=value` or `name="quoted \"value\""` parameters.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    const word = token();
    if (word === '') {
      i++;
      continue;
    }
    let j = i;
    while (j < n && header[j] === ' ') j++;
    if (header[j] === '=' && out.length > 0) {
      // a parameter of the current challenge
      i = j + 1;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ') i++;
        value = header.slice(start, i);
      }
      out[out.length - 1]!.params[word.toLowerCase()] = value;
    } else {
      out.push({ scheme: word.toLowerCase(), params: {} });
    }
  }
  return out;
}

/** The scope a request needs: `repository:<path>:pull` or `…:pull,push`. */
export const repositoryScope = (path: string, actions: readonly ('pull' | 'push')[]): string =>
  `repository:${path}:${actions.join(',')}`;

/**
 * Scopes with the actions of each resource merged, in order of first mention
 * (`repository:a:pull,push` + `repository:a:pull` → `repository:a:pull,push`).
 */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, string[]>();
  for (const s of scopes) {
    const colon = s.lastIndexOf(':');
    if (colon < 0) continue;
    const resource = s.slice(0, colon);
    const actions = byResource.get(resource) ?? [];
    for (const a of s.slice(colon + 1).split(',')) if (a && !actions.includes(a)) actions.push(a);
    byResource.set(resource, actions);
  }
  return [...byResource].map(([r, a]) => `${r}:${a.join(',')}`);
}

/** A token endpoint's answer. */
interface TokenResponse {
  readonly token?: string;
  readonly access_token?: string;
  readonly expires_in?: number;
}

/** Sends a request to a token realm; implemented by `RegistryClient` (same TLS settings). */
export type TokenFetcher = (
  url: URL,
  init: { readonly method: 'GET' | 'POST'; readonly headers: Record<string, string>; readonly body?: string },
) => Promise<{ readonly status: number; readonly body: string }>;

export interface RegistryAuthOptions {
  readonly credentials?: AuthConfig;
  readonly fetchToken: TokenFetcher;
  /** Names the registry in errors. */
  readonly host: string;
  readonly clientId?: string;
  readonly nowMs?: () => number;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAtMs: number;
}

const DEFAULT_TOKEN_SECONDS = 60;

/** The authentication state of one registry client. Not shared between registries. */
export class RegistryAuth {
  private scheme?: 'basic' | 'bearer';
  private realm?: string;
  private service?: string;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly now: () => number;

  constructor(private readonly opts: RegistryAuthOptions) {
    this.now = opts.nowMs ?? Date.now;
  }

  private get credentials(): AuthConfig {
    return this.opts.credentials ?? {};
  }

  /** The `Authorization` value for a request needing `scopes`, or undefined before any challenge. */
  async authorization(scopes: readonly string[]): Promise<string | undefined> {
    const c = this.credentials;
    if (c.registryToken) return `Bearer ${c.registryToken}`;
    if (this.scheme === 'basic') return basicHeader(c);
    if (this.scheme === 'bearer') {
      const key = scopeKey(scopes);
      const cached = this.tokens.get(key);
      if (cached && cached.expiresAtMs > this.now()) return `Bearer ${cached.token}`;
      return `Bearer ${await this.fetchToken(scopes)}`;
    }
    return undefined;
  }

  /**
   * Takes a 401's `WWW-Authenticate` header. Resolves true when a retry with
   * `authorization(scopes)` may succeed (a fresh bearer token, or basic
   * credentials that `sent`, the refused request's `Authorization`, did not carry); false when it cannot (no credentials for basic,
   * basic already refused, a given registry token refused). Callers retry a
   * request once. Rejects `FailedPrecondition` when the token realm refuses the
   * credentials, `Unavailable` when it fails.
   */
  async onChallenge(header: string | undefined, scopes: readonly string[], sent?: string): Promise<boolean> {
    const c = this.credentials;
    if (c.registryToken) return false;
    const challenges = parseWwwAuthenticate(header ?? '');
    const bearer = challenges.find((x) => x.scheme === 'bearer' && x.params.realm);
    const basic = challenges.find((x) => x.scheme === 'basic');
    if (bearer) {
      this.scheme = 'bearer';
      this.realm = bearer.params.realm;
      this.service = bearer.params.service;
      // The registry may name the scope it wants; ask for ours and its.
      const wanted = mergeScopes([...scopes, ...(bearer.params.scope ?? '').split(' ').filter(Boolean)]);
      await this.fetchToken(wanted);
      this.tokens.set(scopeKey(scopes), this.tokens.get(scopeKey(wanted))!);
      return true;
    }
    if (basic) {
      // Concurrent first requests all see the challenge: only a refusal of the credentials themselves is final.
      if (c.username === undefined || c.password === undefined || sent === basicHeader(c)) return false;
      this.scheme = 'basic';
      return true;
    }
    return false;
  }

  private async fetchToken(scopes: readonly string[]): Promise<string> {
    const realm = this.realm;
    if (!realm) throw new RuntimeError('Internal', `registry ${this.opts.host}: bearer token wanted before any challenge`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new RuntimeError('Unavailable', `registry ${this.opts.host}: invalid token realm ${JSON.stringify(realm)}`, { cause: err });
    }
    const c = this.credentials;
    const clientId = this.opts.clientId ?? 'berth';
    let res: { status: number; body: string };
    if (c.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: clientId });
      if (this.service) form.set('service', this.service);
      for (const s of scopes) form.append('scope', s);
      res = await this.opts.fetchToken(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } else {
      if (this.service) url.searchParams.set('service', this.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      const basic = basicHeader(c);
      if (basic) {
        url.searchParams.set('account', c.username!);
        headers.authorization = basic;
      }
      res = await this.opts.fetchToken(url, { method: 'GET', headers });
    }
    if (res.status === 401 || res.status === 403)
      throw new RuntimeError('FailedPrecondition', `registry ${this.opts.host}: unauthorized: the token service ${url.origin}${url.pathname} refused the credentials (HTTP ${res.status})`);
    if (res.status !== 200)
      throw new RuntimeError('Unavailable', `registry ${this.opts.host}: token service ${url.origin}${url.pathname} answered HTTP ${res.status}`);
    let doc: TokenResponse;
    try {
      doc = JSON.parse(res.body) as TokenResponse;
    } catch (err) {
      throw new RuntimeError('Unavailable', `registry ${this.opts.host}: token service answered invalid JSON`, { cause: err });
    }
    const token = doc.token ?? doc.access_token;
    if (typeof token !== 'string' || token === '')
      throw new RuntimeError('Unavailable', `registry ${this.opts.host}: token service answered without a token`);
    const seconds = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a token does not expire between check and use.
    this.tokens.set(scopeKey(scopes), { token, expiresAtMs: this.now() + Math.max(1, seconds - 5) * 1000 });
    return token;
  }
}

const scopeKey = (scopes: readonly string[]): string => [...new Set(scopes)].sort().join(' ');

function basicHeader(c: AuthConfig): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/**
 * Who may do what in the registry, and the token endpoint (`/v2/token`), so that
 * registry clients log in as they do with Docker Hub: a request without credentials
 * gets 401 with a `Bearer` challenge naming the realm; the client fetches a token
 * there with Basic auth (any username, password = an API bearer token) and retries.
 * An API bearer token (and Basic auth with it) is also accepted on every request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { denied, RegistryError, unauthorizedError } from './errors.ts';
import { formatScope, parseScopes, type Access, type TokenSigner } from './token.ts';

/** Who an API token stands for (structurally `api/server/auth.ts`'s `TokenIdentity`). */
export interface RegistryIdentity {
  readonly user: string;
  readonly groups: readonly string[];
}

/**
 * Decides which of `access.actions` `user` may perform on `access`. The default
 * (`defaultRegistryPolicy`) gives members of `system:masters` everything and other
 * authenticated users `pull` on repositories.
 */
export type RegistryPolicy = (user: RegistryIdentity, access: Access) => readonly string[];

/** See `RegistryPolicy`. */
export const defaultRegistryPolicy: RegistryPolicy = (user, access) => {
  if (user.groups.includes('system:masters')) return access.actions.includes('*') ? ['*'] : access.actions;
  return access.type === 'repository' ? access.actions.filter((a) => a === 'pull') : [];
};

export interface RegistryAuthOptions {
  /** Valid API tokens and whom they authenticate (what `bearerAuth` is given). */
  readonly tokens: ReadonlyMap<string, RegistryIdentity>;
  readonly signer: TokenSigner;
  readonly policy?: RegistryPolicy;
  /** Lifetime of issued tokens. Default 300 s, as Docker Hub. */
  readonly tokenTtlSeconds?: number;
  /** The `service` of challenges and the tokens' audience. Default `berth`. */
  readonly service?: string;
}

/** The authenticated caller of a registry request and what it may do. */
export interface RegistryCaller {
  readonly identity: RegistryIdentity;
  /** True when the caller came with a registry token (whose scope is fixed), false with an API token. */
  readonly viaToken: boolean;
  /** Whether the caller may perform `action` on `access.type:access.name`. */
  allows(type: string, name: string, action: string): boolean;
}

/** The token endpoint's response body. */
export interface TokenResponse {
  readonly token: string;
  readonly access_token: string;
  readonly expires_in: number;
  readonly issued_at: string;
}

/** The path of the token endpoint. */
export const TOKEN_PATH = '/v2/token';

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Authentication and authorization of registry requests; see the module comment. */
export class RegistryAuth {
  private readonly known: { digest: Buffer; identity: RegistryIdentity }[];
  private readonly policy: RegistryPolicy;
  private readonly ttlSeconds: number;
  readonly service: string;

  constructor(private readonly opts: RegistryAuthOptions) {
    this.known = [...opts.tokens].map(([t, identity]) => ({ digest: sha256(t), identity }));
    this.policy = opts.policy ?? defaultRegistryPolicy;
    this.ttlSeconds = opts.tokenTtlSeconds ?? 300;
    this.service = opts.service ?? 'berth';
  }

  /** The realm URL for a request, from its `Host` header (the server's own address as the client sees it). */
  realm(req: IncomingMessage): string {
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    return `${proto}://${req.headers.host ?? 'localhost'}${TOKEN_PATH}`;
  }

  /** The `WWW-Authenticate` challenge for a request needing `access` (none for `/v2/`). */
  challenge(req: IncomingMessage, access?: Access, error?: 'insufficient_scope' | 'invalid_token'): string {
    return `Bearer realm="${this.realm(req)}",service="${this.service}"${access ? `,scope="${formatScope(access)}"` : ''}${error ? `,error="${error}"` : ''}`;
  }

  /** The caller of `req`, or undefined when it presents no valid credentials. */
  authenticate(req: IncomingMessage, nowMs = Date.now()): RegistryCaller | undefined {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    const secret = bearer ?? basicPassword(header);
    if (secret === undefined) return undefined;
    const api = this.lookup(secret);
    if (api) return { identity: api, viaToken: false, allows: (type, name, action) => this.permits(api, { type, name, actions: [action] }) };
    if (bearer === undefined) return undefined;
    const claims = this.opts.signer.verify(bearer, this.service, nowMs);
    if (!claims) return undefined;
    const identity = { user: claims.sub, groups: claims.groups ?? [] };
    return {
      identity,
      viaToken: true,
      allows: (type, name, action) =>
        claims.access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*'))),
    };
  }

  /**
   * Throws the right error for a caller lacking `action` on `access`: 401 with a
   * challenge (no credentials, or a token that a new token could widen) or 403 `DENIED`.
   */
  refuse(req: IncomingMessage, caller: RegistryCaller | undefined, access: Access): never {
    if (!caller) throw unauthorizedError('authentication required', [access], { 'WWW-Authenticate': this.challenge(req, access) });
    if (caller.viaToken && access.actions.every((a) => this.permits(caller.identity, { ...access, actions: [a] })))
      throw unauthorizedError('insufficient scope', [access], { 'WWW-Authenticate': this.challenge(req, access, 'insufficient_scope') });
    throw denied(`requested access to ${formatScope(access)} is denied`, [access]);
  }

  /**
   * The token endpoint: `GET /v2/token?service=&scope=…` with Basic (password = API
   * token) or Bearer (API token) credentials, or `POST` with an OAuth2 password grant
   * form. Grants the requested scopes as far as the policy allows; 401 without valid
   * credentials.
   */
  async serveToken(req: IncomingMessage, res: ServerResponse, nowMs = Date.now()): Promise<void> {
    let secret: string | undefined;
    let scopes: string[];
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readSmallBody(req, 64 * 1024));
      if (form.get('grant_type') !== 'password') {
        return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: 'only the password grant is supported' });
      }
      secret = form.get('password') ?? undefined;
      scopes = form.getAll('scope');
    } else if (req.method === 'GET') {
      const header = req.headers.authorization ?? '';
      secret = /^bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? basicPassword(header);
      scopes = url.searchParams.getAll('scope');
    } else {
      res.setHeader('Allow', 'GET, POST');
      return sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST' }] });
    }
    const identity = secret === undefined ? undefined : this.lookup(secret);
    if (!identity) {
      throw new RegistryError('UNAUTHORIZED', 401, 'a valid API token is required as the password', undefined, {
        'WWW-Authenticate': `Basic realm="${this.service}"`,
      });
    }
    const access = parseScopes(scopes)
      .map((a) => ({ ...a, actions: this.policy(identity, a) }))
      .filter((a) => a.actions.length > 0);
    const iat = Math.floor(nowMs / 1000);
    const token = this.opts.signer.sign({
      iss: this.service, sub: identity.user, aud: this.service, iat, nbf: iat, exp: iat + this.ttlSeconds,
      jti: randomBytes(12).toString('base64url'), groups: identity.groups, access,
    });
    const body: TokenResponse = { token, access_token: token, expires_in: this.ttlSeconds, issued_at: new Date(nowMs).toISOString() };
    (res as ServerResponse & { locals?: Record<string, unknown> }).locals ??= {};
    (res as ServerResponse & { locals: Record<string, unknown> }).locals.user = { name: identity.user, groups: identity.groups };
    sendJson(res, 200, body);
  }

  private permits(user: RegistryIdentity, access: Access): boolean {
    const granted = this.policy(user, access);
    return access.actions.every((a) => granted.includes(a) || granted.includes('*'));
  }

  private lookup(token: string): RegistryIdentity | undefined {
    const digest = sha256(token);
    let found: RegistryIdentity | undefined;
    for (const k of this.known) {
      // no early exit: every lookup costs the same number of comparisons
      if (timingSafeEqual(k.digest, digest) && !found) found = k.identity;
    }
    return found;
  }
}

function basicPassword(header: string): string | undefined {
  const m = /^basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

async function readSmallBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) throw new RegistryError('UNSUPPORTED', 413, 'request body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Sends a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

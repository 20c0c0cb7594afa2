/**
 * Registry tokens: short-lived bearer tokens the token endpoint issues and the
 * registry checks, as Docker Hub's token service does. A token is a JWT (HS256)
 * signed with a key kept in the data directory, carrying the access it grants.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

/** The registry actions a token can grant. */
export type RegistryAction = 'pull' | 'push' | 'delete' | '*';

/** One resource scope: `repository:team/busybox:pull,push` or `registry:catalog:*`. */
export interface Access {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** The claims of a registry token. Times in seconds since the epoch, as JWT has them. */
export interface RegistryTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly jti: string;
  /** The API groups of the user the token was issued to (for telling insufficient scope from denial). */
  readonly groups: readonly string[];
  readonly access: readonly Access[];
}

/** Key length in bytes. */
const KEY_BYTES = 32;

/**
 * Parses scope strings (`type:name:actions`, several separated by spaces) as the
 * token endpoint receives them. The name may itself contain `:`; malformed scopes are
 * skipped, as Docker's token servers do.
 */
export function parseScopes(scopes: readonly string[]): Access[] {
  const out: Access[] = [];
  for (const s of scopes.flatMap((x) => x.split(' '))) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first <= 0 || last <= first + 1) continue;
    const type = s.slice(0, first).replace(/\(.*\)$/, '');
    const actions = s.slice(last + 1).split(',').filter((a) => a !== '');
    if (actions.length > 0) out.push({ type, name: s.slice(first + 1, last), actions: [...new Set(actions)] });
  }
  return out;
}

/** Formats one scope for a `WWW-Authenticate` challenge. */
export const formatScope = (a: Access): string => `${a.type}:${a.name}:${a.actions.join(',')}`;

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Signs and verifies registry tokens with one HMAC key. */
export class TokenSigner {
  private constructor(private readonly key: Buffer) {}

  /** A signer with the given key (tests); prefer `open`. */
  static fromKey(key: Buffer): TokenSigner {
    if (key.length < KEY_BYTES) throw new TypeError(`token key must have at least ${KEY_BYTES} bytes`);
    return new TokenSigner(key);
  }

  /**
   * Reads the key at `path`, creating it (32 random bytes, mode 0600, written
   * atomically) when missing. Tokens survive restarts because the key does.
   */
  static async open(path: string): Promise<TokenSigner> {
    try {
      return TokenSigner.fromKey(await readFile(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    await writeFileAtomic(path, key, 0o600);
    return new TokenSigner(key);
  }

  /** A signed token for `claims`. */
  sign(claims: RegistryTokenClaims): string {
    const body = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /**
   * The claims of `token` if it is one this key signed, for audience `aud`, and valid
   * at `nowMs`; undefined otherwise (never throws for bad input).
   */
  verify(token: string, aud: string, nowMs = Date.now()): RegistryTokenClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [h, p, s] = parts as [string, string, string];
    const want = this.mac(`${h}.${p}`);
    const got = Buffer.from(s, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    let claims: RegistryTokenClaims;
    try {
      const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown };
      if (header.alg !== 'HS256') return undefined;
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as RegistryTokenClaims;
    } catch {
      return undefined;
    }
    const now = nowMs / 1000;
    if (claims.aud !== aud || typeof claims.exp !== 'number' || claims.exp <= now || (claims.nbf ?? 0) > now + 60) return undefined;
    if (!Array.isArray(claims.access) || typeof claims.sub !== 'string') return undefined;
    return claims;
  }

  private mac(data: string): Buffer {
    return createHmac('sha256', this.key).update(data).digest();
  }
}

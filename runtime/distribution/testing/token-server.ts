/**
 * A Docker token service (the `realm` of a bearer challenge) for tests: checks
 * basic credentials or an OAuth2 refresh token, and issues RS256 JWTs that the
 * distribution registry's `auth.token` accepts (the signing certificate in
 * `x5c`, trusted through `rootcertbundle`). Listens on 127.0.0.1, port 0.
 */
import { createSign, X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenServerOptions {
  readonly service: string;
  readonly issuer: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly username: string;
  readonly password: string;
  /** Accepted as `refresh_token` on POST. */
  readonly refreshToken: string;
}

export interface TokenRequest {
  readonly method: string;
  readonly service?: string;
  readonly scopes: readonly string[];
  readonly account?: string;
  readonly grantType?: string;
  readonly status: number;
}

export interface TokenServer {
  /** `http://127.0.0.1:<port>/token`. */
  readonly realm: string;
  readonly requests: TokenRequest[];
  close(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const requests: TokenRequest[] = [];
  const der = new X509Certificate(opts.certPem).raw.toString('base64');
  const sign = (account: string, scopes: readonly string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der] }));
    const claims = b64url(JSON.stringify({
      iss: opts.issuer, sub: account, aud: opts.service, exp: now + 300, nbf: now - 10, iat: now,
      jti: `${now}-${Math.random()}`, access,
    }));
    const s = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(opts.keyPem);
    return `${header}.${claims}.${b64url(s)}`;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const params = req.method === 'POST' ? new URLSearchParams(Buffer.concat(chunks).toString()) : url.searchParams;
      let account: string | undefined;
      let ok = false;
      if (req.method === 'POST') {
        ok = params.get('grant_type') === 'refresh_token' && params.get('refresh_token') === opts.refreshToken;
        account = ok ? opts.username : undefined;
      } else {
        const auth = req.headers.authorization ?? '';
        if (auth.startsWith('Basic ')) {
          const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
          ok = u === opts.username && p.join(':') === opts.password;
          account = u;
        }
      }
      const status = ok ? 200 : 401;
      requests.push({
        method: req.method ?? '', scopes: params.getAll('scope'), status,
        ...(params.get('service') && { service: params.get('service')! }),
        ...(params.get('account') && { account: params.get('account')! }),
        ...(params.get('grant_type') && { grantType: params.get('grant_type')! }),
      });
      if (!ok) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      const token = sign(account!, params.getAll('scope'));
      const body = req.method === 'POST' ? { access_token: token, expires_in: 300 } : { token, expires_in: 300 };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

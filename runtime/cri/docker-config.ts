import type { AuthConfig } from './types.ts';

/** An `auths` entry of a Docker config file (`~/.docker/config.json`, a dockerconfigjson Secret). */
export interface DockerAuthEntry {
  username?: string;
  password?: string;
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/**
 * The registry host of a reference as credentials are keyed (Docker's rule): the
 * first path component when it looks like a host (has `.` or `:`, or is `localhost`),
 * else `docker.io`.
 */
export function registryHostOf(reference: string): string {
  const first = reference.split('/')[0]!;
  const isHost = reference.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return isHost ? first : 'docker.io';
}

/** The keys a Docker config may use for `host`, best first. */
function keysFor(host: string): string[] {
  const keys = [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
  if (host === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

/**
 * The credentials a Docker config's `auths` hold for `host` (`username` + `password`,
 * or `auth` = base64 `user:password`, or an identity or registry token); undefined when
 * it has none. Throws `Error` naming `what` for an `auth` that is not `user:password`.
 */
export function credentialsForHost(auths: Readonly<Record<string, DockerAuthEntry>>, host: string, what: string): AuthConfig | undefined {
  const entry = keysFor(host).map((k) => auths[k]).find((e) => e !== undefined);
  if (!entry) return undefined;
  let { username, password } = entry;
  if ((!username || !password) && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw new Error(`${what}: the auth of ${host} is not base64 of user:password`);
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  }
  return {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(entry.identitytoken ? { identityToken: entry.identitytoken } : {}),
    ...(entry.registrytoken ? { registryToken: entry.registrytoken } : {}),
  };
}

/**
 * Every registry's credentials in a Docker config file's text (`{"auths": {…}}`), keyed
 * by registry host as references name it (`127.0.0.1:5000`, `docker.io`). Throws
 * `Error` naming `what` for text that is not such a file.
 */
export function parseDockerConfig(text: string, what: string): Record<string, AuthConfig> {
  let auths: Record<string, DockerAuthEntry>;
  try {
    const parsed = JSON.parse(text) as { auths?: Record<string, DockerAuthEntry> };
    auths = parsed.auths ?? {};
  } catch (err) {
    throw new Error(`${what}: not a Docker config file: ${(err as Error).message}`, { cause: err });
  }
  const out: Record<string, AuthConfig> = {};
  for (const key of Object.keys(auths)) {
    const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    const normalized = host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
    const creds = credentialsForHost(auths, key, what);
    if (creds) out[normalized] = creds;
  }
  return out;
}

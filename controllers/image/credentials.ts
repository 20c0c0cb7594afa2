/**
 * Registry credentials from a Kubernetes-style Secret, as kubelet reads
 * imagePullSecrets: a `kubernetes.io/dockerconfigjson` Secret (`.dockerconfigjson`,
 * what `kubectl create secret docker-registry` makes) or a legacy
 * `kubernetes.io/dockercfg` one (`.dockercfg`), whose `auths` entry for the
 * reference's registry gives the username and password (or `auth`, base64
 * `user:password`), an identity token or a registry token.
 */
import type { AuthConfig } from '../../runtime/cri/index.ts';
import type { Secret } from '../framework/index.ts';

/** Why a Secret gives no usable credentials; the message names the Secret and the key. */
export class CredentialsError extends Error {}

interface DockerAuthEntry {
  username?: string;
  password?: string;
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** The registry host of a reference as credentials are keyed: `docker.io` for Docker Hub names. */
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
 * The credentials `secret` holds for the registry of `reference`; undefined when
 * it has no entry for that registry (pull anonymously). Throws `CredentialsError`
 * for a Secret of another type or with unreadable content.
 */
export function credentialsFor(secret: Secret, reference: string): AuthConfig | undefined {
  const name = `secret ${secret.metadata.namespace ?? ''}/${secret.metadata.name}`;
  const data = secret.data ?? {};
  let auths: Record<string, DockerAuthEntry>;
  const raw = data['.dockerconfigjson'] ?? data['.dockercfg'];
  if (raw === undefined) throw new CredentialsError(`${name} has no .dockerconfigjson (make it with kubectl create secret docker-registry)`);
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { auths?: Record<string, DockerAuthEntry> } & Record<string, DockerAuthEntry>;
    auths = data['.dockerconfigjson'] !== undefined ? (parsed.auths ?? {}) : parsed;
  } catch (err) {
    throw new CredentialsError(`${name}: cannot read the Docker config: ${(err as Error).message}`);
  }
  const host = registryHostOf(reference);
  const entry = keysFor(host).map((k) => auths[k]).find((e) => e !== undefined);
  if (!entry) return undefined;
  let { username, password } = entry;
  if ((!username || !password) && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw new CredentialsError(`${name}: the auth of ${host} is not base64 of user:password`);
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

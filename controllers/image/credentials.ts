/**
 * Registry credentials from a Kubernetes-style Secret, as kubelet reads
 * imagePullSecrets: a `kubernetes.io/dockerconfigjson` Secret (`.dockerconfigjson`,
 * what `kubectl create secret docker-registry` makes) or a legacy
 * `kubernetes.io/dockercfg` one (`.dockercfg`), whose `auths` entry for the
 * reference's registry gives the username and password (or `auth`, base64
 * `user:password`), an identity token or a registry token.
 */
import { credentialsForHost, registryHostOf, type AuthConfig, type DockerAuthEntry } from '../../runtime/cri/index.ts';
import type { Secret } from '../framework/index.ts';

/** Why a Secret gives no usable credentials; the message names the Secret and the key. */
export class CredentialsError extends Error {}

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
  try {
    return credentialsForHost(auths, host, name);
  } catch (err) {
    throw new CredentialsError((err as Error).message);
  }
}

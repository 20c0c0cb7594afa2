/**
 * Names the CLI gives objects: an Image's for a reference, and the Secrets `berth login` makes (`berth-login-<registry>`, a dockerconfigjson), found
 * for an image reference: `pull`, `push` and `run` name them, as Docker uses what
 * `docker login` stored.
 */
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Secret as SecretKind } from '../../controllers/framework/resource-kind.ts';
import { normalizeReference, parseReference } from '../../runtime/images/reference.ts';
import type { Connection } from './connection.ts';

/** A valid metadata.name for the Image of a reference: `127.0.0.1:5000/team/app:1.2` → `127.0.0.1-5000-team-app-1.2`. */
export function toImageName(ref: string): string {
  const n = ref.toLowerCase().replace(/^docker\.io\/(library\/)?/, '').replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return n.slice(0, 253) || 'image';
}

/** The name of the login Secret for a registry host. */
export const loginSecretName = (registry: string): string => `berth-login-${toImageName(registry)}`;

/** The login Secret for a reference's registry, if `berth login` made one; undefined for a reference that does not parse. */
export async function loginSecretFor(conn: Connection, ref: string): Promise<string | undefined> {
  let domain: string;
  try {
    domain = parseReference(normalizeReference(ref)).domain;
  } catch {
    return undefined;
  }
  const name = loginSecretName(domain);
  try {
    await conn.client.get(SecretKind, conn.namespace, name);
    return name;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

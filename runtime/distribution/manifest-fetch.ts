/**
 * Fetching manifests: the Accept list of every type berth reads, digest
 * verification, and choosing the host platform's manifest from an index.
 */
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';
import { sha256Of, type Digest } from '../images/digest.ts';
import { MEDIA_TYPE, isIndexMediaType, isManifestMediaType, parseIndex, type Descriptor, type ImageIndex, type Platform } from '../images/oci.ts';
import { repositoryScope } from './auth.ts';
import { header, type RegistryClient } from './registry-client.ts';

/** Manifests larger than this are refused (the distribution registry's own limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Every manifest type berth reads, most preferred first. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList, MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest,
].join(', ');

/** A manifest or index as the registry served it. */
export interface FetchedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/**
 * GETs `/v2/<path>/manifests/<reference>` (a tag or digest) and verifies the
 * bytes against the digest asked for, or the `Docker-Content-Digest` the
 * registry sent. Rejects `NotFound` when the registry has no such manifest.
 */
export async function fetchManifest(
  client: RegistryClient, path: string, reference: string, what: string, opts: CallOptions = {},
): Promise<FetchedManifest> {
  const res = await client.expect({
    method: 'GET',
    path: `/v2/${path}/manifests/${reference}`,
    scopes: [repositoryScope(path, ['pull'])],
    headers: { accept: MANIFEST_ACCEPT },
    what,
    ...(opts.signal && { signal: opts.signal }),
  }, [200]);
  const bytes = await client.readBody(res, MAX_MANIFEST_BYTES, what);
  const digest = sha256Of(bytes);
  const want = reference.includes(':') ? reference : header(res.headers, 'docker-content-digest');
  if (want !== undefined && want.startsWith('sha256:') && want !== digest)
    throw new RuntimeError('InvalidArgument', `${what}: registry ${client.endpoint.host} sent a manifest with digest ${digest}, want ${want}`);
  let mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
  if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) {
    // Some registries serve text/plain or application/json: the document says what it is.
    let doc: { mediaType?: unknown; manifests?: unknown } = {};
    try {
      doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
    } catch {
      // handled below
    }
    mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : Array.isArray(doc.manifests) ? MEDIA_TYPE.ociIndex : MEDIA_TYPE.ociManifest;
  }
  if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType))
    throw new RuntimeError('InvalidArgument', `${what}: unsupported manifest type ${JSON.stringify(mediaType)}`);
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
}

/** True when a descriptor's platform is `want` (a variant is compared only when `want` has one). */
export function matchesPlatform(p: Platform | undefined, want: Platform): boolean {
  if (!p) return false;
  return p.os === want.os && p.architecture === want.architecture && (want.variant === undefined || p.variant === want.variant);
}

/** The first manifest of `index` for `platform`; rejects `NotFound` naming the platforms there are. */
export function selectPlatform(index: ImageIndex, platform: Platform, what: string): Descriptor {
  const found = index.manifests.find((m) => isManifestMediaType(m.mediaType) && matchesPlatform(m.platform, platform));
  if (found) return found;
  const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : 'unknown'));
  throw new RuntimeError('NotFound', `${what}: no manifest for platform ${platform.os}/${platform.architecture} in the index (it has ${have.join(', ') || 'none'})`);
}

/** Parses an index fetched by `fetchManifest`. */
export const parseFetchedIndex = (m: FetchedManifest, what: string): ImageIndex => parseIndex(m.bytes, `${what}: index ${m.descriptor.digest}`);

export type { Digest };

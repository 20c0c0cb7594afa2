/**
 * Manifests as the registry accepts them: OCI image manifests and indexes (with OCI
 * 1.1 `subject` and `artifactType`, any config and layer media types) and Docker
 * schema 2 manifests and manifest lists. Parsing checks the structure only; that the
 * referenced blobs and manifests exist is checked when the manifest is recorded.
 */
import { isDigest, type Digest } from '../runtime/images/digest.ts';
import { MEDIA_TYPE } from '../runtime/images/oci.ts';
import { manifestInvalid } from './errors.ts';

/** The largest manifest accepted, in bytes (distribution's default, the OCI spec's recommendation). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Manifest media types the registry stores. */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE.ociManifest, MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifest, MEDIA_TYPE.dockerManifestList,
]);

const INDEX_TYPES = new Set<string>([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList]);

/** A descriptor as a manifest carries it. */
export interface RegistryDescriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
}

/** What the registry needs to know of a pushed manifest. */
export interface ParsedManifest {
  readonly mediaType: string;
  /** Config and layers (image manifests); empty for indexes. */
  readonly blobs: readonly RegistryDescriptor[];
  /** Child manifests (indexes); empty for image manifests. */
  readonly manifests: readonly RegistryDescriptor[];
  readonly subject?: RegistryDescriptor;
  /** `artifactType`, or for an image manifest without one, its config's media type (as the referrers API reports). */
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The media type of a `Content-Type` header, without parameters, lower case. */
export const mediaTypeOf = (header: string | undefined): string => (header ?? '').split(';')[0]!.trim().toLowerCase();

function descriptor(v: unknown, where: string): RegistryDescriptor {
  if (!isObject(v)) throw manifestInvalid(`${where}: descriptor is not an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw manifestInvalid(`${where}: descriptor has no mediaType`);
  if (!isDigest(v.digest)) throw manifestInvalid(`${where}: invalid or unsupported digest ${JSON.stringify(v.digest)}`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw manifestInvalid(`${where}: invalid size`);
  return { mediaType: v.mediaType, digest: v.digest, size: v.size };
}

function annotations(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) throw manifestInvalid(`${where}: annotations must map strings to strings`);
  return v as Record<string, string>;
}

/**
 * Parses a manifest body sent with `Content-Type: contentType`. Throws
 * `MANIFEST_INVALID` for anything the registry does not store: not JSON, not
 * schemaVersion 2, a media type it does not know (including Docker schema 1), a body
 * whose `mediaType` contradicts the header, malformed descriptors.
 */
export function parseRegistryManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw manifestInvalid('manifest is not valid JSON');
  }
  if (!isObject(doc)) throw manifestInvalid('manifest is not a JSON object');
  const header = mediaTypeOf(contentType);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (doc.mediaType !== undefined && declared === undefined) throw manifestInvalid('mediaType must be a string');
  if (declared !== undefined && header !== '' && declared !== header)
    throw manifestInvalid(`Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  const mediaType = declared ?? header;
  if (!MANIFEST_MEDIA_TYPES.has(mediaType))
    throw manifestInvalid(`unsupported manifest media type ${JSON.stringify(mediaType)}`, { mediaType, supported: [...MANIFEST_MEDIA_TYPES] });
  if (doc.schemaVersion !== 2) throw manifestInvalid('schemaVersion must be 2');
  const subject = doc.subject === undefined ? undefined : descriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string') throw manifestInvalid('artifactType must be a string');
  const ann = annotations(doc.annotations, 'manifest');
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw manifestInvalid('an index must have a manifests list');
    if (doc.config !== undefined || doc.layers !== undefined) throw manifestInvalid('an index has no config or layers');
    const manifests = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
    return {
      mediaType, blobs: [], manifests,
      ...(subject && { subject }),
      ...(typeof doc.artifactType === 'string' && { artifactType: doc.artifactType }),
      ...(ann && { annotations: ann }),
    };
  }
  if (doc.manifests !== undefined) throw manifestInvalid('an image manifest has no manifests list');
  const config = descriptor(doc.config, 'config');
  if (!Array.isArray(doc.layers)) throw manifestInvalid('layers must be a list');
  const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : config.mediaType;
  return { mediaType, blobs: [config, ...layers], manifests: [], ...(subject && { subject }), artifactType, ...(ann && { annotations: ann }) };
}

/** Digests a stored manifest references (config, layers, child manifests); empty for what does not parse. */
export function referencedDigests(body: Buffer, mediaType: string): string[] {
  try {
    const m = parseRegistryManifest(body, mediaType);
    return [...m.blobs, ...m.manifests].map((d) => d.digest);
  } catch {
    return [];
  }
}

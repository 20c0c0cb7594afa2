/**
 * OCI image-spec and Docker schema 2 documents: media types, the shapes berth
 * reads, and parsers that reject what the store cannot use (with
 * `RuntimeError('InvalidArgument')` naming the document).
 */
import { RuntimeError } from '../cri/errors.ts';
import type { ImageConfig } from '../cri/types.ts';
import { toDigest, type Digest } from './digest.ts';

export const MEDIA_TYPE = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const INDEX_TYPES = new Set<string>([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest]);
const LAYER_TYPES = new Set<string>([
  MEDIA_TYPE.ociLayer, MEDIA_TYPE.ociLayerGzip, MEDIA_TYPE.ociLayerZstd, MEDIA_TYPE.dockerLayer, MEDIA_TYPE.dockerLayerGzip,
]);

/** Annotation naming an image in an OCI layout's index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** Annotation containerd and Docker put on index.json entries with the full image name. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The parts of an image config berth reads. */
export interface OciImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly config?: {
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly Env?: readonly string[] | null;
    readonly WorkingDir?: string;
    readonly User?: string;
    readonly StopSignal?: string;
    readonly ExposedPorts?: Readonly<Record<string, unknown>> | null;
    readonly Volumes?: Readonly<Record<string, unknown>> | null;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly Healthcheck?: {
      readonly Test?: readonly string[] | null;
      readonly Interval?: number;
      readonly Timeout?: number;
      readonly StartPeriod?: number;
      readonly Retries?: number;
    } | null;
  };
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly Digest[] };
}

const bad = (what: string, why: string): RuntimeError => new RuntimeError('InvalidArgument', `${what}: ${why}`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RuntimeError('InvalidArgument', `${what}: not valid JSON`, { cause: err });
  }
  if (!isObject(doc)) throw bad(what, 'not a JSON object');
  return doc;
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw bad(what, 'descriptor is not an object');
  if (typeof v.mediaType !== 'string') throw bad(what, 'descriptor has no mediaType');
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw bad(what, 'descriptor has an invalid size');
  const platform = isObject(v.platform) && typeof v.platform.os === 'string' && typeof v.platform.architecture === 'string'
    ? { os: v.platform.os, architecture: v.platform.architecture, ...(typeof v.platform.variant === 'string' && { variant: v.platform.variant }) }
    : undefined;
  return {
    mediaType: v.mediaType,
    digest: toDigest(v.digest, what),
    size: v.size,
    ...(platform && { platform }),
    ...(isObject(v.annotations) && { annotations: v.annotations as Record<string, string> }),
  };
}

/** True for index media types (OCI index, Docker manifest list). */
export const isIndexMediaType = (t: string): boolean => INDEX_TYPES.has(t);
/** True for image manifest media types (OCI, Docker schema 2). */
export const isManifestMediaType = (t: string): boolean => MANIFEST_TYPES.has(t);

/** Parses an OCI index or Docker manifest list (also an OCI layout's index.json). */
export function parseIndex(bytes: Buffer, what: string): ImageIndex {
  const doc = parseJson(bytes, what);
  if (doc.schemaVersion !== 2) throw bad(what, 'schemaVersion must be 2');
  if (doc.mediaType !== undefined && !isIndexMediaType(String(doc.mediaType))) throw bad(what, `not an index (mediaType ${String(doc.mediaType)})`);
  if (!Array.isArray(doc.manifests)) throw bad(what, 'manifests is not a list');
  return {
    schemaVersion: 2,
    ...(typeof doc.mediaType === 'string' && { mediaType: doc.mediaType }),
    manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what}: manifests[${i}]`)),
    ...(isObject(doc.annotations) && { annotations: doc.annotations as Record<string, string> }),
  };
}

/** Parses an image manifest; rejects foreign or unknown layer types. */
export function parseManifest(bytes: Buffer, what: string): ImageManifest {
  const doc = parseJson(bytes, what);
  if (doc.schemaVersion !== 2) throw bad(what, 'schemaVersion must be 2 (schema 1 manifests are not supported)');
  if (doc.mediaType !== undefined && !isManifestMediaType(String(doc.mediaType))) throw bad(what, `not an image manifest (mediaType ${String(doc.mediaType)})`);
  if (!Array.isArray(doc.layers)) throw bad(what, 'layers is not a list');
  const layers = doc.layers.map((l, i) => parseDescriptor(l, `${what}: layers[${i}]`));
  layers.forEach((l, i) => {
    if (!LAYER_TYPES.has(l.mediaType)) throw bad(what, `layers[${i}] has unsupported media type ${l.mediaType}`);
  });
  return {
    schemaVersion: 2,
    ...(typeof doc.mediaType === 'string' && { mediaType: doc.mediaType }),
    config: parseDescriptor(doc.config, `${what}: config`),
    layers,
    ...(isObject(doc.annotations) && { annotations: doc.annotations as Record<string, string> }),
  };
}

const stringList = (v: unknown, what: string): readonly string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw bad(what, 'must be a list of strings');
  return v as string[];
};

/** Parses an image config; requires `rootfs.diff_ids`. */
export function parseImageConfig(bytes: Buffer, what: string): OciImageConfig {
  const doc = parseJson(bytes, what);
  if (!isObject(doc.rootfs) || !Array.isArray(doc.rootfs.diff_ids)) throw bad(what, 'rootfs.diff_ids is missing');
  const diffIds = doc.rootfs.diff_ids.map((d, i) => toDigest(d, `${what}: rootfs.diff_ids[${i}]`));
  const c = isObject(doc.config) ? doc.config : {};
  for (const k of ['Entrypoint', 'Cmd', 'Env'] as const) stringList(c[k], `${what}: config.${k}`);
  return {
    architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
    os: typeof doc.os === 'string' ? doc.os : '',
    config: c as OciImageConfig['config'],
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
}

/** The runnable part of a config, in the runtime port's shape. Empty values are left out. */
export function toImageConfig(config: OciImageConfig): ImageConfig {
  const c = config.config ?? {};
  const keys = (o: Readonly<Record<string, unknown>> | null | undefined): string[] | undefined =>
    o && Object.keys(o).length > 0 ? Object.keys(o).sort() : undefined;
  const out: Record<string, unknown> = {
    entrypoint: c.Entrypoint ?? undefined,
    cmd: c.Cmd ?? undefined,
    env: c.Env ?? undefined,
    workingDir: c.WorkingDir || undefined,
    user: c.User || undefined,
    stopSignal: c.StopSignal || undefined,
    exposedPorts: keys(c.ExposedPorts),
    volumes: keys(c.Volumes),
    labels: c.Labels && Object.keys(c.Labels).length > 0 ? { ...c.Labels } : undefined,
    // ["NONE"] disables an inherited healthcheck: no healthcheck then.
    healthcheck: c.Healthcheck?.Test?.length && c.Healthcheck.Test[0] !== 'NONE'
      ? {
          test: [...c.Healthcheck.Test],
          ...(c.Healthcheck.Interval ? { intervalNs: c.Healthcheck.Interval } : {}),
          ...(c.Healthcheck.Timeout ? { timeoutNs: c.Healthcheck.Timeout } : {}),
          ...(c.Healthcheck.StartPeriod ? { startPeriodNs: c.Healthcheck.StartPeriod } : {}),
          ...(c.Healthcheck.Retries ? { retries: c.Healthcheck.Retries } : {}),
        }
      : undefined,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as ImageConfig;
}

/** The platform this node runs images for, as OCI names it. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

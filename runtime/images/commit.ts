/**
 * Commit: a new image made of a base image plus one layer taken from an
 * overlayfs upper directory (a container's writable layer), with optional
 * config changes, as `docker commit` makes it. The image is an OCI manifest
 * (Docker layer media types of the base are written as their OCI
 * equivalents, the blobs are the same) and a config that is the base's with
 * the layer's diff ID appended, a history entry added, and the changes applied.
 */
import type { ImageConfigChanges } from '../cri/image-builder.ts';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, Image, ImageId, KeyValue } from '../cri/types.ts';
import type { ContentStore } from './content-store.ts';
import type { Digest } from './digest.ts';
import { writeLayerFromDir, type WrittenLayer } from './layer-diff.ts';
import { MEDIA_TYPE, parseImageConfig, parseManifest, type Descriptor, type ImageManifest } from './oci.ts';
import { parseReference } from './reference.ts';
import type { RecordImageInput } from './image-store.ts';

/** Config changes a commit applies (Docker's `commit --change`); absent fields keep the base image's value. */
export type CommitChanges = ImageConfigChanges;

/** What `ImageStore.commit` takes. */
export interface CommitInput extends CallOptions {
  /** The image the container runs (reference or image ID); its layers are the lower part of the new image. */
  readonly baseImage: string;
  /** The overlayfs upper directory that becomes the new top layer. Read, never modified. */
  readonly upperDir: string;
  readonly changes?: CommitChanges;
  /** Config `author` and the history entry's author. */
  readonly author?: string;
  /** The history entry's comment (Docker's commit message). */
  readonly comment?: string;
  /** The history entry's `created_by`, e.g. the container's command. */
  readonly createdBy?: string;
  /** References to point at the new image (moved from any other image). None: the image is kept untagged until removed by ID. */
  readonly tags?: readonly string[];
  /** Relative paths left out of the layer: mount points the runtime made in the upper directory. */
  readonly exclude?: readonly string[];
  /** Time recorded as `created` (config and history); default now. */
  readonly createdAt?: Date;
  /** Caps file mtimes in the layer (see `writeLayerFromDir`). */
  readonly clampMtimeSec?: number;
  /** Compressed bytes of the new layer written so far. */
  readonly onBytes?: (bytes: number) => void;
}

export interface CommitResult {
  /** The new image's ID (its config digest). */
  readonly id: ImageId;
  readonly manifestDigest: Digest;
  /** The new top layer. */
  readonly layer: WrittenLayer;
}

/** What `commitImage` needs from the image store. */
export interface CommitDeps {
  content(): Promise<ContentStore>;
  imageStatus(ref: string, opts?: CallOptions): Promise<Image | undefined>;
  recordImage(input: RecordImageInput): Promise<ImageId>;
  garbageCollect(): Promise<unknown>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const OCI_LAYER_TYPE: Readonly<Record<string, string>> = {
  [MEDIA_TYPE.dockerLayer]: MEDIA_TYPE.ociLayer,
  [MEDIA_TYPE.dockerLayerGzip]: MEDIA_TYPE.ociLayerGzip,
};

/** `8080` → `8080/tcp`; rejects anything but `<port>[/tcp|udp|sctp]`. */
function toPortKey(p: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(p.trim().toLowerCase());
  if (!m || Number(m[1]) === 0 || Number(m[1]) > 65535) throw new RuntimeError('InvalidArgument', `commit: invalid exposed port ${JSON.stringify(p)}`);
  return `${Number(m[1])}/${m[2] ?? 'tcp'}`;
}

/** Applies `changes` to a config's `config` object (Docker's container config), returning a new one. */
export function applyConfigChanges(base: Json, changes: CommitChanges = {}): Json {
  const c: Json = { ...base };
  if (changes.env !== undefined) {
    const env = new Map<string, string>();
    for (const kv of (Array.isArray(c.Env) ? c.Env : []) as string[]) {
      const eq = kv.indexOf('=');
      env.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
    }
    for (const { name, value } of changes.env) {
      if (name === '' || name.includes('=')) throw new RuntimeError('InvalidArgument', `commit: invalid environment variable name ${JSON.stringify(name)}`);
      env.set(name, value);
    }
    c.Env = [...env].map(([k, v]) => `${k}=${v}`);
  }
  if (changes.cmd !== undefined) c.Cmd = changes.cmd.length > 0 ? [...changes.cmd] : null;
  if (changes.entrypoint !== undefined) c.Entrypoint = changes.entrypoint.length > 0 ? [...changes.entrypoint] : null;
  if (changes.workingDir !== undefined) {
    if (changes.workingDir !== '' && !changes.workingDir.startsWith('/'))
      throw new RuntimeError('InvalidArgument', `commit: working directory ${JSON.stringify(changes.workingDir)} is not absolute`);
    c.WorkingDir = changes.workingDir;
  }
  if (changes.user !== undefined) c.User = changes.user;
  if (changes.stopSignal !== undefined) c.StopSignal = changes.stopSignal;
  if (changes.labels !== undefined) c.Labels = { ...(isObject(c.Labels) ? c.Labels : {}), ...changes.labels };
  if (changes.exposedPorts !== undefined) {
    const ports: Json = { ...(isObject(c.ExposedPorts) ? c.ExposedPorts : {}) };
    for (const p of changes.exposedPorts) ports[toPortKey(p)] = {};
    c.ExposedPorts = ports;
  }
  if (changes.volumes !== undefined) {
    const vols: Json = { ...(isObject(c.Volumes) ? c.Volumes : {}) };
    for (const v of changes.volumes) {
      if (!v.startsWith('/')) throw new RuntimeError('InvalidArgument', `commit: volume ${JSON.stringify(v)} is not an absolute path`);
      vols[v] = {};
    }
    c.Volumes = vols;
  }
  return c;
}

/**
 * Commits `input.upperDir` on top of `input.baseImage` as a new image (see
 * the module comment) and records it in the store under `input.tags`. Each
 * call makes a new image (its `created` differs) unless `createdAt` is given
 * and the upper directory is unchanged. The upper directory should not change
 * during the call: pause the container first.
 *
 * Rejects `NotFound` (no base image, no upper directory), `InvalidArgument`
 * (bad tag or change), `FailedPrecondition` (see `writeLayerFromDir`). A failed
 * commit leaves nothing behind.
 */
export async function commitImage(images: CommitDeps, input: CommitInput): Promise<CommitResult> {
  const store = await images.content();
  const refs = (input.tags ?? []).map((t) => parseReference(t));
  const base = await images.imageStatus(input.baseImage, input);
  if (!base) throw new RuntimeError('NotFound', `commit: base image ${JSON.stringify(input.baseImage)} not found`);
  const record = store.refDb.images[base.id];
  if (!record) throw new RuntimeError('NotFound', `commit: base image ${JSON.stringify(input.baseImage)} was removed`);
  const baseManifest = parseManifest(await store.readBlob(record.manifestDigest), `manifest ${record.manifestDigest}`);
  const baseConfig = JSON.parse((await store.readBlob(base.id as string as Digest)).toString('utf8')) as Json;
  const created = (input.createdAt ?? new Date()).toISOString();
  const what = `commit on ${input.baseImage}`;

  const lease = store.lease();
  try {
    for (const l of baseManifest.layers) lease.add(l.digest);
    lease.add(record.manifestDigest);
    const layer = await writeLayerFromDir({
      store, dir: input.upperDir, lease, what,
      ...(input.exclude && { exclude: input.exclude }),
      ...(input.clampMtimeSec !== undefined && { clampMtimeSec: input.clampMtimeSec }),
      ...(input.onBytes && { onBytes: input.onBytes }),
      ...(input.signal && { signal: input.signal }),
    });

    const rootfs = isObject(baseConfig.rootfs) ? baseConfig.rootfs : {};
    const baseDiffIds = Array.isArray(rootfs.diff_ids) ? (rootfs.diff_ids as string[]) : [];
    let history = Array.isArray(baseConfig.history) ? (baseConfig.history as Json[]) : [];
    // Keep history in step with the layers (non-empty entries = layers), as tools that pair them expect.
    if (history.filter((h) => h.empty_layer !== true).length !== baseDiffIds.length) {
      history = [...history, ...baseDiffIds.slice(history.filter((h) => h.empty_layer !== true).length).map(() => ({
        ...(typeof baseConfig.created === 'string' && { created: baseConfig.created }),
      }))];
    }
    const config: Json = {
      ...baseConfig,
      created,
      ...(input.author !== undefined && { author: input.author }),
      config: applyConfigChanges(isObject(baseConfig.config) ? baseConfig.config : {}, input.changes),
      rootfs: { type: 'layers', diff_ids: [...baseDiffIds, layer.diffId] },
      history: [...history, {
        created,
        ...(input.author !== undefined && { author: input.author }),
        ...(input.createdBy !== undefined && { created_by: input.createdBy }),
        ...(input.comment !== undefined && { comment: input.comment }),
      }],
    };
    delete config.container;
    delete config.container_config;
    const configBytes = Buffer.from(JSON.stringify(config));
    const parsedConfig = parseImageConfig(configBytes, `${what}: config`);
    const storedConfig = await store.writeBlob(() => [configBytes], { what: `${what}: config`, lease });

    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: MEDIA_TYPE.ociConfig, digest: storedConfig.digest, size: configBytes.length },
      layers: [
        ...baseManifest.layers.map((l): Descriptor => ({ mediaType: OCI_LAYER_TYPE[l.mediaType] ?? l.mediaType, digest: l.digest, size: l.size })),
        { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
      ],
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const storedManifest = await store.writeBlob(() => [manifestBytes], { what: `${what}: manifest`, lease });
    const id = await images.recordImage({
      manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: storedManifest.digest, size: manifestBytes.length },
      parsedManifest: manifest,
      configDigest: storedConfig.digest,
      config: parsedConfig,
      refs,
      lease,
      ...(input.signal && { signal: input.signal }),
    });
    return { id, manifestDigest: storedManifest.digest, layer };
  } catch (err) {
    lease.release();
    await images.garbageCollect().catch(() => undefined);
    throw err;
  } finally {
    lease.release();
  }
}

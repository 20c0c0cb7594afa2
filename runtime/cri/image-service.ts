import type { Writable } from 'node:stream';
import type { AuthConfig, CallOptions, FilesystemUsage, Image, ImageFilter, ImageId, ImageRef, RegistryConfig } from './types.ts';

/** Progress of a long image operation (import, pull, push), bytes per layer. */
export interface ImageProgress {
  readonly layer: string;
  readonly currentBytes: number;
  readonly totalBytes: number;
}

export interface ImportOptions extends CallOptions {
  /** References to tag the image with, e.g. `busybox:latest`. */
  readonly tags?: readonly ImageRef[];
  readonly onProgress?: (p: ImageProgress) => void;
}

/** Options of `pullImage`. */
export interface PullOptions extends CallOptions {
  /** Credentials for the registry; the positional `auth` argument of `pullImage`, when given, wins. */
  readonly auth?: AuthConfig;
  /** Insecure hosts and extra CAs; default: the store's configuration. */
  readonly registry?: RegistryConfig;
  /** Bytes per layer (`layer` is the blob digest) as they arrive; stored blobs report their full size at once. */
  readonly onProgress?: (p: ImageProgress) => void;
}

/** Options of `pushImage`. */
export interface PushOptions extends CallOptions {
  readonly auth?: AuthConfig;
  /** Insecure hosts and extra CAs; default: the store's configuration. */
  readonly registry?: RegistryConfig;
  /** Bytes per blob (`layer` is the blob digest) as they are sent; blobs the registry has report their full size at once. */
  readonly onProgress?: (p: ImageProgress) => void;
  /** Blobs larger than this go up in chunks of this size (POST, PATCH…, PUT); smaller ones in one PUT. Default 64 MiB. */
  readonly chunkSizeBytes?: number;
}

/** Tarball formats of `exportImages`: an OCI layout in a tar, or `docker save`'s layout. */
export type ImageArchiveFormat = 'oci-archive' | 'docker-archive';

/**
 * Images on this node, shaped after CRI ImageService. Images live in a
 * content-addressed store (OCI image layout); every blob is verified by digest
 * on write. References are normalised as Docker does (`busybox` →
 * `docker.io/library/busybox:latest`).
 */
export interface ImageService {
  listImages(filter?: ImageFilter, opts?: CallOptions): Promise<Image[]>;
  /** The image a reference or ID resolves to, or undefined when absent. */
  imageStatus(ref: ImageRef, opts?: CallOptions): Promise<Image | undefined>;
  /**
   * Pulls `ref` from its registry (OCI or Docker schema 2; from an index, the
   * host platform's manifest), stores and unpacks it, and points `ref` and
   * `name@<manifest digest>` at it. Blobs already stored are not downloaded.
   * Idempotent. Rejects `NotFound` (no such repository, tag or digest),
   * `FailedPrecondition` (unauthorized or denied), `Unavailable` (registry
   * unreachable or failing), `InvalidArgument` (bad reference, corrupt content);
   * each message names the reference.
   */
  pullImage(ref: ImageRef, auth?: AuthConfig, opts?: PullOptions): Promise<ImageId>;
  /**
   * Pushes the local image `ref` resolves to as `target` (a reference with a
   * tag, default `latest`): blobs the registry lacks (mounted from another
   * repository of the same registry when the image came from there), then the
   * manifest, byte for byte. Resolves with the manifest digest, which is the
   * local one. Idempotent. Rejects as `pullImage`; `NotFound` also when `ref`
   * names no local image.
   */
  pushImage(ref: ImageRef, target: ImageRef, opts?: PushOptions): Promise<string>;
  /**
   * Checks credentials against a registry as `docker login` does: `GET /v2/` with them
   * (through the registry's token service when it has one). Resolves when the registry
   * accepts them (or asks for none). Rejects `FailedPrecondition` when it refuses them,
   * `Unavailable` when it cannot be reached, `InvalidArgument` for a host that is not
   * `name[:port]`.
   */
  checkRegistryLogin(registry: string, auth: AuthConfig, opts?: CallOptions): Promise<void>;
  /**
   * Imports an OCI image layout directory, an OCI archive or a docker-archive
   * tarball from a path on this machine, tagging it with `tags`.
   */
  importImage(path: string, opts?: ImportOptions): Promise<ImageId>;
  /**
   * Writes the images `refs` name as one tarball to `out` (`docker save`), readable
   * by `importImage`, skopeo, podman and Docker. Rejects `NotFound` for a reference
   * that names no image.
   */
  exportImages(refs: readonly ImageRef[], format: ImageArchiveFormat, out: Writable, opts?: CallOptions): Promise<void>;
  /** Adds a reference to an image. */
  tagImage(ref: ImageRef, newRef: ImageRef, opts?: CallOptions): Promise<void>;
  /** Removes a reference (and the image when no reference is left and no container uses it). Idempotent. */
  removeImage(ref: ImageRef, opts?: CallOptions): Promise<void>;
  imageFsInfo(opts?: CallOptions): Promise<FilesystemUsage[]>;
}

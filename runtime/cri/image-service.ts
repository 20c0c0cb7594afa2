import type { AuthConfig, CallOptions, FilesystemUsage, Image, ImageFilter, ImageId, ImageRef } from './types.ts';

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
  /** Pulls from a registry (issue 4); until then rejects with `Unavailable`. */
  pullImage(ref: ImageRef, auth?: AuthConfig, opts?: CallOptions): Promise<ImageId>;
  /**
   * Imports an OCI image layout directory, an OCI archive or a docker-archive
   * tarball from a path on this machine, tagging it with `tags`.
   */
  importImage(path: string, opts?: ImportOptions): Promise<ImageId>;
  /** Adds a reference to an image. */
  tagImage(ref: ImageRef, newRef: ImageRef, opts?: CallOptions): Promise<void>;
  /** Removes a reference (and the image when no reference is left and no container uses it). Idempotent. */
  removeImage(ref: ImageRef, opts?: CallOptions): Promise<void>;
  imageFsInfo(opts?: CallOptions): Promise<FilesystemUsage[]>;
}

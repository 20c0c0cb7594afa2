import type { CallOptions, Image, ImageRef } from '../cri/types.ts';

/** An image ready to run: its config and its unpacked layers. */
export interface RunnableImage {
  readonly image: Image;
  /**
   * Unpacked layer directories, bottom layer first. Read-only and shared between
   * containers: use them as overlayfs lowerdirs (reversed: top layer leftmost).
   * OCI whiteouts are already overlayfs whiteouts (char 0/0, opaque xattr).
   */
  readonly layerDirs: readonly string[];
}

/**
 * What the container runtime needs from the image store: resolve a reference to
 * unpacked layers, and pin the image while a container uses it so it is not removed.
 * Implemented by the image store (`runtime/images`) and by test fixtures.
 */
export interface RootfsSource {
  /** Rejects with `RuntimeError('NotFound')` when the image is not in the store. */
  resolveForRun(ref: ImageRef, opts?: CallOptions): Promise<RunnableImage>;
  /** Records that `containerId` uses the image (idempotent). */
  pin(imageId: string, containerId: string): Promise<void>;
  /** Forgets that use (idempotent). */
  unpin(imageId: string, containerId: string): Promise<void>;
}

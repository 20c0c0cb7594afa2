/** The image store: what the runtime and the agent use from `runtime/images`. */
export { ImageStore, type ImageStoreOptions, type ImageGarbageCollectResult, type RecordImageInput } from './image-store.ts';
export type { RootfsSource, RunnableImage } from './rootfs-source.ts';
export { normalizeReference, parseReference, familiarString, formatReference, referenceName, type ImageReference } from './reference.ts';
export { writeLayerFromDir, type WriteLayerFromDirOptions, type WrittenLayer } from './layer-diff.ts';
export type { CommitChanges, CommitInput, CommitResult } from './commit.ts';
export type { ExportFormat, ExportOptions } from './export.ts';

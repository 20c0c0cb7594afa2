/** The runtime port: what controllers may import from `runtime/`. */
export * from './types.ts';
export * from './errors.ts';
export type { RuntimeService } from './runtime-service.ts';
export type { ImageService, ImageProgress, ImportOptions } from './image-service.ts';

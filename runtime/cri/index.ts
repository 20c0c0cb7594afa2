/** The runtime port: what controllers may import from `runtime/`. */
export * from './types.ts';
export * from './errors.ts';
export type { RuntimeService } from './runtime-service.ts';
export type { ImageArchiveFormat, ImageService, ImageProgress, ImportOptions, PullOptions, PushOptions } from './image-service.ts';
export type { ImageBuilder, BuildContextSource, BuildImageRequest, BuildImageResult, CommitContainerRequest, CommitContainerResult, ImageConfigChanges } from './image-builder.ts';
export type {
  ContainerAddress,
  ContainerNetworkRequest,
  ContainerNetworkSetup,
  NetworkAttachmentRequest,
  NetworkDefinition,
  NetworkInfo,
  NetworkService,
} from './network-service.ts';
export type { PortService, PortMapping, PublishedPort, PublishRequest, PortPublication, PortForwarding, PortProtocol } from './port-service.ts';
export { PortConflictError, isPortConflictError, PORT_OWNER_OTHER_PROCESS } from './port-service.ts';
export { credentialsForHost, parseDockerConfig, registryHostOf, type DockerAuthEntry } from './docker-config.ts';

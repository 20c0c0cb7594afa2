/** The OCI distribution client: what `runtime/images` uses to pull and push. */
export { RegistryClient, type RegistryClientOptions, type RegistryRequest, type RequestBody } from './registry-client.ts';
export { RegistryAuth, mergeScopes, parseWwwAuthenticate, repositoryScope, type Challenge } from './auth.ts';
export { DOCKER_HUB_HOST, isInsecureRegistry, registryEndpoint, type RegistryEndpoint } from './registry-host.ts';
export { pullFromRegistry, type PullDeps, type PullRequest, type PulledImage } from './pull.ts';
export { pushToRegistry, type BlobPushOutcome, type PushDeps, type PushRequest, type PushResult } from './push.ts';
export { MANIFEST_ACCEPT, fetchManifest, selectPlatform } from './manifest-fetch.ts';

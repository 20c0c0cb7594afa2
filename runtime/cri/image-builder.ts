import type { CallOptions, ContainerId, ImageId, KeyValue } from './types.ts';

/**
 * Where a build's files come from: a directory on this node, a Git repository at a
 * ref (`git archive`), or a tar archive already stored in this node's content store
 * by its digest (what `berth build` uploads).
 */
export type BuildContextSource =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'git'; readonly repository: string; readonly ref?: string; readonly subPath?: string }
  | { readonly kind: 'archive'; readonly digest: string };

/** A Dockerfile build, as `docker build` takes it. */
export interface BuildImageRequest extends CallOptions {
  readonly context: BuildContextSource;
  /** The Dockerfile's path inside the context; default `Dockerfile`. */
  readonly dockerfile?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The stage to stop at; default the last. */
  readonly target?: string;
  /** Run every step even when it is cached. */
  readonly noCache?: boolean;
  /** References for the result. */
  readonly tags: readonly string[];
  /** Each line of the build log (steps and command output), in order. */
  readonly onLog?: (line: string) => void;
  /** Also append the log to this file, so it stays readable afterwards. */
  readonly logFile?: string;
}

export interface BuildImageResult {
  readonly imageId: ImageId;
  readonly manifestDigest: string;
  /** Steps run (FROM excluded) and how many of them came from the cache. */
  readonly steps: number;
  readonly cachedSteps: number;
}

/** Edits to the image config of a commit, like `docker commit --change`. */
export interface ImageConfigChanges {
  readonly env?: readonly KeyValue[];
  readonly cmd?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly workingDir?: string;
  readonly user?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly exposedPorts?: readonly string[];
  readonly volumes?: readonly string[];
  readonly stopSignal?: string;
}

/** A commit of a container's filesystem, as `docker commit` takes it. */
export interface CommitContainerRequest extends CallOptions {
  /** Freeze a running container while its layer is read. Default true. */
  readonly pause?: boolean;
  readonly tags: readonly string[];
  readonly changes?: ImageConfigChanges;
  readonly author?: string;
  /** The commit message, recorded in the image history. */
  readonly comment?: string;
}

export interface CommitContainerResult {
  readonly imageId: ImageId;
  readonly manifestDigest: string;
}

/**
 * Makes images on this node: from a Dockerfile (build) and from a container's
 * filesystem (commit), the half of Docker that CRI leaves out. Failures are
 * `RuntimeError`s: `InvalidArgument` for a bad Dockerfile or a failing step (the
 * message names the step, its Dockerfile line and the exit code), `NotFound` for a
 * missing context, base image or container, `Unavailable` where the node cannot do it.
 */
export interface ImageBuilder {
  buildImage(req: BuildImageRequest): Promise<BuildImageResult>;
  commitContainer(id: ContainerId, req: CommitContainerRequest): Promise<CommitContainerResult>;
}

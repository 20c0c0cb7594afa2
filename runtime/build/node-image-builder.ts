/**
 * `NodeImageBuilder`: the node's `ImageBuilder` (runtime/cri), what the agent's
 * Image reconciler calls for `spec.source.build` and `spec.source.commit`. Builds run
 * `build()` of this folder on the node's image store; commits ask the runtime for
 * the container's writable layer and commit it into the same store.
 */
import { RuntimeError } from '../cri/errors.ts';
import type {
  BuildImageRequest,
  BuildImageResult,
  CommitContainerRequest,
  CommitContainerResult,
  ImageBuilder,
} from '../cri/image-builder.ts';
import type { ContainerId } from '../cri/types.ts';
import { isDigest } from '../images/digest.ts';
import type { ImageStore } from '../images/image-store.ts';
import type { CommitContainerOptions } from '../server/container-commit.ts';
import type { CommitResult } from '../images/commit.ts';
import { build } from './builder.ts';
import type { BuildContext } from './context.ts';

/** What commits need from the runtime: `RuncRuntimeService` has it. */
export interface CommittingRuntime {
  commitContainer(id: ContainerId, opts: CommitContainerOptions): Promise<CommitResult>;
}

export interface NodeImageBuilderDeps {
  readonly store: ImageStore;
  /** Absent (the fake runtime): commits reject with `Unavailable`. */
  readonly runtime?: CommittingRuntime;
  /** The cgroup under which each RUN step gets its own; default `/berth-build`. */
  readonly cgroupParent?: string;
}

/** See the module comment. */
export class NodeImageBuilder implements ImageBuilder {
  constructor(private readonly deps: NodeImageBuilderDeps) {}

  async buildImage(req: BuildImageRequest): Promise<BuildImageResult> {
    const { store } = this.deps;
    const result = await build({
      store,
      context: await this.context(req.context),
      tags: req.tags,
      ...(req.dockerfile ? { dockerfile: req.dockerfile } : {}),
      ...(req.buildArgs ? { buildArgs: req.buildArgs } : {}),
      ...(req.target ? { target: req.target } : {}),
      ...(req.noCache ? { noCache: true } : {}),
      ...(req.onLog ? { onLog: req.onLog } : {}),
      ...(req.logFile ? { logFile: req.logFile } : {}),
      ...(this.deps.cgroupParent ? { cgroupParent: this.deps.cgroupParent } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    return {
      imageId: result.imageId,
      manifestDigest: result.manifestDigest,
      steps: result.steps.filter((s) => !/^FROM\b/i.test(s.instruction)).length,
      cachedSteps: result.cachedSteps,
    };
  }

  async commitContainer(id: ContainerId, req: CommitContainerRequest): Promise<CommitContainerResult> {
    const { runtime, store } = this.deps;
    if (!runtime) throw new RuntimeError('Unavailable', 'this node\'s runtime cannot commit containers');
    const result = await runtime.commitContainer(id, {
      images: store,
      tags: req.tags,
      ...(req.pause !== undefined ? { pause: req.pause } : {}),
      ...(req.changes ? { changes: req.changes } : {}),
      ...(req.author ? { author: req.author } : {}),
      ...(req.comment ? { comment: req.comment } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    return { imageId: result.id, manifestDigest: result.manifestDigest };
  }

  /** The builder's context for a request's: an archive digest is a tar blob of the store. */
  private async context(source: BuildImageRequest['context']): Promise<BuildContext> {
    switch (source.kind) {
      case 'dir':
        return { kind: 'dir', path: source.path };
      case 'git':
        return { kind: 'git', repository: source.repository, ref: source.ref ?? 'HEAD', ...(source.subPath ? { subPath: source.subPath } : {}) };
      case 'archive': {
        if (!isDigest(source.digest)) throw new RuntimeError('InvalidArgument', `build context digest ${JSON.stringify(source.digest)} is not a sha256 digest`);
        const content = await this.deps.store.content();
        if (!(await content.hasBlob(source.digest))) throw new RuntimeError('NotFound', `build context archive ${source.digest} has not been uploaded to this node`);
        return { kind: 'tar', path: content.blobPath(source.digest) };
      }
    }
  }
}

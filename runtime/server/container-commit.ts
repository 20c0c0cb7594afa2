import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerId, ContainerState, ImageId, ImageRef } from '../cri/types.ts';
import type { CommitInput, CommitResult } from '../images/commit.ts';
import { toContainerState } from '../task/states.ts';
import { pauseContainer } from './container-pause.ts';
import { resumeContainer } from './container-resume.ts';
import { lookup, toRuntimeError, type ServerContext } from './context.ts';

/** A container's writable layer and what it sits on: the input of a commit. */
export interface ContainerLayer {
  readonly id: ContainerId;
  /** The overlayfs upper directory: everything the container changed, whiteouts included. */
  readonly upperDir: string;
  /** The image the container was created from, as asked (`ContainerConfig.image`). */
  readonly imageRef: ImageRef;
  /** The image ID it resolved to at create: the commit's base, even if the reference has moved since. */
  readonly imageId: ImageId;
  readonly state: ContainerState;
  /**
   * Mount destinations inside the container, relative (`proc`, `etc/hosts`): what
   * the runtime mounted over the root filesystem, so what a commit leaves out.
   */
  readonly mountPoints: readonly string[];
  /** The container's process as a string, for the history entry (`created_by`). */
  readonly command: string;
}

/** The part of `ImageStore` a container commit uses. */
export interface ContainerCommitTarget {
  commit(input: CommitInput): Promise<CommitResult>;
}

/** Options of `commitContainer`: the commit's image-side fields, minus what the container supplies. */
export interface CommitContainerOptions
  extends CallOptions, Omit<CommitInput, 'baseImage' | 'upperDir' | 'exclude' | 'signal'> {
  /** Where the image goes. */
  readonly images: ContainerCommitTarget;
  /** Freeze a running container during the commit, as Docker does. Default true. */
  readonly pause?: boolean;
}

/**
 * The writable layer of a container that has not been removed (created,
 * running, paused or exited), read from its record and its bundle.
 *
 * Rejects with `NotFound`.
 */
export async function containerLayer(ctx: ServerContext, id: ContainerId): Promise<ContainerLayer> {
  const task = lookup(ctx, id);
  const r = task.record;
  let mountPoints: string[] = [];
  try {
    const spec = JSON.parse(await readFile(join(task.dir, 'config.json'), 'utf8')) as { mounts?: { destination?: string }[]; process?: { args?: string[] } };
    mountPoints = (spec.mounts ?? [])
      .map((m) => (m.destination ?? '').split('/').filter((p) => p !== '' && p !== '.').join('/'))
      .filter((p) => p !== '');
  } catch (err) {
    throw toRuntimeError(err, `read the bundle of container ${id}`);
  }
  const command = [...(r.config.command ?? []), ...(r.config.args ?? [])].join(' ');
  return {
    id,
    upperDir: join(task.dir, 'upper'),
    imageRef: r.config.image,
    imageId: r.imageId,
    state: toContainerState(task.state),
    mountPoints: [...new Set(mountPoints)].sort(),
    command,
  };
}

/**
 * Commits a container's writable layer on top of its image as a new image in
 * `opts.images` (`docker commit`): a running container is paused for the
 * commit and resumed afterwards, also when the commit fails (unless `pause` is
 * false); a paused, created or exited one is committed as it is. What the
 * runtime mounted (`/proc`, `/etc/hosts`, volumes) is left out.
 *
 * Do not remove the container during a commit. Rejects with `NotFound` (no
 * such container, or its image is gone), whatever the image store rejects
 * with, or the resume's error when only the resume failed (the image is then
 * committed).
 */
export async function commitContainer(ctx: ServerContext, id: ContainerId, opts: CommitContainerOptions): Promise<CommitResult> {
  const { images, pause = true, signal, ...input } = opts;
  const layer = await containerLayer(ctx, id);
  const call = signal ? { signal } : {};
  let paused = false;
  if (pause && layer.state === 'running') {
    try {
      await pauseContainer(ctx, id, call);
      paused = true;
    } catch (err) {
      // It exited in between: commit it as it is.
      if (!isRuntimeError(err, 'FailedPrecondition')) throw err;
    }
  }
  let result: CommitResult;
  try {
    result = await images.commit({
      ...(layer.command !== '' && { createdBy: layer.command }),
      ...input,
      baseImage: layer.imageId,
      upperDir: layer.upperDir,
      exclude: layer.mountPoints,
      ...call,
    });
  } catch (err) {
    if (paused) {
      await resumeContainer(ctx, id).catch((e: unknown) => ctx.log.warn({ err: e, id }, 'cannot resume the container after a failed commit'));
    }
    throw err;
  }
  if (paused) {
    await resumeContainer(ctx, id).catch((err: unknown) => {
      // It exited while paused (killed): there is nothing left to resume.
      if (!isRuntimeError(err, 'FailedPrecondition')) throw err;
    });
  }
  return result;
}

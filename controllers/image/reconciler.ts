/**
 * `ImageReconciler`: the node agent's Image reconciler (all-in-one for now: every
 * Image is imported into this node's store). `spec.source.import` is imported and
 * tagged; other sources are reported as not implemented yet; deletion removes the tags.
 */
import type { Condition, ImageStatus } from '../../api/types/index.ts';
import { isRuntimeError, type ImageService } from '../../runtime/cri/index.ts';
import {
  realClock,
  setCondition,
  type ApiClient,
  type Clock,
  type EventRecorder,
  type Image,
  type Lister,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';

/** The Image finalizer: its tags are removed from the node's store before the object goes. */
export const IMAGE_FINALIZER = 'berth.dev/image';

export interface ImageRetryOptions {
  /** First retry of a failed import or a refused removal. Default 1 s. */
  readonly initialMs?: number;
  /** Largest retry delay. Default 60 s. */
  readonly maxMs?: number;
}

export interface ImageReconcilerDeps {
  readonly imagesCache: Lister<Image>;
  readonly client: ApiClient;
  readonly images: ImageService;
  readonly nodeName: string;
  readonly recorder?: EventRecorder;
  readonly clock?: Clock;
  readonly retry?: ImageRetryOptions;
}

/** The references an Image answers to: `spec.tags`, or `<name>:latest`. */
export const tagsOf = (img: Image): string[] => (img.spec?.tags?.length ? [...img.spec.tags] : [`${img.metadata.name}:latest`]);

/**
 * Imports each Image's `spec.source.import.path` into the node's store, tagged with
 * its tags, and reports `phase`, `id`, `digest` (the manifest digest when the store
 * knows one, else the image ID) and `size`.
 *
 * Idempotent: an Image `Ready` for its generation whose tags still resolve to its
 * `status.id` is not imported again. A failed import is `Failed` + `Stalled=True` and
 * retried with back-off (the file may appear). A removal the store refuses because a
 * container uses the image keeps the finalizer, says which container in the `Ready`
 * condition, and is retried.
 */
export class ImageReconciler implements Reconciler {
  private readonly clock: Clock;
  /** Consecutive failures per key and generation, for the retry back-off. */
  private readonly failures = new Map<string, { generation: number; count: number }>();

  constructor(private readonly deps: ImageReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { imagesCache, client, images } = this.deps;
    const call = { signal: ctx.signal };
    const key = `${req.namespace}/${req.name}`;
    const want = imagesCache.get(req.namespace, req.name);
    if (!want) {
      this.failures.delete(key);
      return {};
    }
    const generation = want.metadata.generation ?? 0;
    const tags = tagsOf(want);

    if (want.metadata.deletionTimestamp) {
      if (!(want.metadata.finalizers ?? []).includes(IMAGE_FINALIZER)) return {};
      try {
        for (const t of tags) await images.removeImage(t, call);
      } catch (err) {
        if (!isRuntimeError(err, 'FailedPrecondition')) throw err;
        const message = `cannot remove the image from node ${this.deps.nodeName}: ${err.message}; retrying`;
        const status = this.withConditions(want, { ...want.status, message }, [
          ['Ready', 'False', 'InUse', message],
          ['Reconciling', 'True', 'InUse', message],
          ['Stalled', 'False', 'InUse', ''],
        ]);
        await client.updateStatusIfChanged(want, status, call);
        if (want.status?.message !== message) void this.deps.recorder?.warning(want, 'InUse', message);
        return { requeueAfterMs: this.retryDelay(key, generation) };
      }
      this.failures.delete(key);
      void this.deps.recorder?.normal(want, 'Removed', `removed ${tags.join(', ')} from node ${this.deps.nodeName}`);
      await client.removeFinalizer(want, IMAGE_FINALIZER, call);
      return {};
    }

    const obj = await client.ensureFinalizer(want, IMAGE_FINALIZER, call);
    const source = obj.spec.source ?? {};
    const path = source.import?.path;
    if (!path) {
      const kind = Object.keys(source).find((k) => (source as Record<string, unknown>)[k] !== undefined) ?? 'none';
      const message = `spec.source.${kind} is not implemented yet: pull, build and commit arrive with issue 4; use spec.source.import`;
      const status = this.withConditions(obj, { ...base(obj.status), phase: 'Pending', message, observedGeneration: generation }, [
        ['Ready', 'False', 'SourceNotImplemented', message],
        ['Reconciling', 'False', 'SourceNotImplemented', message],
        ['Stalled', 'True', 'SourceNotImplemented', message],
      ]);
      await this.write(obj, status, 'SourceNotImplemented', message, ctx);
      return {};
    }

    if (await this.isCurrent(obj, tags, ctx)) {
      this.failures.delete(key);
      return {};
    }
    try {
      const id = await images.importImage(path, { tags, signal: ctx.signal });
      const image = await images.imageStatus(id, call);
      const digest = image?.repoDigests.map((d) => d.slice(d.indexOf('@') + 1)).find((d) => d.startsWith('sha256:')) ?? id;
      const message = `imported ${path} as ${tags.join(', ')} on node ${this.deps.nodeName}`;
      const status = this.withConditions(
        obj,
        { ...base(obj.status), phase: 'Ready', id, digest, ...(image ? { size: image.sizeBytes } : {}), observedGeneration: generation },
        [
          ['Ready', 'True', 'Imported', message],
          ['Reconciling', 'False', 'Imported', ''],
          ['Stalled', 'False', 'Imported', ''],
        ],
      );
      this.failures.delete(key);
      await this.write(obj, status, 'Imported', message, ctx);
      return {};
    } catch (err) {
      if (!isRuntimeError(err) || !['NotFound', 'InvalidArgument', 'FailedPrecondition'].includes(err.code)) throw err;
      const message = `cannot import ${path}: ${err.message}`;
      const status = this.withConditions(obj, { ...base(obj.status), phase: 'Failed', message, observedGeneration: generation }, [
        ['Ready', 'False', 'ImportFailed', message],
        ['Reconciling', 'False', 'ImportFailed', message],
        ['Stalled', 'True', 'ImportFailed', `${message}; fix the file or spec.source.import.path (retried with back-off)`],
      ]);
      await this.write(obj, status, 'ImportFailed', message, ctx);
      return { requeueAfterMs: this.retryDelay(key, generation) };
    }
  }

  /** Ready for this generation, and every tag still names `status.id` in the store. */
  private async isCurrent(obj: Image, tags: readonly string[], ctx: ReconcileContext): Promise<boolean> {
    const s = obj.status;
    if (s?.phase !== 'Ready' || s.observedGeneration !== obj.metadata.generation || !s.id) return false;
    for (const t of tags) if ((await this.deps.images.imageStatus(t, { signal: ctx.signal }))?.id !== s.id) return false;
    return true;
  }

  /** Writes `status` if it changed; an Event when the phase changed. */
  private async write(obj: Image, status: ImageStatus, reason: string, message: string, ctx: ReconcileContext): Promise<void> {
    const written = await this.deps.client.updateStatusIfChanged(obj, status, { signal: ctx.signal });
    if (obj.status?.phase !== status.phase || obj.status?.message !== status.message) {
      if (status.phase === 'Ready') void this.deps.recorder?.normal(written, reason, message);
      else void this.deps.recorder?.warning(written, reason, message);
    }
  }

  private withConditions(obj: Image, status: ImageStatus, conds: [string, Condition['status'], string, string][]): ImageStatus {
    const generation = obj.metadata.generation ?? 0;
    const now = this.clock.nowMs();
    let conditions = obj.status?.conditions;
    for (const [type, s, reason, message] of conds) conditions = setCondition(conditions, { type, status: s, reason, message, observedGeneration: generation }, now);
    return dropUndefined({ ...status, conditions });
  }

  private retryDelay(key: string, generation: number): number {
    const f = this.failures.get(key);
    const count = f && f.generation === generation ? f.count + 1 : 1;
    this.failures.set(key, { generation, count });
    const initial = this.deps.retry?.initialMs ?? 1_000;
    return Math.min(this.deps.retry?.maxMs ?? 60_000, initial * 2 ** Math.min(count - 1, 30));
  }
}

/** The status without what one outcome sets and another clears. */
function base(s: ImageStatus | undefined): ImageStatus {
  const { message: _m, phase: _p, ...rest } = s ?? {};
  return rest;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

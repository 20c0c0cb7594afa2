/**
 * `ImageReconciler`: the node agent's Image reconciler (all-in-one for now: every
 * Image is made in this node's store). It makes the image from `spec.source` —
 * import, pull, build or commit — tags it with `spec.tags`, then pushes it to each
 * `spec.push` target, reporting phase, progress and the result in status. Only a
 * change of `spec.source` makes it again: a change of `spec.tags` re-tags it in the
 * store and one of `spec.push` pushes it (see `applied.ts`). Deletion removes the tags.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Condition, ImageStatus, PushedReference, PushTarget } from '../../api/types/index.ts';
import {
  isRuntimeError,
  type AuthConfig,
  type ImageBuilder,
  type ImageConfigChanges,
  type Image as RuntimeImage,
  type ImageId,
  type ImageProgress,
  type ImageService,
  type RuntimeService,
} from '../../runtime/cri/index.ts';
import { normalizeImageReference } from '../container/image-reference.ts';
import { LABEL_NAME, LABEL_NAMESPACE } from '../container/labels.ts';
import {
  realClock,
  Secret,
  setCondition,
  type ApiClient,
  type Clock,
  type EventRecorder,
  findCondition,
  Image,
  type Lister,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';
import { appliedOf, appliedStatus, sourceHash, type AppliedImage } from './applied.ts';
import { CredentialsError, credentialsFor } from './credentials.ts';
import { ProgressReporter } from './progress.ts';

/** The Image finalizer: its tags are removed from the node's store before the object goes. */
export const IMAGE_FINALIZER = 'berth.dev/image';

export interface ImageRetryOptions {
  /** First retry of a failed source or push, or a refused removal. Default 1 s. */
  readonly initialMs?: number;
  /** Largest retry delay. Default 60 s. */
  readonly maxMs?: number;
}

export interface ImageReconcilerDeps {
  readonly imagesCache: Lister<Image>;
  readonly client: ApiClient;
  readonly images: ImageService;
  /** Builds and commits; absent: those sources fail with a clear message. */
  readonly builder?: ImageBuilder;
  /** Finds the runtime container of a commit's Container. */
  readonly runtime?: Pick<RuntimeService, 'listContainers'>;
  readonly nodeName: string;
  readonly recorder?: EventRecorder;
  readonly clock?: Clock;
  readonly retry?: ImageRetryOptions;
  /** Where build logs are kept (`<namespace>_<name>.log`); absent: not kept. */
  readonly buildLogDir?: string;
  /** Least time between two progress writes to status. Default 1 s. */
  readonly progressIntervalMs?: number;
}

/** The references an Image answers to: `spec.tags`, or `<name>:latest`. */
export const tagsOf = (img: Image): string[] => (img.spec?.tags?.length ? [...img.spec.tags] : [`${img.metadata.name}:latest`]);

type SourceKind = 'import' | 'pull' | 'build' | 'commit';

/** How each source is reported: the phase while it runs and the reasons of its outcomes. */
const SOURCES: Record<SourceKind, { phase: ImageStatus['phase']; doing: string; done: string; failed: string }> = {
  import: { phase: 'Pending', doing: 'Importing', done: 'Imported', failed: 'ImportFailed' },
  pull: { phase: 'Pulling', doing: 'Pulling', done: 'Pulled', failed: 'PullFailed' },
  build: { phase: 'Building', doing: 'Building', done: 'Built', failed: 'BuildFailed' },
  commit: { phase: 'Building', doing: 'Committing', done: 'Committed', failed: 'CommitFailed' },
};

/** Runtime errors that only an edit (or a file appearing) can fix: Stalled, retried slowly. */
const STALLING = new Set(['NotFound', 'InvalidArgument', 'FailedPrecondition', 'AlreadyExists']);

/** A failure to report: reason, message, and whether it stalls the Image. */
class ReportedFailure extends Error {
  constructor(readonly reason: string, message: string, readonly stalled: boolean, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Makes each Image on this node and keeps it so.
 *
 * Idempotent: an image is made again only when `spec.source` changed since it was
 * made (`status.sourceHash`, with the image in `status.id` and the tags applied in
 * `status.tags`) or its content left the store; otherwise a change of
 * `spec.tags` only adds and removes references in the store (so a commit whose
 * container is gone stays `Ready` when re-tagged: a commit is a snapshot, never
 * retaken for a tag), and a target in `status.pushed` with the current digest is not
 * pushed again. A failed
 * source or push is `Failed`: `Stalled=True` when the spec or the world must change
 * (bad reference, missing file, failing build step, refused credentials), else
 * `Reconciling=True`; both are retried with back-off. A removal the store refuses
 * because a container uses the image keeps the finalizer, says which container in
 * the `Ready` condition, and is retried.
 */
export class ImageReconciler implements Reconciler {
  private readonly clock: Clock;
  /** Consecutive failures per key and generation, for the retry back-off. */
  private readonly failures = new Map<string, { generation: number; count: number }>();

  constructor(private readonly deps: ImageReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const key = `${req.namespace}/${req.name}`;
    const want = this.deps.imagesCache.get(req.namespace, req.name);
    if (!want) {
      this.failures.delete(key);
      return {};
    }
    if (want.metadata.deletionTimestamp) return this.finalize(ctx, want, key);

    let obj = await this.deps.client.ensureFinalizer(want, IMAGE_FINALIZER, { signal: ctx.signal });
    const generation = obj.metadata.generation ?? 0;
    try {
      obj = await this.ensureImage(ctx, obj);
      obj = await this.push(ctx, obj);
    } catch (err) {
      const failure = this.asFailure(err);
      if (!failure) throw err;
      const latest = this.deps.imagesCache.get(req.namespace, req.name) ?? obj;
      const status = this.withConditions(latest, { ...base(latest.status), phase: 'Failed', message: failure.message, observedGeneration: generation }, [
        ['Ready', 'False', failure.reason, failure.message],
        ['Reconciling', failure.stalled ? 'False' : 'True', failure.reason, failure.stalled ? '' : `${failure.message}; retrying`],
        ['Stalled', failure.stalled ? 'True' : 'False', failure.reason, failure.stalled ? `${failure.message} (retried with back-off)` : ''],
      ]);
      await this.write(latest, status, failure.reason, failure.message, ctx);
      return { requeueAfterMs: this.retryDelay(key, generation) };
    }
    this.failures.delete(key);
    return {};
  }

  private async finalize(ctx: ReconcileContext, want: Image, key: string): Promise<Result> {
    const { client, images } = this.deps;
    const call = { signal: ctx.signal };
    if (!(want.metadata.finalizers ?? []).includes(IMAGE_FINALIZER)) return {};
    const tags = tagsOf(want);
    const applied = appliedOf(want);
    try {
      for (const t of tags) await images.removeImage(t, call);
      // tags applied but no longer in the spec (a removal refused earlier): only while still ours
      for (const t of applied?.tags ?? []) {
        if (!tags.includes(t) && (await images.imageStatus(t, call))?.id === applied!.id) await images.removeImage(t, call);
      }
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
      return { requeueAfterMs: this.retryDelay(key, want.metadata.generation ?? 0) };
    }
    this.failures.delete(key);
    void this.deps.recorder?.normal(want, 'Removed', `removed ${tags.join(', ')} from node ${this.deps.nodeName}`);
    await client.removeFinalizer(want, IMAGE_FINALIZER, call);
    return {};
  }

  /**
   * Makes the image when `spec.source` differs from the one it was made from (or its
   * content left the store), else only re-tags it; resolves with the latest object.
   */
  private async ensureImage(ctx: ReconcileContext, obj: Image): Promise<Image> {
    const made = this.madeFrom(obj);
    if (made?.source === sourceHash(obj.spec.source)) {
      const image = await this.deps.images.imageStatus(made.id, { signal: ctx.signal });
      if (image) return this.retag(ctx, obj, made, image);
    }
    return this.make(ctx, obj, made);
  }

  /**
   * What `obj` was last made from: its status record, else (an Image made before
   * `status.sourceHash` existed) its status when `Ready` for the current generation.
   */
  private madeFrom(obj: Image): AppliedImage | undefined {
    const applied = appliedOf(obj);
    if (applied) return applied;
    const s = obj.status;
    if (!s?.id || s.observedGeneration !== obj.metadata.generation || (s.phase !== 'Ready' && s.phase !== 'Pushing')) return undefined;
    return { source: sourceHash(obj.spec.source), id: s.id, tags: tagsOf(obj) };
  }

  /**
   * Points `spec.tags` at the image `made` and removes the tags dropped since; writes
   * `Ready` for this generation unless it is already, or a push is due (that writes it).
   */
  private async retag(ctx: ReconcileContext, obj: Image, made: AppliedImage, image: RuntimeImage): Promise<Image> {
    const { images } = this.deps;
    const call = { signal: ctx.signal };
    const generation = obj.metadata.generation ?? 0;
    const tags = tagsOf(obj);
    let changed = false;
    for (const t of tags) {
      if ((await images.imageStatus(t, call))?.id === made.id) continue;
      try {
        await images.tagImage(made.id, t, call);
      } catch (err) {
        throw this.asFailure(err, 'TagFailed', `cannot tag ${made.id} as ${t}`) ?? err;
      }
      changed = true;
    }
    if (await this.untag(ctx, obj, made, tags)) changed = true;
    const latest = await this.record(ctx, obj, { ...made, tags });
    const s = latest.status;
    const ready = findCondition(s?.conditions, 'Ready');
    const readyNow = s?.phase === 'Ready' && s.observedGeneration === generation && ready?.status === 'True';
    if (!changed && s?.id === made.id && s.digest && (readyNow || this.toPush(latest).length > 0)) return latest;
    const short = made.id.replace(/^sha256:/, '').slice(0, 12);
    const [reason, message] = changed
      ? ['Tagged', `tagged ${short} as ${tags.join(', ')} on node ${this.deps.nodeName}`]
      : ready?.status === 'True' && s?.id === made.id
        ? [ready.reason ?? 'Ready', ready.message ?? '']
        : ['Ready', `${short} is ready as ${tags.join(', ')} on node ${this.deps.nodeName}`];
    const { progress: _p, ...rest } = base(s);
    const status = this.withConditions(latest, { ...rest, phase: 'Ready', id: made.id, digest: digestOf(image), size: image.sizeBytes, observedGeneration: generation }, [
      ['Ready', 'True', reason, message],
      ['Reconciling', 'False', reason, ''],
      ['Stalled', 'False', reason, ''],
    ]);
    const written = await this.deps.client.updateStatusIfChanged(latest, status, { signal: ctx.signal });
    if (changed || s?.phase !== 'Ready') void this.deps.recorder?.normal(written, reason, message);
    return written;
  }

  /**
   * Removes from the store the tags `from` applied that `tags` no longer has, while they
   * still name `from.id` and no other Image claims them. A removal the store refuses (a
   * container uses an image that would go) leaves the tag. Resolves with whether any went.
   */
  private async untag(ctx: ReconcileContext, obj: Image, from: AppliedImage | undefined, tags: readonly string[]): Promise<boolean> {
    if (!from) return false;
    const { images } = this.deps;
    const call = { signal: ctx.signal };
    const keep = new Set(tags.map(normalizeImageReference));
    const others = this.deps.imagesCache.list().filter((o) => o.metadata.uid !== obj.metadata.uid);
    const claimed = new Set(others.flatMap(tagsOf).map(normalizeImageReference));
    let removed = false;
    for (const t of from.tags) {
      const ref = normalizeImageReference(t);
      if (keep.has(ref) || claimed.has(ref) || (await images.imageStatus(t, call))?.id !== from.id) continue;
      try {
        await images.removeImage(t, call);
        removed = true;
      } catch (err) {
        if (!isRuntimeError(err, 'FailedPrecondition')) throw err;
      }
    }
    return removed;
  }

  /**
   * Writes `applied` into the status of `obj` (`id`, `sourceHash`, `tags`) unless it is
   * there already, with an unconditional merge patch of the status subresource (no
   * conflict can lose it once the store holds the image); resolves with the object as stored.
   */
  private async record(ctx: ReconcileContext, obj: Image, applied: AppliedImage): Promise<Image> {
    const want = appliedStatus(applied);
    const s = obj.status;
    if (s?.id === want.id && s.sourceHash === want.sourceHash && isDeepStrictEqual(s.tags ?? [], want.tags)) return obj;
    return this.deps.client.patch(Image, obj.metadata.namespace ?? '', obj.metadata.name ?? '', { status: want }, { signal: ctx.signal, subresource: 'status' });
  }

  /** Makes the image from its source, tags it, and writes `Ready` (the returned object); `previous`: what it replaces. */
  private async make(ctx: ReconcileContext, obj: Image, previous: AppliedImage | undefined): Promise<Image> {
    const source = obj.spec.source ?? {};
    const kind = (['import', 'pull', 'build', 'commit'] as const).find((k) => source[k] !== undefined);
    if (!kind) throw new ReportedFailure('InvalidSource', 'spec.source names no source: give one of import, pull, build or commit', true);
    const how = SOURCES[kind];
    const generation = obj.metadata.generation ?? 0;
    const tags = tagsOf(obj);
    const what = describeSource(obj, kind);
    const progress = new ProgressReporter({
      image: obj,
      client: this.deps.client,
      clock: this.clock,
      intervalMs: this.deps.progressIntervalMs ?? 1_000,
      phase: how.phase,
      generation,
      conditions: (img, message) => this.conditionsOf(img, [
        ['Ready', 'False', how.doing, message],
        ['Reconciling', 'True', how.doing, message],
        ['Stalled', 'False', how.doing, ''],
      ]),
    });
    if (kind !== 'import') void this.deps.recorder?.normal(obj, how.doing, `${how.doing.toLowerCase()} ${what} on node ${this.deps.nodeName}`);
    await progress.start(`${how.doing.toLowerCase()} ${what}`);
    let id: ImageId;
    let detail = '';
    try {
      ({ id, detail } = await this.fromSource(ctx, progress.latest, kind, tags, progress));
    } catch (err) {
      await progress.stop();
      throw this.asFailure(err, how.failed, `cannot ${kind} ${what}`) ?? err;
    }
    await progress.stop();
    const image = await this.deps.images.imageStatus(id, { signal: ctx.signal });
    const digest = image ? digestOf(image) : id;
    const message = `${how.done.toLowerCase()} ${what} as ${tags.join(', ')} on node ${this.deps.nodeName}${detail}`;
    await this.untag(ctx, obj, previous, tags);
    // the record first: once the status says Ready, what it was made from is known
    const latest = await this.record(ctx, progress.latest, { source: sourceHash(obj.spec.source), id, tags });
    const { progress: _p, pushed: _pushed, ...rest } = base(latest.status);
    const status = this.withConditions(latest, { ...rest, phase: 'Ready', id, digest, ...(image ? { size: image.sizeBytes } : {}), observedGeneration: generation }, [
      ['Ready', 'True', how.done, message],
      ['Reconciling', 'False', how.done, ''],
      ['Stalled', 'False', how.done, ''],
    ]);
    return this.write(latest, status, how.done, message, ctx);
  }

  /** Runs the source; resolves with the image ID and a detail for the Ready message. */
  private async fromSource(
    ctx: ReconcileContext, obj: Image, kind: SourceKind, tags: readonly string[], progress: ProgressReporter,
  ): Promise<{ id: ImageId; detail: string }> {
    const { images } = this.deps;
    const source = obj.spec.source;
    const signal = ctx.signal;
    const onProgress = (p: ImageProgress) => progress.bytes(p);
    switch (kind) {
      case 'import':
        return { id: await images.importImage(source.import!.path, { tags, signal, onProgress }), detail: '' };
      case 'pull': {
        const ref = source.pull!.reference;
        const auth = await this.auth(obj, source.pull!.credentialsSecret, ref, ctx);
        const id = await images.pullImage(ref, auth, { signal, onProgress, ...(auth ? { auth } : {}) });
        for (const t of tags) await images.tagImage(id, t, { signal });
        return { id, detail: '' };
      }
      case 'build': {
        const b = source.build!;
        const builder = this.requireBuilder('build');
        const ctxSource = b.context.path !== undefined
          ? { kind: 'dir' as const, path: b.context.path }
          : b.context.git
            ? { kind: 'git' as const, repository: b.context.git.url, ...(b.context.git.ref ? { ref: b.context.git.ref } : {}), ...(b.context.git.subPath ? { subPath: b.context.git.subPath } : {}) }
            : { kind: 'archive' as const, digest: b.context.archive?.digest ?? '' };
        const result = await builder.buildImage({
          context: ctxSource,
          tags,
          signal,
          ...(b.dockerfile ? { dockerfile: b.dockerfile } : {}),
          ...(b.buildArgs ? { buildArgs: b.buildArgs } : {}),
          ...(b.target ? { target: b.target } : {}),
          ...(b.noCache ? { noCache: true } : {}),
          ...(this.deps.buildLogDir ? { logFile: `${this.deps.buildLogDir}/${obj.metadata.namespace}_${obj.metadata.name}.log` } : {}),
          onLog: (line) => {
            if (/^step \d+\/\d+/i.test(line)) progress.message(line);
          },
        });
        return { id: result.imageId, detail: ` (${result.steps} steps, ${result.cachedSteps} cached)` };
      }
      case 'commit': {
        const c = source.commit!;
        const builder = this.requireBuilder('commit');
        const ns = obj.metadata.namespace ?? '';
        const found = await this.deps.runtime?.listContainers({ labels: { [LABEL_NAMESPACE]: ns, [LABEL_NAME]: c.container } }, { signal });
        const ctr = found?.filter((x) => x.state !== 'unknown').sort((a, b) => b.createdAtMs - a.createdAtMs)[0];
        if (!ctr) throw new ReportedFailure('ContainerNotFound', `container ${ns}/${c.container} has no runtime container on node ${this.deps.nodeName}`, true);
        const changes = c.changes;
        const result = await builder.commitContainer(ctr.id, {
          tags,
          signal,
          ...(c.pause !== undefined ? { pause: c.pause } : {}),
          ...(c.author ? { author: c.author } : {}),
          ...(c.message ? { comment: c.message } : {}),
          ...(changes ? { changes: toConfigChanges(changes) } : {}),
        });
        return { id: result.imageId, detail: '' };
      }
    }
  }

  /** The `spec.push` targets not yet pushed with the current digest. */
  private toPush(obj: Image): PushTarget[] {
    const digest = obj.status?.digest;
    const done = (obj.status?.pushed ?? []).filter((p) => p.digest === digest);
    return (obj.spec.push ?? []).filter((t) => !done.some((p) => p.reference === t.reference));
  }

  /** Pushes to every `spec.push` target not yet pushed with the current digest; returns the latest object. */
  private async push(ctx: ReconcileContext, obj: Image): Promise<Image> {
    const targets = obj.spec.push ?? [];
    const id = obj.status?.id;
    const digest = obj.status?.digest;
    if (!id || !digest) return obj;
    const keep = (obj.status?.pushed ?? []).filter((p) => p.digest === digest && targets.some((t) => t.reference === p.reference));
    const todo = this.toPush(obj);
    if (todo.length === 0) {
      if (keep.length !== (obj.status?.pushed ?? []).length) return this.deps.client.updateStatusIfChanged(obj, { ...obj.status, pushed: keep }, { signal: ctx.signal });
      return obj;
    }
    const generation = obj.metadata.generation ?? 0;
    let latest = obj;
    const pushed: PushedReference[] = [...keep];
    for (const target of todo) {
      const progress = new ProgressReporter({
        image: latest,
        client: this.deps.client,
        clock: this.clock,
        intervalMs: this.deps.progressIntervalMs ?? 1_000,
        phase: 'Pushing',
        generation,
        conditions: (img, message) => this.conditionsOf(img, [['Reconciling', 'True', 'Pushing', message]]),
        extra: { pushed: [...pushed] },
      });
      await progress.start(`pushing to ${target.reference}`);
      let accepted: string;
      try {
        const auth = await this.auth(latest, target.credentialsSecret, target.reference, ctx);
        accepted = await this.deps.images.pushImage(id, target.reference, { signal: ctx.signal, onProgress: (p) => progress.bytes(p), ...(auth ? { auth } : {}) });
      } catch (err) {
        await progress.stop();
        throw this.asFailure(err, 'PushFailed', `cannot push to ${target.reference}`) ?? err;
      }
      await progress.stop();
      latest = progress.latest;
      pushed.push({ reference: target.reference, digest: accepted, pushedAt: new Date(this.clock.nowMs()).toISOString().replace(/\.\d{3}Z$/, 'Z') });
      void this.deps.recorder?.normal(latest, 'Pushed', `pushed ${digest} to ${target.reference}`);
    }
    const message = `pushed to ${pushed.map((p) => p.reference).join(', ')}`;
    const { progress: _p, ...rest } = base(latest.status);
    const status = this.withConditions(latest, { ...rest, phase: 'Ready', pushed, observedGeneration: generation }, [
      ['Ready', 'True', 'Pushed', latest.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.message ?? message],
      ['Reconciling', 'False', 'Pushed', ''],
      ['Stalled', 'False', 'Pushed', ''],
    ]);
    return this.deps.client.updateStatusIfChanged(latest, status, { signal: ctx.signal });
  }

  /** The credentials of `secretName` (same namespace) for `reference`'s registry; undefined: anonymous. */
  private async auth(obj: Image, secretName: string | undefined, reference: string, ctx: ReconcileContext): Promise<AuthConfig | undefined> {
    if (!secretName) return undefined;
    const ns = obj.metadata.namespace ?? '';
    let secret: Secret;
    try {
      secret = await this.deps.client.get(Secret, ns, secretName, { signal: ctx.signal });
    } catch (err) {
      if ((err as { code?: number }).code === 404) throw new ReportedFailure('CredentialsNotFound', `secret ${ns}/${secretName} not found`, true);
      throw err;
    }
    try {
      return credentialsFor(secret, reference);
    } catch (err) {
      if (err instanceof CredentialsError) throw new ReportedFailure('InvalidCredentials', err.message, true);
      throw err;
    }
  }

  private requireBuilder(what: string): ImageBuilder {
    if (!this.deps.builder) throw new ReportedFailure('Unsupported', `node ${this.deps.nodeName} cannot ${what} images`, true);
    return this.deps.builder;
  }

  /** The failure to report for `err`, or undefined for errors the controller retries as is. */
  private asFailure(err: unknown, reason?: string, what?: string): ReportedFailure | undefined {
    if (err instanceof ReportedFailure) return err;
    if (isRuntimeError(err) && reason && what) {
      return new ReportedFailure(reason, `${what}: ${err.message}`, STALLING.has(err.code), { cause: err });
    }
    return undefined;
  }

  /** Writes `status` if it changed; an Event when the phase or message changed. */
  private async write(obj: Image, status: ImageStatus, reason: string, message: string, ctx: ReconcileContext): Promise<Image> {
    const written = await this.deps.client.updateStatusIfChanged(obj, status, { signal: ctx.signal });
    if (obj.status?.phase !== status.phase || obj.status?.message !== status.message) {
      if (status.phase === 'Ready') void this.deps.recorder?.normal(written, reason, message);
      else void this.deps.recorder?.warning(written, reason, message);
    }
    return written;
  }

  private conditionsOf(obj: Image, conds: [string, Condition['status'], string, string][]): Condition[] | undefined {
    const generation = obj.metadata.generation ?? 0;
    const now = this.clock.nowMs();
    let conditions = obj.status?.conditions;
    for (const [type, s, reason, message] of conds) conditions = setCondition(conditions, { type, status: s, reason, message, observedGeneration: generation }, now);
    return conditions;
  }

  private withConditions(obj: Image, status: ImageStatus, conds: [string, Condition['status'], string, string][]): ImageStatus {
    return dropUndefined({ ...status, conditions: this.conditionsOf(obj, conds) });
  }

  private retryDelay(key: string, generation: number): number {
    const f = this.failures.get(key);
    const count = f && f.generation === generation ? f.count + 1 : 1;
    this.failures.set(key, { generation, count });
    const initial = this.deps.retry?.initialMs ?? 1_000;
    return Math.min(this.deps.retry?.maxMs ?? 60_000, initial * 2 ** Math.min(count - 1, 30));
  }
}

/** What a source is, for messages: `127.0.0.1:5000/app:1`, `the Dockerfile in /src`, `container web`. */
function describeSource(obj: Image, kind: SourceKind): string {
  const s = obj.spec.source;
  switch (kind) {
    case 'import':
      return s.import!.path;
    case 'pull':
      return s.pull!.reference;
    case 'build': {
      const c = s.build!.context;
      const where = c.path ?? (c.git ? `${c.git.url}${c.git.ref ? `@${c.git.ref}` : ''}` : `archive ${c.archive?.digest ?? ''}`);
      return `${s.build!.dockerfile ?? 'Dockerfile'} in ${where}`;
    }
    case 'commit':
      return `container ${s.commit!.container}`;
  }
}

/** An Image's `commit.changes` as the builder takes them. */
function toConfigChanges(c: NonNullable<NonNullable<Image['spec']['source']['commit']>['changes']>): ImageConfigChanges {
  const { env, ...rest } = c;
  return { ...rest, ...(env ? { env: env.map((e) => ({ name: e.name, value: e.value ?? '' })) } : {}) };
}

/** The manifest digest of a stored image (from its repo digests), else its ID. */
function digestOf(image: RuntimeImage): string {
  return image.repoDigests.map((d) => d.slice(d.indexOf('@') + 1)).find((d) => d.startsWith('sha256:')) ?? image.id;
}

/** The status without what one outcome sets and another clears. */
function base(s: ImageStatus | undefined): ImageStatus {
  const { message: _m, phase: _p, ...rest } = s ?? {};
  return rest;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

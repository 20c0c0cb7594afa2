/**
 * A small example reconciler (like controller-runtime's examples/builtins): it
 * reports every Volume as observed — `status.observedGeneration` and a `Ready`
 * condition — and marks Volumes with a driver it cannot serve as `Stalled`.
 * Read it top to bottom; each step says why it is there.
 */
import {
  findCondition,
  setCondition,
  TerminalError,
  realClock,
  type ApiClient,
  type Clock,
  type EventRecorder,
  type Lister,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
  type Volume,
} from '../framework/index.ts';

/** Drivers this example accepts. */
export const SUPPORTED_DRIVERS: readonly string[] = ['local'];

export interface VolumeReadyReconcilerDeps {
  /** Reads come from the shared informer cache… */
  readonly volumes: Lister<Volume>;
  /** …writes go to the API server. */
  readonly client: ApiClient;
  /** Optional: tells humans (`kubectl describe`) about transitions. */
  readonly events?: EventRecorder;
  readonly clock?: Clock;
}

/** Marks each Volume's current generation as observed, `Ready=True`, or `Stalled` for an unknown driver. */
export class VolumeReadyReconciler implements Reconciler {
  constructor(private readonly deps: VolumeReadyReconcilerDeps) {}

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { volumes, client, events } = this.deps;
    const now = (this.deps.clock ?? realClock).nowMs();

    // 1. The request is only a key. Read the whole object from the cache; never ask what changed.
    const volume = volumes.get(req.namespace, req.name);

    // 2. A missing object is a normal case: it was deleted and there is nothing of ours to clean up.
    if (!volume) return {};

    // 3. Being deleted: whoever holds a finalizer acts now; reporting Ready would be wrong.
    if (volume.metadata.deletionTimestamp) return {};

    // 4. Compute the whole status from the whole object. Cache objects are frozen:
    //    build new values instead of changing `volume`.
    const generation = volume.metadata.generation ?? 0;
    const driver = volume.spec?.driver ?? 'local';
    const supported = SUPPORTED_DRIVERS.includes(driver);
    let conditions = setCondition(
      volume.status?.conditions,
      supported
        ? { type: 'Ready', status: 'True', reason: 'Observed', message: `generation ${generation} observed`, observedGeneration: generation }
        : { type: 'Ready', status: 'False', reason: 'UnsupportedDriver', message: `driver ${JSON.stringify(driver)} is not supported`, observedGeneration: generation },
      now,
    );
    conditions = setCondition(
      conditions,
      supported
        ? { type: 'Stalled', status: 'False', reason: 'Observed', message: '', observedGeneration: generation }
        : { type: 'Stalled', status: 'True', reason: 'UnsupportedDriver', message: `use one of: ${SUPPORTED_DRIVERS.join(', ')}`, observedGeneration: generation },
      now,
    );
    const status = { ...volume.status, observedGeneration: generation, conditions };

    // 5. Write only if something changed: a second reconcile of the same generation makes no request.
    //    The write is conditional on the resourceVersion we read; a Conflict throws, and the loop retries.
    const wasReady = findCondition(volume.status?.conditions, 'Ready')?.status;
    const written = await client.updateStatusIfChanged(volume, status, { signal: ctx.signal });

    // 6. Events for transitions only, so `kubectl describe` tells the story without noise.
    const isReady = supported ? 'True' : 'False';
    if (written !== volume && wasReady !== isReady) {
      if (supported) await events?.normal(written, 'Ready', `volume is ready (generation ${generation})`);
      else await events?.warning(written, 'UnsupportedDriver', `driver ${JSON.stringify(driver)} is not supported`);
    }

    // 7. A spec that cannot work until the user edits it: the status says why (step 5);
    //    TerminalError tells the loop not to retry. An edit bumps the generation and enqueues the key again.
    if (!supported) throw new TerminalError(`volume ${req.namespace}/${req.name}: unsupported driver ${JSON.stringify(driver)}`);

    // 8. Nothing to wait for: no requeue. The watch brings the key back when the Volume changes.
    ctx.log.debug({ generation }, 'volume observed');
    return {};
  }
}

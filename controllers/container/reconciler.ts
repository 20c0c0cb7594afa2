/**
 * `ContainerReconciler`: the node agent's reconciler. It drives the runtime
 * container of each Container bound to this node towards the spec (create, start,
 * pause, resume, stop, restart with back-off, replace on a spec change, remove on
 * deletion) and reports what the runtime shows as status, conditions and Events.
 */
import type { Condition, ContainerPhase, ContainerStatus as ApiContainerStatus, HealthStatus } from '../../api/types/index.ts';
import {
  isRuntimeError,
  type AuthConfig,
  type ContainerConfig,
  type ContainerId,
  type ContainerStatus,
  type ImageService,
  type NetworkService,
  type PortService,
  type RuntimeContainer,
  type RuntimeService,
} from '../../runtime/cri/index.ts';
import {
  Container as ContainerKind,
  findCondition,
  isNotFound,
  realClock,
  Secret,
  setCondition,
  TerminalError,
  toConditionTime,
  type ApiClient,
  type Clock,
  type Container,
  type EventRecorder,
  type Lister,
  type Network,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
} from '../framework/index.ts';
import { CredentialsError, credentialsFor } from '../image/credentials.ts';
import type { Volume } from '../framework/index.ts';
import type { Mount } from '../../runtime/cri/index.ts';
import { CONDITION_VOLUMES_READY, resolveVolumeMounts } from '../volume/container-mounts.ts';
import { InvalidSpecError, toContainerConfig, unimplementedFields } from './container-config.ts';
import { containerNetworkKey, planContainerNetwork, validateNetworks, withNetworkStatus } from './container-network.ts';
import { healthSpecOf, withHealthStatus, type HealthProber } from './health.ts';
import { ensureContainerPorts, PORT_CONFLICT_RETRY_MS, releaseContainerPorts, withPortsStatus, type PortsOutcome } from './ports.ts';
import {
  LABEL_BACKOFF_STEP,
  LABEL_GENERATION,
  LABEL_RESTART_COUNT,
  LABEL_SPEC_HASH,
  LABEL_UID,
  ownerLabels,
  RUNTIME_FINALIZER,
  specHash,
} from './labels.ts';
import { effectiveBackoffStep, restartDelayMs, shouldRestart, type RestartBackoffOptions } from './restart-policy.ts';

export interface ContainerReconcilerDeps {
  /** Containers bound to this node (informer with `spec.nodeName=<node>`). */
  readonly containers: Lister<Container>;
  readonly client: ApiClient;
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  readonly nodeName: string;
  readonly recorder?: EventRecorder;
  readonly clock?: Clock;
  /** Restart back-off; default 100 ms doubling to 10 s, reset after a 10 s run. */
  readonly backoff?: RestartBackoffOptions;
  /**
   * How often a created, running or paused container is checked for drift that no
   * runtime event reported (each check is spread ±10 % so a burst of starts does not
   * come back as a burst). Exits arrive as events within ~100 ms, so this is only a
   * safety net, kubelet's `syncFrequency`. Default 60 s.
   */
  readonly resyncMs?: number;
  /** How often a Container waiting for its image looks again (besides Image watch events). Default 5 s. */
  readonly imageRetryMs?: number;
  /** Volume objects (all namespaces), for `spec.volumeMounts`; absent: containers with volume mounts wait (`VolumesReady=False`). */
  readonly volumes?: Lister<Volume>;
  /** Where this node keeps local volumes (`<dataDir>/volumes`, see `controllers/volume`). */
  readonly volumesRoot?: string;
  /** The node's container networks; absent: containers get a loopback-only namespace and `spec.networks` is reported unimplemented. */
  readonly network?: NetworkService;
  /** Network objects (all namespaces), for `spec.networks`. */
  readonly networks?: Lister<Network>;
  /** Network key of the node's default network, joined by containers without `spec.networks`. */
  readonly defaultNetwork?: string;
  /** Publishes `spec.ports` on the node; absent: `spec.ports` is reported unimplemented. */
  readonly ports?: PortService;
  /** Runs healthchecks (`spec.healthcheck` or the image's); absent: `spec.healthcheck` is reported unimplemented. */
  readonly health?: HealthProber;
}

/** Condition types this reconciler owns (`Scheduled` belongs to the scheduler). */
export const CONDITION_IMAGE_READY = 'ImageReady';
export const CONDITION_READY = 'Ready';
export const CONDITION_RECONCILING = 'Reconciling';
export const CONDITION_STALLED = 'Stalled';
/** Present while the spec uses fields that are accepted but not implemented yet. */
export const CONDITION_UNIMPLEMENTED = 'Unimplemented';

/** Status fields this reconciler writes; others (`ports`, `health`, …) are kept as they are. */
const OWNED_STATUS_FIELDS = [
  'phase', 'containerID', 'imageID', 'nodeName', 'startedAt', 'finishedAt', 'exitCode', 'reason', 'message', 'restartCount', 'observedGeneration',
] as const;

const DEFAULT_GRACE_SECONDS = 10;
const DEFAULT_RESYNC_MS = 60_000;
const MAX_STEPS = 4;

/** Why a Container cannot get its runtime container yet. */
interface Waiting {
  readonly reason: string;
  readonly message: string;
}

/** What one reconcile saw and did, from which status and Events are derived. */
interface Outcome {
  /** The runtime container as last seen; undefined when there is none. */
  current?: ContainerStatus;
  /** The image is not usable: no runtime container could be created. */
  image?: Waiting;
  /** A network in `spec.networks` is missing or not ready: no runtime container could be created. */
  network?: Waiting;
  /** A volume of `spec.volumeMounts` is not ready on this node: no runtime container could be created. */
  volumes?: Waiting;
  /** Publishing `spec.ports` (before a create: a conflict keeps the container from being created). */
  ports?: PortsOutcome;
  /** Waiting this long before restarting the exited container (back-off). */
  backoffMs?: number;
  /** The runtime container disappeared and restartPolicy Never keeps it gone. */
  vanished?: boolean;
  restartCount: number;
}

const PHASES: Record<string, ContainerPhase> = { created: 'Created', running: 'Running', paused: 'Paused', exited: 'Exited', unknown: 'Exited' };

/**
 * Drives the runtime container of each Container bound to this node to its spec.
 *
 * Level-triggered: each call reads the Container from the cache and the runtime
 * containers labelled with its namespace and name, and works from those alone
 * (restart counts and back-off steps travel as labels of the runtime container, so
 * they survive an agent restart). Runtime containers of an object that is gone, not
 * bound here, or of an older object with the same name (other uid) are removed.
 * Writes status only when it changed. Throws `TerminalError` (after recording
 * `Stalled=True`) for a spec that cannot run until edited; other failures throw and
 * are retried by the loop.
 */
export class ContainerReconciler implements Reconciler {
  private readonly clock: Clock;

  constructor(private readonly deps: ContainerReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { containers, client, runtime, nodeName } = this.deps;
    const call = { signal: ctx.signal };
    const want = containers.get(req.namespace, req.name);
    const have = await runtime.listContainers({ labels: ownerLabels(req.namespace, req.name) }, call);
    const isOurs = (c: RuntimeContainer) => !!want && want.spec.nodeName === nodeName && c.labels[LABEL_UID] === want.metadata.uid;

    // Not ours (object gone, bound elsewhere, or an older object of the same name): remove at once.
    for (const c of have.filter((c) => !isOurs(c))) {
      ctx.log.info({ containerID: c.id }, 'removing runtime container whose Container is gone');
      await runtime.removeContainer(c.id, call);
    }
    if (!want || want.spec.nodeName !== nodeName) {
      this.deps.health?.stop(`${req.namespace}/${req.name}`);
      if (this.deps.ports) await releaseContainerPorts(req.namespace, req.name, this.deps.ports, call);
      await this.deps.network?.tearDownContainerNetwork(containerNetworkKey(req.namespace, req.name), call);
      return {};
    }
    const mine = have.filter(isOurs).sort((a, b) => a.createdAtMs - b.createdAtMs);

    if (want.metadata.deletionTimestamp) {
      for (const c of mine) await this.stopAndRemove(ctx, want, c, 'the Container is being deleted');
      if (this.deps.ports) await releaseContainerPorts(req.namespace, req.name, this.deps.ports, call);
      await this.deps.network?.tearDownContainerNetwork(containerNetworkKey(req.namespace, req.name), call);
      await client.removeFinalizer(want, RUNTIME_FINALIZER, call);
      return {};
    }

    const obj = await client.ensureFinalizer(want, RUNTIME_FINALIZER, call);

    // One runtime container per Container: keep the newest live one (or the newest), remove the rest.
    const keep = [...mine].reverse().find((c) => c.state !== 'exited') ?? mine[mine.length - 1];
    for (const c of mine) if (c !== keep) await runtime.removeContainer(c.id, call);

    try {
      toContainerConfig(obj, { nodeName, restartCount: 0, backoffStep: 0 });
      if (this.deps.network) validateNetworks(obj.spec);
    } catch (err) {
      if (err instanceof InvalidSpecError) return this.stall(ctx, obj, keep, 'InvalidSpec', err.message);
      throw err;
    }

    let outcome: Outcome;
    try {
      outcome = await this.converge(ctx, obj, keep);
    } catch (err) {
      if (err instanceof InvalidSpecError) return this.stall(ctx, obj, keep, 'InvalidSpec', err.message);
      if (isRuntimeError(err, 'InvalidArgument')) return this.stall(ctx, obj, keep, 'InvalidSpec', `the runtime rejected the spec: ${err.message}`);
      throw err;
    }

    let status = this.deps.network
      ? withNetworkStatus(this.statusFrom(obj, outcome), await this.deps.network.containerNetwork(containerNetworkKey(req.namespace, req.name), call))
      : this.statusFrom(obj, outcome);
    const ports = await this.syncPorts(ctx, obj, outcome);
    if (ports?.invalid) return this.stall(ctx, obj, keep, 'InvalidSpec', ports.condition?.message ?? 'spec.ports cannot be published');
    if (ports) status = withPortsStatus(status, ports, obj.metadata.generation ?? 0, this.clock.nowMs());
    if (this.deps.health) status = withHealthStatus(status, await this.health(ctx, obj, outcome.current), obj.metadata.generation ?? 0, this.clock.nowMs());
    const written = await client.updateStatusIfChanged(obj, status, call);
    this.recordTransitions(written, obj.status, status, outcome);
    if (obj.spec.autoRemove && exitedForGood(obj.spec, status, outcome)) {
      // Docker's --rm: the final status is written (a watcher has the exit code); now the object goes.
      ctx.log.info({ exitCode: status.exitCode }, 'deleting the Container: it exited and autoRemove is set');
      try {
        await client.delete(ContainerKind, req.namespace, req.name, { preconditions: { uid: obj.metadata.uid! }, ...call });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return {};
    }

    if (outcome.backoffMs !== undefined) return { requeueAfterMs: outcome.backoffMs };
    if (outcome.image || outcome.network || outcome.volumes) return { requeueAfterMs: this.deps.imageRetryMs ?? 5_000 };
    if (ports && !ports.ready) return { requeueAfterMs: ports.requeueAfterMs ?? PORT_CONFLICT_RETRY_MS };
    // drift (a kill or removal behind our back whose event was missed) is caught by this cheap re-check
    if (status.phase === 'Running' || status.phase === 'Paused' || status.phase === 'Created') return { requeueAfterMs: jittered(this.deps.resyncMs ?? DEFAULT_RESYNC_MS) };
    return {};
  }

  /** Moves the runtime towards `spec.state`, as many steps as it takes within this call. */
  private async converge(ctx: ReconcileContext, obj: Container, keep: RuntimeContainer | undefined): Promise<Outcome> {
    const { runtime } = this.deps;
    const call = { signal: ctx.signal };
    const spec = obj.spec;
    const generation = obj.metadata.generation ?? 0;
    const desired = spec.state ?? 'Running';
    const backoff = this.deps.backoff ?? {};
    let current = keep ? await this.statusOf(keep.id, ctx) : undefined;
    const out: Outcome = { restartCount: current ? labelInt(current, LABEL_RESTART_COUNT) : (obj.status?.restartCount ?? 0) };
    let backoffStep = 0;

    // The spec changed in a way the runtime container cannot follow: replace it.
    if (current && current.labels[LABEL_SPEC_HASH] !== specHash(spec)) {
      await this.stopAndRemove(ctx, obj, current, `the spec changed (generation ${generation})`);
      current = undefined;
    }

    if (current?.state === 'exited' && desired === 'Running') {
      // The user asked for it again (a spec edit since it exited, e.g. Stopped → Running): start afresh, as `docker start`.
      const edited = current.labels[LABEL_GENERATION] !== String(generation) && obj.status?.observedGeneration !== generation;
      if (edited) {
        await runtime.removeContainer(current.id, call);
        current = undefined;
      } else if (shouldRestart(spec, current.exitCode, out.restartCount)) {
        const ranMs = current.startedAtMs !== undefined && current.finishedAtMs !== undefined ? current.finishedAtMs - current.startedAtMs : undefined;
        const step = effectiveBackoffStep(labelInt(current, LABEL_BACKOFF_STEP), ranMs, backoff);
        const delayMs = restartDelayMs(step, backoff);
        const dueMs = (current.finishedAtMs ?? this.clock.nowMs()) + delayMs;
        const waitMs = dueMs - this.clock.nowMs();
        if (waitMs > 0) {
          out.current = current;
          out.backoffMs = waitMs;
          return out;
        }
        await runtime.removeContainer(current.id, call);
        current = undefined;
        out.restartCount++;
        backoffStep = step + 1;
      }
    } else if (!current && !keep && obj.status?.containerID && obj.status.observedGeneration === generation && obj.status.phase !== 'Pending') {
      // It was there for this generation and is gone: removed behind our back. Unknown exit: a failure.
      if (desired === 'Running' && !shouldRestart(spec, undefined, out.restartCount)) {
        out.vanished = true;
        return out;
      }
      if (desired === 'Running') out.restartCount++;
    }

    if (!current) {
      const image = await this.checkImage(ctx, obj);
      if (image) {
        out.image = image;
        return out;
      }
      const volumes = await this.prepareVolumes(ctx, obj);
      if (!Array.isArray(volumes)) {
        out.volumes = volumes;
        return out;
      }
      const prepared = await this.prepareNetwork(ctx, obj);
      if ('reason' in prepared) {
        out.network = prepared;
        return out;
      }
      const { ip, ...network } = prepared;
      if (this.deps.ports) {
        // Host ports first: a port someone else holds keeps the container from starting at all.
        out.ports = await ensureContainerPorts(obj, ip, this.deps.ports, { signal: ctx.signal });
        if (!out.ports.ready) return out;
      }
      const config = { ...toContainerConfig(obj, { nodeName: this.deps.nodeName, restartCount: out.restartCount, backoffStep, volumeMounts: volumes }), ...network };
      current = await this.create(ctx, obj, config);
    }

    for (let i = 0; i < MAX_STEPS && current; i++) {
      const acted = await this.step(ctx, obj, current, desired);
      if (!acted) break;
      current = await this.statusOf(current.id, ctx);
    }
    out.current = current;
    return out;
  }

  /** One action towards `desired`; false when there is nothing to do from this state. */
  private async step(ctx: ReconcileContext, obj: Container, c: ContainerStatus, desired: string): Promise<boolean> {
    const { runtime, recorder } = this.deps;
    const call = { signal: ctx.signal };
    const id = c.id;
    if (c.state === 'created' && (desired === 'Running' || desired === 'Paused')) {
      await runtime.startContainer(id, call);
      void recorder?.normal(obj, 'Started', `started container ${short(id)}`);
      return true;
    }
    if (c.state === 'paused' && desired === 'Running') {
      await runtime.resumeContainer(id, call);
      void recorder?.normal(obj, 'Resumed', `resumed container ${short(id)}`);
      return true;
    }
    if (c.state === 'running' && desired === 'Paused') {
      await runtime.pauseContainer(id, call);
      void recorder?.normal(obj, 'Paused', `paused container ${short(id)}`);
      return true;
    }
    if ((c.state === 'running' || c.state === 'paused') && desired === 'Stopped') {
      const grace = obj.spec.stopGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
      void recorder?.normal(obj, 'Killing', `stopping container ${short(id)} (${obj.spec.stopSignal ?? 'SIGTERM'}, SIGKILL after ${grace} s): spec.state is Stopped`);
      await runtime.stopContainer(id, grace, call);
      return true;
    }
    return false;
  }

  private async create(ctx: ReconcileContext, obj: Container, config: ContainerConfig): Promise<ContainerStatus | undefined> {
    const id = await this.deps.runtime.createContainer(config, { signal: ctx.signal });
    void this.deps.recorder?.normal(obj, 'Created', `created container ${short(id)} from image ${config.image}`);
    return this.statusOf(id, ctx);
  }

  /**
   * The bind mounts of `spec.volumeMounts` on this node, or why the container must wait
   * (a Volume created on first use, not yet Available, on another node, being deleted).
   * Throws `InvalidSpecError` for a subPath that leaves its volume.
   */
  private async prepareVolumes(ctx: ReconcileContext, obj: Container): Promise<Waiting | Mount[]> {
    const { volumes, volumesRoot, client, nodeName } = this.deps;
    if (!obj.spec.volumeMounts?.length) return [];
    if (!volumes) return { reason: 'VolumesUnsupported', message: `the agent of node ${nodeName} runs no volume controller` };
    const r = await resolveVolumeMounts({ volumes, client, nodeName, ...(volumesRoot ? { volumesRoot } : {}) }, obj, ctx.signal);
    if (r.kind === 'invalid') throw new InvalidSpecError(r.field, r.message);
    return r.kind === 'waiting' ? { reason: r.reason, message: r.message } : r.mounts;
  }

  /**
   * Sets up the container's network before its runtime container is created (a CRI
   * sandbox): the namespace to join and its nameservers, or why it must wait.
   * Without a `NetworkService`, a loopback-only namespace (`spec.networks` ignored).
   */
  private async prepareNetwork(ctx: ReconcileContext, obj: Container): Promise<Waiting | (Pick<ContainerConfig, 'networkNamespace' | 'dnsServers'> & { ip?: string })> {
    const { network, networks, defaultNetwork } = this.deps;
    if (!network) return {};
    const plan = planContainerNetwork(obj, networks, defaultNetwork);
    if (plan.mode === 'waiting') return plan;
    if (plan.mode === 'host') return { networkNamespace: 'host' };
    if (plan.mode === 'none') return {};
    const setup = await network.setUpContainerNetwork(plan.request, { signal: ctx.signal });
    return { networkNamespace: setup.netnsPath, dnsServers: setup.dnsServers, ...(setup.addresses[0] ? { ip: setup.addresses[0].ip } : {}) };
  }

  /** The health to report: probed while the container runs and has a healthcheck (spec or image). */
  private async health(ctx: ReconcileContext, obj: Container, current: ContainerStatus | undefined): Promise<HealthStatus | undefined> {
    const prober = this.deps.health!;
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
    if (current?.state !== 'running') {
      prober.stop(key);
      return undefined;
    }
    const image = obj.spec.healthcheck ? undefined : (await this.deps.images.imageStatus(current.imageId, { signal: ctx.signal }))?.config;
    const spec = healthSpecOf(obj, image);
    if (!spec) {
      prober.stop(key);
      return undefined;
    }
    return prober.ensure(key, current.id, spec);
  }

  /**
   * Publishes `spec.ports` while the runtime container is there and not exited (again
   * after a server restart, or to a new address), and withdraws them when it stops.
   */
  private async syncPorts(ctx: ReconcileContext, obj: Container, outcome: Outcome): Promise<PortsOutcome | undefined> {
    const { ports, network } = this.deps;
    if (!ports) return undefined;
    if (outcome.ports) return outcome.ports;
    const key = containerNetworkKey(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    const state = outcome.current?.state;
    if (state !== 'running' && state !== 'paused' && state !== 'created') {
      await releaseContainerPorts(obj.metadata.namespace ?? '', obj.metadata.name ?? '', ports, { signal: ctx.signal });
      return { ready: true };
    }
    const ip = (await network?.containerNetwork(key, { signal: ctx.signal }))?.addresses[0]?.ip;
    return ensureContainerPorts(obj, ip, ports, { signal: ctx.signal });
  }

  /**
   * Makes the image usable as `imagePullPolicy` says — `Always`: pull before each
   * create; `IfNotPresent` (default): pull only when no local image has the reference;
   * `Never`: never pull — with the credentials of `imagePullSecrets`. Resolves with the
   * problem that prevents a create, or undefined when the image is there.
   */
  private async checkImage(ctx: ReconcileContext, obj: Container): Promise<Waiting | undefined> {
    const { images, nodeName, recorder } = this.deps;
    const ref = obj.spec.image;
    const policy = obj.spec.imagePullPolicy ?? 'IfNotPresent';
    if (policy !== 'Always' && (await images.imageStatus(ref, { signal: ctx.signal }))) return undefined;
    if (policy === 'Never') {
      return { reason: 'ErrImageNeverPull', message: `image ${JSON.stringify(ref)} is not present on node ${nodeName} and imagePullPolicy is Never; create an Image for it` };
    }
    try {
      const auth = await this.pullCredentials(ctx, obj);
      void recorder?.normal(obj, 'Pulling', `pulling image ${JSON.stringify(ref)}`);
      const started = Date.now();
      await images.pullImage(ref, auth, { signal: ctx.signal });
      void recorder?.normal(obj, 'Pulled', `pulled image ${JSON.stringify(ref)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return undefined;
    } catch (err) {
      const why = err instanceof CredentialsError || isRuntimeError(err) ? err.message : (err as Error).message;
      const present = policy === 'IfNotPresent' ? '' : ' (imagePullPolicy Always)';
      return { reason: 'ErrImagePull', message: `image ${JSON.stringify(ref)} is not present on node ${nodeName} and cannot be pulled${present}: ${why}; create an Image for it or make it pullable` };
    }
  }

  /** The registry credentials of the first `imagePullSecrets` entry that has some for the image's registry. */
  private async pullCredentials(ctx: ReconcileContext, obj: Container): Promise<AuthConfig | undefined> {
    const ns = obj.metadata.namespace ?? '';
    for (const { name } of obj.spec.imagePullSecrets ?? []) {
      let secret: Secret;
      try {
        secret = await this.deps.client.get(Secret, ns, name, { signal: ctx.signal });
      } catch (err) {
        if (isNotFound(err)) throw new CredentialsError(`imagePullSecrets: secret ${ns}/${name} not found`);
        throw err;
      }
      const auth = credentialsFor(secret, obj.spec.image);
      if (auth) return auth;
    }
    return undefined;
  }

  /**
   * Stops (stopSignal, then SIGKILL after the grace period) and removes a runtime container.
   * The grace period is the deletion's (`metadata.deletionGracePeriodSeconds`, 0 for
   * `berth rm -f` as `docker rm -f` kills at once) when the object is being deleted, else the spec's.
   */
  private async stopAndRemove(ctx: ReconcileContext, obj: Container, c: RuntimeContainer, why: string): Promise<void> {
    const { runtime, recorder } = this.deps;
    const call = { signal: ctx.signal };
    if (c.state === 'running' || c.state === 'paused' || c.state === 'created') {
      const deleting = obj.metadata.deletionTimestamp ? obj.metadata.deletionGracePeriodSeconds : undefined;
      const grace = deleting ?? obj.spec.stopGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
      void recorder?.normal(obj, 'Killing', `stopping container ${short(c.id)} (${obj.spec.stopSignal ?? 'SIGTERM'}, SIGKILL after ${grace} s): ${why}`);
      await runtime.stopContainer(c.id, grace, call);
    }
    await runtime.removeContainer(c.id, call);
  }

  private async statusOf(id: ContainerId, ctx: ReconcileContext): Promise<ContainerStatus | undefined> {
    try {
      return await this.deps.runtime.containerStatus(id, { signal: ctx.signal });
    } catch (err) {
      if (isRuntimeError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** Records a spec that cannot run until edited, then throws `TerminalError`. */
  private async stall(ctx: ReconcileContext, obj: Container, keep: RuntimeContainer | undefined, reason: string, message: string): Promise<never> {
    const generation = obj.metadata.generation ?? 0;
    const current = keep ? await this.statusOf(keep.id, ctx) : undefined;
    const base = this.statusFrom(obj, { current, restartCount: obj.status?.restartCount ?? 0 });
    const now = this.clock.nowMs();
    let conditions = base.conditions;
    conditions = setCondition(conditions, { type: CONDITION_STALLED, status: 'True', reason, message, observedGeneration: generation }, now);
    conditions = setCondition(conditions, { type: CONDITION_RECONCILING, status: 'False', reason, message: 'waiting for the spec to be fixed', observedGeneration: generation }, now);
    if (!current || current.state !== 'running') {
      conditions = setCondition(conditions, { type: CONDITION_READY, status: 'False', reason, message, observedGeneration: generation }, now);
    }
    const status: ApiContainerStatus = { ...base, reason, message, conditions };
    const written = await this.deps.client.updateStatusIfChanged(obj, status, { signal: ctx.signal });
    if (findCondition(obj.status?.conditions, CONDITION_STALLED)?.status !== 'True' || obj.status?.message !== message) {
      void this.deps.recorder?.warning(written, reason, message);
    }
    throw new TerminalError(`container ${obj.metadata.namespace}/${obj.metadata.name}: ${message}`);
  }

  /** The whole status from what this reconcile saw; conditions keep their transition times. */
  private statusFrom(obj: Container, o: Outcome): ApiContainerStatus {
    const spec = obj.spec;
    const generation = obj.metadata.generation ?? 0;
    const desired = spec.state ?? 'Running';
    const now = this.clock.nowMs();
    const old = obj.status ?? {};
    const c = o.current;
    const kept = Object.fromEntries(Object.entries(old).filter(([k]) => !(OWNED_STATUS_FIELDS as readonly string[]).includes(k) && k !== 'conditions'));

    let phase: ContainerPhase;
    let reason: string | undefined;
    let message: string | undefined;
    const fields: Partial<ApiContainerStatus> = {};
    if (o.vanished) {
      phase = 'Exited';
      reason = 'Error';
      message = `runtime container ${short(old.containerID ?? '')} disappeared (removed behind berth's back); restartPolicy is Never`;
      for (const k of ['containerID', 'imageID', 'startedAt', 'finishedAt', 'exitCode'] as const) if (old[k] !== undefined) Object.assign(fields, { [k]: old[k] });
    } else if (!c) {
      phase = 'Pending';
      reason = o.image?.reason ?? o.volumes?.reason ?? o.network?.reason;
      message = o.image?.message ?? o.volumes?.message ?? o.network?.message;
    } else {
      phase = PHASES[c.state] ?? 'Exited';
      fields.containerID = c.id;
      fields.imageID = c.imageId;
      if (c.startedAtMs !== undefined) fields.startedAt = toConditionTime(c.startedAtMs);
      if (phase === 'Exited') {
        if (c.finishedAtMs !== undefined) fields.finishedAt = toConditionTime(c.finishedAtMs);
        if (c.exitCode !== undefined) fields.exitCode = c.exitCode;
        if (o.backoffMs !== undefined) {
          reason = 'BackOff';
          const delay = restartDelayMs(effectiveBackoffStep(labelInt(c, LABEL_BACKOFF_STEP), ranMsOf(c), this.deps.backoff), this.deps.backoff);
          message = `back-off ${delay} ms restarting failed container (exit code ${c.exitCode ?? 'unknown'}, restartPolicy ${spec.restartPolicy ?? 'Always'})`;
        } else {
          reason = c.reason ?? (c.exitCode === 0 ? 'Completed' : 'Error');
          message = desired === 'Stopped' ? `stopped: spec.state is Stopped (exit code ${c.exitCode ?? 'unknown'})` : `exited with code ${c.exitCode ?? 'unknown'}`;
        }
      }
    }

    const converged =
      (phase === 'Running' && desired === 'Running') ||
      (phase === 'Paused' && desired === 'Paused') ||
      ((phase === 'Exited' || phase === 'Created') && desired === 'Stopped') ||
      (phase === 'Exited' && desired !== 'Stopped' && o.backoffMs === undefined);
    const readyReason = phase === 'Exited' && desired === 'Stopped' ? 'Stopped' : (reason ?? phase);
    const cond = (type: string, status: Condition['status'], r: string, m: string): Omit<Condition, 'lastTransitionTime'> => ({
      type, status, reason: r, message: m, observedGeneration: generation,
    });
    let conditions = old.conditions;
    if (o.image) conditions = setCondition(conditions, cond(CONDITION_IMAGE_READY, 'False', o.image.reason, o.image.message), now);
    else if (c) conditions = setCondition(conditions, cond(CONDITION_IMAGE_READY, 'True', 'Present', `image ${JSON.stringify(spec.image)} is present on node ${this.deps.nodeName}`), now);
    if (o.volumes) conditions = setCondition(conditions, cond(CONDITION_VOLUMES_READY, 'False', o.volumes.reason, o.volumes.message), now);
    else if (c && spec.volumeMounts?.length) conditions = setCondition(conditions, cond(CONDITION_VOLUMES_READY, 'True', 'Mounted', `volumes ${[...new Set(spec.volumeMounts.map((m) => m.name))].join(', ')} are mounted from node ${this.deps.nodeName}`), now);
    conditions = setCondition(
      conditions,
      phase === 'Running'
        ? cond(CONDITION_READY, 'True', 'Running', 'the container is running')
        : cond(CONDITION_READY, 'False', readyReason, message ?? `the container is ${phase.toLowerCase()}`),
      now,
    );
    conditions = setCondition(
      conditions,
      converged
        ? cond(CONDITION_RECONCILING, 'False', 'Converged', `spec.state ${desired} reached`)
        : cond(CONDITION_RECONCILING, 'True', reason ?? 'Progressing', message ?? `moving from ${phase} towards ${desired}`),
      now,
    );
    conditions = setCondition(conditions, cond(CONDITION_STALLED, 'False', 'NotStalled', ''), now);
    const ignored = unimplementedFields(spec).filter((f) => !(this.deps.network && f === 'spec.networks') && !(this.deps.ports && f === 'spec.ports') && !(this.deps.health && f === 'spec.healthcheck'));
    if (ignored.length) {
      conditions = setCondition(conditions, cond(CONDITION_UNIMPLEMENTED, 'True', 'NotImplemented', `${ignored.join(', ')} ${ignored.length > 1 ? 'are' : 'is'} ignored: not implemented yet (issue 5)`), now);
    } else conditions = conditions?.filter((x) => x.type !== CONDITION_UNIMPLEMENTED);

    return dropUndefined({
      ...kept,
      phase,
      ...fields,
      nodeName: this.deps.nodeName,
      reason,
      message,
      restartCount: o.restartCount,
      observedGeneration: generation,
      conditions,
    });
  }

  /** Events for what changed between the old and the new status (actions record their own Events). */
  private recordTransitions(obj: Container, old: ApiContainerStatus | undefined, now: ApiContainerStatus, o: Outcome): void {
    const recorder = this.deps.recorder;
    if (!recorder) return;
    const c = o.current;
    const wasImage = findCondition(old?.conditions, CONDITION_IMAGE_READY);
    const isImage = findCondition(now.conditions, CONDITION_IMAGE_READY);
    if (isImage && (wasImage?.status !== isImage.status || wasImage.reason !== isImage.reason)) {
      if (isImage.status === 'True') void recorder.normal(obj, 'Pulled', `${isImage.message ?? ''}`);
      else void recorder.warning(obj, isImage.reason ?? 'ImageNotPresent', isImage.message ?? '');
    }
    const wasVolumes = findCondition(old?.conditions, CONDITION_VOLUMES_READY);
    const isVolumes = findCondition(now.conditions, CONDITION_VOLUMES_READY);
    if (isVolumes?.status === 'False' && (wasVolumes?.status !== 'False' || wasVolumes.reason !== isVolumes.reason)) void recorder.warning(obj, isVolumes.reason ?? 'VolumesNotReady', isVolumes.message ?? '');
    const newExit = c?.state === 'exited' && !(old?.containerID === c.id && old.phase === 'Exited');
    if (newExit) {
      if ((obj.spec.state ?? 'Running') === 'Stopped') void recorder.normal(obj, 'Stopped', `container ${short(c.id)} stopped with exit code ${c.exitCode ?? 'unknown'}`);
      else if (c.reason === 'OOMKilled') void recorder.warning(obj, 'OOMKilled', `container ${short(c.id)} was killed by the OOM killer (exit code ${c.exitCode ?? 'unknown'})`);
      else if (c.exitCode === 0) void recorder.normal(obj, 'Completed', `container ${short(c.id)} exited with code 0`);
      else void recorder.warning(obj, 'Failed', `container ${short(c.id)} exited with code ${c.exitCode ?? 'unknown'}`);
    }
    if (now.reason === 'BackOff' && !(old?.reason === 'BackOff' && old.containerID === now.containerID)) {
      void recorder.warning(obj, 'BackOff', now.message ?? 'back-off restarting failed container');
    }
    if (o.vanished && old?.reason !== 'Error') void recorder.warning(obj, 'Failed', now.message ?? 'runtime container disappeared');
    const wasIgnored = findCondition(old?.conditions, CONDITION_UNIMPLEMENTED);
    const isIgnored = findCondition(now.conditions, CONDITION_UNIMPLEMENTED);
    if (isIgnored && wasIgnored?.message !== isIgnored.message) void recorder.warning(obj, 'NotImplemented', isIgnored.message ?? '');
  }
}

/**
 * The process has ended and nothing will start it again: it exited and the restart
 * policy leaves it so, or it was stopped after it ran. What `autoRemove` waits for.
 */
function exitedForGood(spec: Container['spec'], status: ApiContainerStatus, outcome: Outcome): boolean {
  if (status.phase !== 'Exited' || outcome.backoffMs !== undefined) return false;
  if ((spec.state ?? 'Running') !== 'Running') return true;
  return status.reason !== 'BackOff' && !shouldRestart(spec, status.exitCode ?? undefined, status.restartCount ?? 0);
}

function labelInt(c: RuntimeContainer, key: string): number {
  const n = Number.parseInt(c.labels[key] ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

function ranMsOf(c: ContainerStatus): number | undefined {
  return c.startedAtMs !== undefined && c.finishedAtMs !== undefined ? c.finishedAtMs - c.startedAtMs : undefined;
}

const short = (id: string): string => id.slice(0, 12);

/** `ms` ± 10 %. */
const jittered = (ms: number): number => Math.round(ms * (0.9 + 0.2 * Math.random()));

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

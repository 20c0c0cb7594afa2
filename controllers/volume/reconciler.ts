/**
 * `VolumeReconciler`: the node agent's Volume reconciler. It places each unplaced
 * Volume on a node (its pinned node, the node of its first user, or the only node),
 * makes the data directory of the Volumes on this node, reports phase, mount point
 * and users, and removes the data when the Volume is deleted and no Container uses it.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import type { Condition, VolumeStatus } from '../../api/types/index.ts';
import {
  findCondition,
  realClock,
  setCondition,
  TerminalError,
  type ApiClient,
  type Clock,
  type Container,
  type EventRecorder,
  type Lister,
  type Node,
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
  type Volume,
} from '../framework/index.ts';
import { SUPPORTED_VOLUME_DRIVERS, VOLUME_FINALIZER, volumeDataDir, volumeDir, volumeNodeOf } from './paths.ts';

/** Index of the agent's Container informer: `<namespace>/<volume name>` → Containers mounting it. */
export const VOLUME_USERS_INDEX = 'volume:users';

/** The `VOLUME_USERS_INDEX` function. */
export const volumeUsersIndex = (c: Container): string[] => [...new Set((c.spec?.volumeMounts ?? []).map((m) => `${c.metadata.namespace ?? ''}/${m.name}`))];

export interface VolumeReconcilerDeps {
  /** Volumes of all namespaces. */
  readonly volumes: Lister<Volume>;
  /** Containers bound to this node, indexed by `VOLUME_USERS_INDEX`. */
  readonly containers: Lister<Container> & { byIndex(index: string, value: string): Container[] };
  /** Registered Nodes: an unused, unpinned Volume is placed at once when this node is the only one. */
  readonly nodes: Lister<Node>;
  readonly client: ApiClient;
  readonly nodeName: string;
  /** `<dataDir>/volumes`: each Volume's data is `<volumesRoot>/<namespace>/<name>/_data`. */
  readonly volumesRoot: string;
  readonly recorder?: EventRecorder;
  readonly clock?: Clock;
}

type Cond = readonly [type: string, status: Condition['status'], reason: string, message: string];

/**
 * Reconciles each Volume with respect to this node.
 *
 * - Placed elsewhere (`status.nodeName` or `spec.nodeName` names another node): nothing to do.
 * - Unplaced: claimed (a `status.nodeName` write, conditional on the resourceVersion, so of
 *   agents racing only one wins) when a Container bound here mounts it, or this is the only
 *   node; otherwise `Pending`, waiting for its first user to be scheduled.
 * - Placed here: finalizer, then `<volumesRoot>/<ns>/<name>/_data` (0755, created once,
 *   never re-moded), then `Available`, or `InUse` with `usedBy` while Containers bound
 *   here mount it (whatever their state, as `docker volume rm` refuses a volume a stopped
 *   container references).
 * - Deleted: waits (`Ready=False`, reason `InUse`) until no Container bound here mounts
 *   it, then removes `<volumesRoot>/<ns>/<name>` and the finalizer.
 *
 * Idempotent; writes status only when it changed. An unsupported driver is `Stalled`
 * (`TerminalError`).
 */
export class VolumeReconciler implements Reconciler {
  private readonly clock: Clock;

  constructor(private readonly deps: VolumeReconcilerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async reconcile(ctx: ReconcileContext, req: Request): Promise<Result> {
    const { volumes, client, nodeName } = this.deps;
    const call = { signal: ctx.signal };
    const want = volumes.get(req.namespace, req.name);
    if (!want) return {};
    const owner = volumeNodeOf(want);
    if (owner && owner !== nodeName) return {};
    const users = this.usersOf(req.namespace, req.name);

    if (want.metadata.deletionTimestamp) return this.finalize(ctx, want, users);

    const driver = want.spec?.driver ?? 'local';
    if (!owner) {
      if (users.length === 0 && !this.isOnlyNode()) {
        const message = 'waiting for the first container that mounts it to be scheduled: the volume is created on that node';
        await this.write(ctx, want, { phase: 'Pending' }, [
          ['Ready', 'False', 'WaitingForFirstConsumer', message],
          ['Reconciling', 'True', 'WaitingForFirstConsumer', message],
          ['Stalled', 'False', 'WaitingForFirstConsumer', ''],
        ]);
        return {};
      }
      // Claim first, so that of agents racing only one makes a directory.
      ctx.log.info({ users }, 'placing volume on this node');
      const claimed = await client.updateStatus<Volume>({ ...want, status: { ...want.status, phase: 'Pending', nodeName } }, call);
      return this.ensure(ctx, claimed, users, driver);
    }
    return this.ensure(ctx, want, users, driver);
  }

  /** Makes the data directory of a Volume placed here and reports it. */
  private async ensure(ctx: ReconcileContext, v: Volume, users: string[], driver: string): Promise<Result> {
    const { client, nodeName, volumesRoot } = this.deps;
    const ns = v.metadata.namespace ?? '';
    const name = v.metadata.name ?? '';
    if (!SUPPORTED_VOLUME_DRIVERS.includes(driver)) {
      const message = `driver ${JSON.stringify(driver)} is not supported; use one of: ${SUPPORTED_VOLUME_DRIVERS.join(', ')}`;
      await this.write(ctx, v, { phase: 'Pending', nodeName }, [
        ['Ready', 'False', 'UnsupportedDriver', message],
        ['Reconciling', 'False', 'UnsupportedDriver', ''],
        ['Stalled', 'True', 'UnsupportedDriver', message],
      ]);
      throw new TerminalError(`volume ${ns}/${name}: ${message}`);
    }
    const obj = await client.ensureFinalizer(v, VOLUME_FINALIZER, { signal: ctx.signal });
    const data = volumeDataDir(volumesRoot, ns, name);
    await mkdir(volumeDir(volumesRoot, ns, name), { recursive: true, mode: 0o700 });
    try {
      await mkdir(data, { mode: 0o755 });
      // once, at creation: afterwards the mode is the containers' to change (e.g. a database chmods its data)
      await chmod(data, 0o755);
      void this.deps.recorder?.normal(obj, 'Created', `created the data directory ${data} on node ${nodeName}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const inUse = users.length > 0;
    const message = inUse ? `mounted by ${users.join(', ')} on node ${nodeName}` : `available at ${data} on node ${nodeName}`;
    await this.write(ctx, obj, { phase: inUse ? 'InUse' : 'Available', nodeName, mountpoint: data, ...(inUse ? { usedBy: users } : {}) }, [
      ['Ready', 'True', inUse ? 'InUse' : 'Available', message],
      ['Reconciling', 'False', 'Converged', ''],
      ['Stalled', 'False', 'Converged', ''],
    ]);
    return {};
  }

  private async finalize(ctx: ReconcileContext, v: Volume, users: string[]): Promise<Result> {
    const { client, nodeName, volumesRoot } = this.deps;
    if (!(v.metadata.finalizers ?? []).includes(VOLUME_FINALIZER)) return {};
    const ns = v.metadata.namespace ?? '';
    const name = v.metadata.name ?? '';
    if (users.length > 0) {
      const message = `the volume is being deleted but is still used by ${users.join(', ')}; its data is removed when the last of them is deleted`;
      const was = findCondition(v.status?.conditions, 'Ready');
      await this.write(ctx, v, { ...v.status, phase: 'InUse', usedBy: users }, [
        ['Ready', 'False', 'InUse', message],
        ['Reconciling', 'True', 'InUse', message],
        ['Stalled', 'False', 'InUse', ''],
      ]);
      if (was?.reason !== 'InUse' || was.message !== message) void this.deps.recorder?.warning(v, 'InUse', message);
      return {};
    }
    const dir = volumeDir(volumesRoot, ns, name);
    await rm(dir, { recursive: true, force: true });
    void this.deps.recorder?.normal(v, 'Removed', `removed the data of volume ${ns}/${name} (${dir}) from node ${nodeName}`);
    await client.removeFinalizer(v, VOLUME_FINALIZER, { signal: ctx.signal });
    return {};
  }

  /** `namespace/name`… of the Containers bound here that mount the volume, sorted. */
  private usersOf(namespace: string, name: string): string[] {
    return this.deps.containers
      .byIndex(VOLUME_USERS_INDEX, `${namespace}/${name}`)
      .map((c) => c.metadata.name ?? '')
      .sort();
  }

  private isOnlyNode(): boolean {
    const nodes = this.deps.nodes.list().filter((n) => !n.metadata.deletionTimestamp);
    return nodes.length === 1 && nodes[0]!.metadata.name === this.deps.nodeName;
  }

  private async write(ctx: ReconcileContext, v: Volume, fields: VolumeStatus, conds: readonly Cond[]): Promise<Volume> {
    const generation = v.metadata.generation ?? 0;
    const now = this.clock.nowMs();
    let conditions = v.status?.conditions;
    for (const [type, status, reason, message] of conds) conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: generation }, now);
    const status: VolumeStatus = { ...fields, observedGeneration: generation, conditions };
    return this.deps.client.updateStatusIfChanged(v, status, { signal: ctx.signal });
  }
}

/**
 * Applying a Compose plan to berth, declaratively: every object by server-side apply
 * with field manager `berth-compose` (so running `up` again writes only what changed,
 * and a no-op leaves the object and its container alone), the project's objects that
 * the file no longer describes pruned by the `berth.dev/compose-project` label, and
 * services brought up in dependency order: a service's Containers are applied only
 * once every dependency reached its `depends_on` condition (watched, not polled).
 * `down` deletes the project's objects and waits until they are gone.
 */
import type { Container, Image, KubeObject } from '../../api/types/index.ts';
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import { Container as ContainerKind, Image as ImageKind, Network as NetworkKind, Volume as VolumeKind, type ResourceKind } from '../../controllers/framework/resource-kind.ts';
import { normalizeReference } from '../../runtime/images/reference.ts';
import type { Connection } from '../client/connection.ts';
import { readBody } from '../client/connection.ts';
import { startFailure, VerbError } from '../client/containers.ts';
import { ProgressPrinter, rmi, uploadContext } from '../client/images.ts';
import { waitForObject } from '../client/wait.ts';
import { PROJECT_LABEL, type ComposePlan } from './convert.ts';
import type { DependsCondition } from './model.ts';

/** The field manager of `berth compose up`. */
export const FIELD_MANAGER = 'berth-compose';

export interface UpOptions {
  /** Progress lines (Compose prints them to stderr). */
  readonly progress: (line: string) => void;
  /** Services whose dependencies must reach their condition within this long; default 300 s. */
  readonly timeoutMs?: number;
}

/** What `up` did to each object: `Created`, `Recreated` (spec changed), `Running`/`Unchanged`, `Removed`. */
export type UpResult = Record<string, string>;

const selector = (project: string) => `${PROJECT_LABEL}=${project}`;

async function listProject<T extends KubeObject>(conn: Connection, kind: ResourceKind<T>, project: string): Promise<Map<string, T>> {
  const list = await conn.client.list(kind, { namespace: conn.namespace, labelSelector: selector(project) });
  return new Map(list.items.map((o) => [o.metadata.name!, o]));
}

async function deleteAndWait(conn: Connection, kind: ResourceKind, name: string, timeoutMs = 120_000): Promise<void> {
  try {
    await conn.client.delete(kind, conn.namespace, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitForObject(conn, kind, name, (o) => o === undefined, { timeoutMs });
}

/** Applies `obj` as `berth-compose`; the word for what happened. */
async function applyOne<T extends KubeObject>(conn: Connection, obj: T, before: T | undefined): Promise<{ obj: T; what: 'Created' | 'Updated' | 'Unchanged' }> {
  const out = await conn.client.apply(obj, { fieldManager: FIELD_MANAGER, force: true });
  if (!before) return { obj: out, what: 'Created' };
  return { obj: out, what: out.metadata.resourceVersion === before.metadata.resourceVersion ? 'Unchanged' : 'Updated' };
}

/** Waits for an Image's current generation to be Ready; Failed rejects with its message and build log. */
async function imageReady(conn: Connection, img: Image, timeoutMs: number): Promise<void> {
  const name = img.metadata.name!;
  const printer = new ProgressPrinter();
  try {
    await waitForObject(conn, ImageKind, name, (i) => {
      if (!i) throw new VerbError(`image ${name} was deleted`);
      if ((i.status?.observedGeneration ?? 0) < (i.metadata.generation ?? 0)) return false;
      return i.status?.phase === 'Ready' || i.status?.phase === 'Failed';
    }, { timeoutMs, onUpdate: (i) => printer.update(i) });
  } finally {
    printer.done();
  }
  const cur = await conn.client.get(ImageKind, conn.namespace, name);
  if (cur.status?.phase === 'Failed') {
    const log = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${conn.namespace}/images/${name}/log`).then(readBody, () => '');
    throw new VerbError(`image ${name}: ${cur.status.message ?? 'build failed'}${log ? `\n${log.trimEnd()}` : ''}`);
  }
}

/**
 * Whether a Container reached a `depends_on` condition for its current generation.
 * Throws `VerbError` when it cannot any more (start failure, unhealthy, exited badly).
 */
export function reachedCondition(c: Container, condition: DependsCondition): boolean {
  const failed = startFailure(c);
  if (failed) throw new VerbError(`dependency failed to start: ${failed.message}`);
  const st = c.status;
  if (!st || (st.observedGeneration ?? 0) < (c.metadata.generation ?? 0) || !st.containerID) return false;
  const name = c.metadata.name!;
  switch (condition) {
    case 'service_started':
      return st.phase === 'Running' || st.phase === 'Paused' || st.phase === 'Exited';
    case 'service_healthy':
      if (!c.spec.healthcheck) throw new VerbError(`dependency failed to start: container ${name} has no healthcheck`);
      if (st.health?.status === 'Unhealthy') throw new VerbError(`dependency failed to start: container ${name} is unhealthy`);
      if (st.phase === 'Exited' && c.spec.restartPolicy === 'Never') throw new VerbError(`dependency failed to start: container ${name} exited (${st.exitCode ?? '?'})`);
      return st.phase === 'Running' && st.health?.status === 'Healthy';
    case 'service_completed_successfully':
      if (st.phase !== 'Exited' || st.reason === 'BackOff') return false;
      if (st.exitCode !== 0) throw new VerbError(`service ${name} didn't complete successfully: exit ${st.exitCode ?? '?'}`);
      return true;
  }
}

/** Whether a Container's current generation has started (or already ended); throws on start failures. */
function started(c: Container): boolean {
  const failed = startFailure(c);
  if (failed) throw new VerbError(failed.message, failed.code);
  const st = c.status;
  return (st?.observedGeneration ?? 0) >= (c.metadata.generation ?? 0) && !!st?.containerID && (st.phase === 'Running' || st.phase === 'Paused' || st.phase === 'Exited');
}

/**
 * `up`: uploads build contexts and applies Images (waiting until they are Ready),
 * Networks and Volumes; deletes the project's Containers that the plan no longer has;
 * applies each service's Containers in dependency order once its dependencies reached
 * their conditions; waits until every Container started; then prunes the project's
 * Networks and Images that the plan no longer has. Volumes are never pruned (their
 * data goes only with `down -v`). Idempotent.
 */
export async function up(conn: Connection, plan: ComposePlan, dependsOn: Readonly<Record<string, Readonly<Record<string, { readonly condition: DependsCondition }>>>>, opts: UpOptions): Promise<UpResult> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const result: UpResult = {};
  const say = (kind: string, name: string, what: string) => {
    result[`${kind}/${name}`] = what;
    opts.progress(` ${kind} ${name}  ${what}`);
  };
  const [haveCtrs, haveNets, haveVols, haveImgs] = await Promise.all([
    listProject(conn, ContainerKind, plan.project), listProject(conn, NetworkKind, plan.project),
    listProject(conn, VolumeKind, plan.project), listProject(conn, ImageKind, plan.project),
  ]);

  for (const img of plan.images) {
    const digest = img.spec.source.build?.context.archive?.digest;
    const packed = digest ? plan.contexts.get(digest) : undefined;
    if (packed) await uploadContext(conn, packed.archive, packed.digest);
    const { what } = await applyOne(conn, img, haveImgs.get(img.metadata.name!));
    say('Image', img.metadata.name!, what === 'Updated' ? 'Rebuilding' : what === 'Created' ? 'Building' : 'Unchanged');
    await imageReady(conn, img, timeoutMs);
    if (what !== 'Unchanged') say('Image', img.metadata.name!, 'Built');
  }
  for (const n of plan.networks) say('Network', n.metadata.name!, (await applyOne(conn, n, haveNets.get(n.metadata.name!))).what);
  for (const v of plan.volumes) say('Volume', v.metadata.name!, (await applyOne(conn, v, haveVols.get(v.metadata.name!))).what);

  const wanted = new Set(Object.values(plan.containers).flatMap((cs) => cs.map((c) => c.metadata.name!)));
  for (const name of haveCtrs.keys()) {
    if (wanted.has(name)) continue;
    await deleteAndWait(conn, ContainerKind, name);
    say('Container', name, 'Removed');
  }

  const applied: Container[] = [];
  for (const service of plan.order) {
    for (const [dep, { condition }] of Object.entries(dependsOn[service] ?? {})) {
      for (const c of plan.containers[dep] ?? []) {
        const name = c.metadata.name!;
        if (condition !== 'service_started') opts.progress(` Container ${name}  Waiting (${condition.replace('service_', '').replace(/_/g, ' ')})`);
        await waitForObject(conn, ContainerKind, name, (x) => {
          if (!x) throw new VerbError(`dependency failed to start: container ${name} was removed`);
          return reachedCondition(x, condition);
        }, { timeoutMs }).catch((err: unknown) => {
          throw err instanceof Error && err.name === 'WaitTimeoutError' ? new VerbError(`dependency ${dep} of ${service} did not reach ${condition} within ${timeoutMs / 1000}s`) : err;
        });
        if (condition !== 'service_started') opts.progress(` Container ${name}  ${condition === 'service_healthy' ? 'Healthy' : 'Exited'}`);
      }
    }
    for (const c of plan.containers[service] ?? []) {
      const before = haveCtrs.get(c.metadata.name!);
      const { obj, what } = await applyOne(conn, c, before);
      applied.push(obj);
      const replaced = what === 'Updated' && obj.metadata.generation !== before?.metadata.generation;
      say('Container', c.metadata.name!, what === 'Created' ? 'Created' : replaced ? 'Recreated' : 'Running');
    }
  }
  for (const c of applied) {
    await waitForObject(conn, ContainerKind, c.metadata.name!, (x) => {
      if (!x) throw new VerbError(`container ${c.metadata.name!} was removed`);
      return started(x);
    }, { timeoutMs });
  }

  const wantedNets = new Set(plan.networks.map((n) => n.metadata.name!));
  for (const name of haveNets.keys()) {
    if (wantedNets.has(name)) continue;
    await deleteAndWait(conn, NetworkKind, name);
    say('Network', name, 'Removed');
  }
  const wantedImgs = new Set(plan.images.map((i) => i.metadata.name!));
  for (const name of haveImgs.keys()) {
    if (wantedImgs.has(name)) continue;
    await deleteAndWait(conn, ImageKind, name);
    say('Image', name, 'Removed');
  }
  for (const name of haveVols.keys()) {
    if (!plan.volumes.some((v) => v.metadata.name === name)) opts.progress(` Volume ${name}  no longer used by the file (kept; \`berth compose down -v\` removes it)`);
  }
  return result;
}

export interface DownOptions {
  /** `-v`: also the project's Volumes. */
  readonly volumes?: boolean;
  /**
   * `--rmi local`: also the Images the project built; `--rmi all`: besides, the
   * images its Containers ran, untagged as `berth rmi` does (the Image goes with its
   * last tag) unless a Container outside the project still uses them.
   */
  readonly images?: 'local' | 'all';
  readonly progress: (line: string) => void;
  readonly timeoutMs?: number;
}

const sameImage = (a: string, b: string): boolean => {
  try {
    return normalizeReference(a) === normalizeReference(b);
  } catch {
    return a === b;
  }
};

/**
 * `down`: deletes the project's Containers, then its Networks (then Volumes with
 * `volumes`, built Images with `images`, and with `images: 'all'` the images the
 * Containers ran), each waited for until gone. External networks and volumes carry
 * no project label and are left alone. Idempotent.
 */
export async function down(conn: Connection, project: string, opts: DownOptions): Promise<void> {
  const used = opts.images === 'all' ? [...new Set([...(await listProject(conn, ContainerKind, project)).values()].map((c) => c.spec.image))].sort() : [];
  const kinds: ResourceKind[] = [ContainerKind, NetworkKind, ...(opts.volumes ? [VolumeKind] : []), ...(opts.images ? [ImageKind] : [])];
  for (const kind of kinds) {
    const have = await listProject(conn, kind, project);
    await Promise.all([...have.keys()].map(async (name) => {
      opts.progress(` ${kind.kind} ${name}  Removing`);
      await deleteAndWait(conn, kind, name, opts.timeoutMs);
      opts.progress(` ${kind.kind} ${name}  Removed`);
    }));
  }
  if (used.length === 0) return;
  const others = (await conn.client.list(ContainerKind, { namespace: conn.namespace })).items;
  for (const ref of used) {
    if (others.some((c) => sameImage(c.spec.image, ref))) {
      opts.progress(` Image ${ref}  Kept (used by another container)`);
      continue;
    }
    try {
      await rmi(conn, [ref], false, () => {});
    } catch (err) {
      if (err instanceof VerbError && err.message.startsWith('No such image')) continue; // a built one, already deleted
      throw err;
    }
    opts.progress(` Image ${ref}  Removed`);
  }
}

/** The project's Containers, sorted by name. */
export async function projectContainers(conn: Connection, project: string): Promise<Container[]> {
  return [...(await listProject(conn, ContainerKind, project)).values()].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
}

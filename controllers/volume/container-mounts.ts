/**
 * The volume side of running a Container: which host directories its `volumeMounts`
 * are, whether they are ready on this node, and creating on first use the Volumes it
 * names but nobody declared (as `docker run -v name:/path` does).
 */
import { stat } from 'node:fs/promises';
import type { Mount } from '../../runtime/cri/index.ts';
import { isAlreadyExists, Volume, type ApiClient, type Container, type Lister } from '../framework/index.ts';
import { LABEL_AUTO_CREATED, SUPPORTED_VOLUME_DRIVERS, volumeDataDir, volumeNodeOf } from './paths.ts';
import { resolveSubPath, SubPathError } from './sub-path.ts';

/** Condition type on a Container saying whether its volumes are ready on its node (like `ImageReady`). */
export const CONDITION_VOLUMES_READY = 'VolumesReady';

export interface VolumeMountDeps {
  /** Volumes of all namespaces (informer cache). */
  readonly volumes: Lister<Volume>;
  /** Creates the Volumes a Container names but that do not exist. */
  readonly client: ApiClient;
  readonly nodeName: string;
  /** Where this node keeps local volumes (`<dataDir>/volumes`); absent: the node serves none. */
  readonly volumesRoot?: string;
}

/** The mounts to give the runtime, why the container must wait, or a spec that cannot work until edited. */
export type VolumeMountsResult =
  | { readonly kind: 'ready'; readonly mounts: Mount[] }
  | { readonly kind: 'waiting'; readonly reason: string; readonly message: string }
  | { readonly kind: 'invalid'; readonly field: string; readonly message: string };

const READY_PHASES = new Set(['Available', 'InUse']);

/**
 * Resolves `c.spec.volumeMounts` to bind mounts of the volumes' data directories on
 * this node (with `subPath` resolved safely inside the volume, see `resolveSubPath`).
 *
 * Creates each named Volume that does not exist (labelled `LABEL_AUTO_CREATED`; an
 * AlreadyExists from a concurrent creator is fine), then answers `waiting` while any
 * volume is missing, being deleted, not yet `Available` on this node, or lives on
 * another node (reason `VolumeNodeConflict`); `invalid` for a subPath that leaves
 * its volume. Host paths come from `volumesRoot`, never from the Volume's status, so a
 * status write cannot make the agent mount an arbitrary host path.
 */
export async function resolveVolumeMounts(deps: VolumeMountDeps, c: Container, signal?: AbortSignal): Promise<VolumeMountsResult> {
  const ns = c.metadata.namespace ?? '';
  const specs = c.spec?.volumeMounts ?? [];
  if (specs.length === 0) return { kind: 'ready', mounts: [] };
  if (!deps.volumesRoot) return { kind: 'waiting', reason: 'VolumesUnsupported', message: `node ${deps.nodeName} serves no volumes (its agent has no volumes directory)` };

  const created: string[] = [];
  for (const name of new Set(specs.map((m) => m.name))) {
    if (deps.volumes.get(ns, name)) continue;
    try {
      await deps.client.create<Volume>(
        { apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name, namespace: ns, labels: { [LABEL_AUTO_CREATED]: 'true' } }, spec: { driver: 'local' } },
        { signal },
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    created.push(name);
  }
  if (created.length) {
    return { kind: 'waiting', reason: 'VolumeCreated', message: `volume ${created.map((n) => JSON.stringify(n)).join(', ')} did not exist and was created on first use; waiting for it to be Available on node ${deps.nodeName}` };
  }

  const mounts: Mount[] = [];
  for (const [i, m] of specs.entries()) {
    const v = deps.volumes.get(ns, m.name)!;
    const name = JSON.stringify(m.name);
    const driver = v.spec?.driver ?? 'local';
    if (v.metadata.deletionTimestamp) return { kind: 'waiting', reason: 'VolumeTerminating', message: `volume ${name} is being deleted` };
    if (!SUPPORTED_VOLUME_DRIVERS.includes(driver)) return { kind: 'waiting', reason: 'UnsupportedDriver', message: `volume ${name} has driver ${JSON.stringify(driver)}, which node ${deps.nodeName} does not serve` };
    const node = volumeNodeOf(v);
    if (node && node !== deps.nodeName) {
      return {
        kind: 'waiting',
        reason: 'VolumeNodeConflict',
        message: `volume ${name} lives on node ${node} but the container is bound to node ${deps.nodeName}; a local volume is only reachable on its node: recreate the container without spec.nodeName (the scheduler then picks ${node}) or move the data`,
      };
    }
    if (v.status?.nodeName !== deps.nodeName || !READY_PHASES.has(v.status?.phase ?? '')) {
      return { kind: 'waiting', reason: 'VolumePending', message: `waiting for volume ${name} to be Available on node ${deps.nodeName} (phase ${v.status?.phase ?? 'Pending'})` };
    }
    const data = volumeDataDir(deps.volumesRoot, ns, m.name);
    if (!(await stat(data).catch(() => undefined))?.isDirectory()) {
      return { kind: 'waiting', reason: 'VolumePending', message: `the data directory of volume ${name} is missing on node ${deps.nodeName}; waiting for the volume controller to make it` };
    }
    let hostPath: string;
    try {
      hostPath = await resolveSubPath(data, m.subPath);
    } catch (err) {
      if (err instanceof SubPathError) return { kind: 'invalid', field: `spec.volumeMounts[${i}].subPath`, message: err.message };
      throw err;
    }
    // Docker fills an empty named volume from the image (not with nocopy; berth: not through a subPath either)
    mounts.push({ containerPath: m.mountPath, hostPath, type: 'bind', ...(m.readOnly ? { readonly: true } : {}), ...(!m.noCopy && !m.subPath ? { copyUp: true } : {}) });
  }
  return { kind: 'ready', mounts };
}

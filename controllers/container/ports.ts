/**
 * A Container's published ports: the call to the node's `PortService` and the status it
 * gives (`status.ports` and the `PortConflict` condition). The reconciler publishes after
 * the container's network is set up and before it creates or starts the runtime
 * container, and does not start it while the outcome is not `ready`; it releases the
 * ports when the container stops, is deleted or leaves the node.
 */
import type { Condition, ContainerPortStatus, ContainerStatus as ApiContainerStatus } from '../../api/types/index.ts';
import { isRuntimeError, type CallOptions } from '../../runtime/cri/index.ts';
import { isPortConflictError, type PortForwarding, type PortService, type PublishedPort } from '../../runtime/cri/port-service.ts';
import type { Container } from '../framework/index.ts';
import { setCondition } from '../framework/conditions.ts';
import { containerNetworkKey } from './container-network.ts';

export const CONDITION_PORT_CONFLICT = 'PortConflict';

/** How long to wait before trying a taken host port again. */
export const PORT_CONFLICT_RETRY_MS = 10_000;

/** What publishing a Container's ports came to. */
export interface PortsOutcome {
  /**
   * False when the container must not start: a host port is taken (`PortConflict=True`,
   * retry after `requeueAfterMs`) or `spec.ports` cannot be published as written
   * (`invalid`: wait for the spec to change, as for other invalid specs).
   */
  readonly ready: boolean;
  readonly invalid?: boolean;
  readonly requeueAfterMs?: number;
  /** `status.ports`; absent when nothing is published. */
  readonly ports?: ContainerPortStatus[];
  /** The `PortConflict` condition; absent (and removed from status) when the container has no ports. */
  readonly condition?: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;
  readonly forwarding?: PortForwarding;
}

const toStatusPort = (p: PublishedPort): ContainerPortStatus => ({ containerPort: p.containerPort, hostPort: p.hostPort, hostIP: p.hostIP, protocol: p.protocol });
const describePorts = (ports: readonly PublishedPort[]): string => ports.map((p) => `${p.hostIP}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');

/**
 * Publishes `c.spec.ports` to `containerIp` (the container's first address; undefined
 * with network `host` or `none`, where ports are not published, as Docker discards them)
 * and says what to report. Idempotent: publishing the same ports to the same address
 * changes nothing on the node. A key with no ports has its publication removed.
 * Rejects only with failures worth retrying (`RuntimeError` other than a conflict or an
 * invalid port).
 */
export async function ensureContainerPorts(c: Container, containerIp: string | undefined, ports: PortService, opts?: CallOptions): Promise<PortsOutcome> {
  const key = containerNetworkKey(c.metadata.namespace ?? '', c.metadata.name ?? '');
  const wanted = c.spec.ports ?? [];
  if (!wanted.length) {
    await ports.unpublish(key, opts);
    return { ready: true };
  }
  if (!containerIp) {
    await ports.unpublish(key, opts);
    return { ready: true, condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'NotPublished', message: 'ports are not published: the container has no address (network host or none)' } };
  }
  try {
    const pub = await ports.publish(
      key,
      {
        containerIp,
        ports: wanted.map((p) => ({
          containerPort: p.containerPort,
          ...(p.hostPort ? { hostPort: p.hostPort } : {}),
          ...(p.hostIP ? { hostIP: p.hostIP } : {}),
          ...(p.protocol ? { protocol: p.protocol } : {}),
        })),
      },
      opts,
    );
    return {
      ready: true,
      ports: pub.ports.map(toStatusPort),
      forwarding: pub.forwarding,
      condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'Published', message: `published ${describePorts(pub.ports)} via ${pub.forwarding}` },
    };
  } catch (err) {
    if (isPortConflictError(err)) {
      // Publishing is all or nothing: what the key had before is still published.
      const still = (await ports.list(opts)).find((p) => p.key === key);
      return {
        ready: false,
        requeueAfterMs: PORT_CONFLICT_RETRY_MS,
        ...(still?.ports.length ? { ports: still.ports.map(toStatusPort) } : {}),
        condition: { type: CONDITION_PORT_CONFLICT, status: 'True', reason: 'HostPortInUse', message: err.message },
      };
    }
    if (isRuntimeError(err, 'InvalidArgument')) {
      return { ready: false, invalid: true, condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'InvalidPort', message: err.message } };
    }
    throw err;
  }
}

/** Removes the Container's published ports (it stopped, was deleted or left the node). Idempotent. */
export async function releaseContainerPorts(namespace: string, name: string, ports: PortService, opts?: CallOptions): Promise<void> {
  await ports.unpublish(containerNetworkKey(namespace, name), opts);
}

/**
 * `status` with `status.ports` and the `PortConflict` condition of `outcome` (both
 * removed when the outcome has none). Never mutates its input.
 */
export function withPortsStatus(status: ApiContainerStatus, outcome: PortsOutcome, observedGeneration: number, nowMs: number): ApiContainerStatus {
  const { ports: _ports, ...rest } = status;
  const conditions = outcome.condition
    ? setCondition(status.conditions, { ...outcome.condition, observedGeneration }, nowMs)
    : (status.conditions ?? []).filter((x) => x.type !== CONDITION_PORT_CONFLICT);
  return { ...rest, ...(outcome.ports ? { ports: outcome.ports } : {}), ...(conditions.length || status.conditions ? { conditions } : {}) };
}

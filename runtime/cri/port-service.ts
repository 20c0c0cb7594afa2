/**
 * Published ports on the node, as `docker run -p hostIP:hostPort:containerPort/protocol`:
 * traffic to `hostIP:hostPort` reaches `containerIp:containerPort`.
 *
 * Words used below:
 * - key: the container key, `<namespace>/<name>` of a Container object (the same key as
 *   the `NetworkService`'s); a key's publication outlives restarts and replacements of
 *   its runtime container.
 * - forwarding: how the node forwards, `nftables` (DNAT rules in a private table owned
 *   by berth) or `proxy` (an in-process TCP/UDP proxy, used only where nftables is
 *   unavailable; its ports go down while the process is down).
 */
import { RuntimeError } from './errors.ts';
import type { CallOptions } from './types.ts';

export type PortProtocol = 'TCP' | 'UDP';

/** How published ports are forwarded on this node. */
export type PortForwarding = 'nftables' | 'proxy';

/** One port the container asks to publish. */
export interface PortMapping {
  /** Port inside the container, 1–65535. */
  readonly containerPort: number;
  /** Port on the node; absent or 0 picks a free one. */
  readonly hostPort?: number;
  /** IPv4 address on the node; default `127.0.0.1`; `0.0.0.0` means every local address. */
  readonly hostIP?: string;
  /** Default `TCP`. */
  readonly protocol?: PortProtocol;
}

/** A port as published: every field resolved, `hostPort` the one picked when none was asked for. */
export interface PublishedPort {
  readonly containerPort: number;
  readonly hostPort: number;
  readonly hostIP: string;
  readonly protocol: PortProtocol;
}

/** What one container asks for. */
export interface PublishRequest {
  /** The container's address the ports forward to (its first network's address). */
  readonly containerIp: string;
  readonly ports: readonly PortMapping[];
}

/** The ports published for one key, in the order of the request. */
export interface PortPublication {
  readonly key: string;
  readonly containerIp: string;
  readonly ports: readonly PublishedPort[];
  readonly forwarding: PortForwarding;
}

/** Owner named by `PortConflictError` when the port is held by something that is not a berth container. */
export const PORT_OWNER_OTHER_PROCESS = 'another process';

/**
 * A host port that is already taken. `owner` is the key of the container that published
 * it, or `PORT_OWNER_OTHER_PROCESS`. Its `code` is `FailedPrecondition`.
 */
export class PortConflictError extends RuntimeError {
  constructor(
    readonly port: { readonly hostIP: string; readonly hostPort: number; readonly protocol: PortProtocol },
    readonly owner: string,
    options?: ErrorOptions,
  ) {
    super('FailedPrecondition', `host port ${port.hostIP}:${port.hostPort}/${port.protocol} is already in use by ${owner}`, options);
  }
}

export const isPortConflictError = (err: unknown): err is PortConflictError => err instanceof PortConflictError;

/**
 * Publishes containers' ports on this node.
 *
 * Contracts:
 * - `publish` is all or nothing: on any failure no port of the request is published
 *   and the key's previous publication (if any) stays as it was. A host port taken by
 *   another key or by any process rejects with `PortConflictError`; a bad request with
 *   `RuntimeError('InvalidArgument')`; other failures with `RuntimeError('Internal')`.
 * - Publishing again under the same key replaces the key's publication (forwarding
 *   follows the container to a new address); a port that was picked for the key keeps
 *   its host port while the key publishes the same containerPort/protocol/hostIP.
 * - `unpublish` is idempotent: resolves if the key has nothing published.
 * - Publications survive a restart of the process; calls may run concurrently (they
 *   are serialized inside).
 */
export interface PortService {
  publish(key: string, req: PublishRequest, opts?: CallOptions): Promise<PortPublication>;
  unpublish(key: string, opts?: CallOptions): Promise<void>;
  /** Every key's publication on this node. */
  list(opts?: CallOptions): Promise<PortPublication[]>;
}

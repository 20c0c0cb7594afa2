/**
 * The node's container networks, CRI-O/Podman style: the agent prepares a network
 * namespace before it creates a container (as a CRI sandbox) and releases it after
 * the container is removed.
 *
 * Words used below:
 * - network key: `<namespace>/<name>` of a Network object, or the name of the node's
 *   default network (no slash).
 * - container key: `<namespace>/<name>` of a Container object; a container's network
 *   setup outlives restarts and replacements of its runtime container.
 */
import type { CallOptions } from './types.ts';

/** One network as the node should build it. */
export interface NetworkDefinition {
  /** The network key. */
  readonly key: string;
  /** IPv4 subnet in CIDR form, e.g. `10.90.0.0/24`. */
  readonly subnet: string;
  /** Gateway address inside the subnet (given to the bridge); default the first address. */
  readonly gateway?: string;
  /** Containers may reach addresses outside their networks (NAT, IP forwarding on). */
  readonly outbound: boolean;
}

/** A network as built on this node. */
export interface NetworkInfo {
  readonly key: string;
  readonly subnet: string;
  readonly gateway: string;
  /** Name of the Linux bridge device. */
  readonly bridge: string;
  readonly outbound: boolean;
}

/** A container's request to join one network. */
export interface NetworkAttachmentRequest {
  /** The network key; the network must have been ensured on this node. */
  readonly network: string;
  /** Extra DNS names by which containers on this network reach the container. */
  readonly aliases?: readonly string[];
  /** A fixed address in the network's subnet; absent picks a free one. */
  readonly ipv4Address?: string;
}

/** What a container asks for: the key, its DNS name, and the networks in order (the first gives the default route). */
export interface ContainerNetworkRequest {
  /** The container key. */
  readonly key: string;
  /** Identity of the object: a setup made for another uid under the same key is rebuilt. */
  readonly uid: string;
  /** Namespace of the container (names resolve within it on shared networks). */
  readonly namespace: string;
  /** The container's DNS name on every network. */
  readonly name: string;
  /** At least one network. */
  readonly attachments: readonly NetworkAttachmentRequest[];
}

/** One address of a container. */
export interface ContainerAddress {
  readonly network: string;
  readonly ip: string;
  readonly prefixLength: number;
  readonly gateway: string;
  /** Interface inside the container (`eth0`, `eth1`, …). */
  readonly interfaceName: string;
}

/** A container's network setup. */
export interface ContainerNetworkSetup {
  readonly key: string;
  /** The network namespace to join (`ContainerConfig.networkNamespace`). */
  readonly netnsPath: string;
  /** In the order of the request's attachments. */
  readonly addresses: readonly ContainerAddress[];
  /** Nameservers for the container's /etc/resolv.conf (the first network's DNS server). */
  readonly dnsServers: readonly string[];
}

/**
 * Builds networks and containers' network namespaces on this node.
 *
 * Contracts:
 * - Failures reject with `RuntimeError`: `InvalidArgument` for a bad subnet or
 *   address, `NotFound` for an attachment to a network not ensured here,
 *   `FailedPrecondition` for an address already taken or a removal of a network in use,
 *   `Unavailable` when the subnet has no free address.
 * - Every call is idempotent; calls for the same key must not run concurrently.
 * - State survives a restart of the process (allocations are never handed out twice).
 */
export interface NetworkService {
  /** Creates or updates a network (bridge, gateway, DNS server, isolation and NAT rules). */
  ensureNetwork(def: NetworkDefinition, opts?: CallOptions): Promise<NetworkInfo>;
  /** Removes a network and everything it owns. Rejects with `FailedPrecondition` while containers are attached. Resolves if absent. */
  removeNetwork(key: string, opts?: CallOptions): Promise<void>;
  /** Networks built on this node. */
  listNetworks(opts?: CallOptions): Promise<NetworkInfo[]>;
  /**
   * Makes the container's network namespace with one interface per attachment, an
   * address on each, a default route via the first network's gateway, loopback up,
   * and registers its name and aliases with each network's DNS. Returns the existing
   * setup when it already matches (same uid and attachments); otherwise rebuilds it.
   */
  setUpContainerNetwork(req: ContainerNetworkRequest, opts?: CallOptions): Promise<ContainerNetworkSetup>;
  /** The container's current setup, or undefined when it has none. */
  containerNetwork(key: string, opts?: CallOptions): Promise<ContainerNetworkSetup | undefined>;
  /** Removes the container's namespace, interfaces, addresses and names. Resolves if absent. */
  tearDownContainerNetwork(key: string, opts?: CallOptions): Promise<void>;
  /** Keys of every container that has a setup on this node. */
  listContainerNetworks(opts?: CallOptions): Promise<string[]>;
}

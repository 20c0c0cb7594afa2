/**
 * A Container's networks: which mode (`host`, `none`, or bridge networks), the request
 * to the node's `NetworkService`, and the status fields its setup gives.
 */
import type { ContainerStatus as ApiContainerStatus } from '../../api/types/index.ts';
import type { ContainerNetworkRequest, ContainerNetworkSetup } from '../../runtime/cri/index.ts';
import type { Container, Lister, Network } from '../framework/index.ts';
import { InvalidSpecError } from './container-config.ts';

/** `spec.networks` names that are modes, not Networks (Docker's `--network host|none`). */
export const NETWORK_MODE_HOST = 'host';
export const NETWORK_MODE_NONE = 'none';

/** What the container's network needs before it can be created. */
export type NetworkPlan =
  | { readonly mode: 'host' }
  | { readonly mode: 'none' }
  | { readonly mode: 'bridge'; readonly request: ContainerNetworkRequest }
  | { readonly mode: 'waiting'; readonly reason: string; readonly message: string };

/** The container key of a Container: `<namespace>/<name>`. */
export const containerNetworkKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** Throws `InvalidSpecError` when `host` or `none` is combined with other networks or a network is named twice. */
export function validateNetworks(spec: Container['spec']): void {
  const names = (spec.networks ?? []).map((n) => n.name);
  if (names.length > 1 && names.some((n) => n === NETWORK_MODE_HOST || n === NETWORK_MODE_NONE)) {
    throw new InvalidSpecError('spec.networks', `"${NETWORK_MODE_HOST}" and "${NETWORK_MODE_NONE}" must be the only network`);
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new InvalidSpecError('spec.networks', `network "${dup}" is named twice`);
}

/**
 * The plan for `c`: no `spec.networks` joins `defaultNetwork` (a network key of the
 * node; undefined: a loopback-only namespace, `none`); `host`/`none` are modes; other
 * names are Network objects of the same namespace, which must be Ready (else
 * `waiting` with `NetworkNotFound` or `NetworkNotReady`). Pure.
 */
export function planContainerNetwork(c: Container, networks: Lister<Network> | undefined, defaultNetwork: string | undefined): NetworkPlan {
  const ns = c.metadata.namespace ?? '';
  const name = c.metadata.name ?? '';
  const attachments = c.spec.networks ?? [];
  const base = { key: containerNetworkKey(ns, name), uid: c.metadata.uid ?? '', namespace: ns, name };
  if (!attachments.length) {
    return defaultNetwork ? { mode: 'bridge', request: { ...base, attachments: [{ network: defaultNetwork }] } } : { mode: 'none' };
  }
  if (attachments[0]!.name === NETWORK_MODE_HOST) return { mode: 'host' };
  if (attachments[0]!.name === NETWORK_MODE_NONE) return { mode: 'none' };
  for (const a of attachments) {
    const net = networks?.get(ns, a.name);
    if (!net || net.metadata.deletionTimestamp) {
      return { mode: 'waiting', reason: 'NetworkNotFound', message: `network ${JSON.stringify(a.name)} does not exist in namespace ${ns}; create it` };
    }
    if (net.status?.phase !== 'Ready') {
      return { mode: 'waiting', reason: 'NetworkNotReady', message: `network ${JSON.stringify(a.name)} is not ready (${net.status?.phase ?? 'Pending'})` };
    }
  }
  return {
    mode: 'bridge',
    request: {
      ...base,
      attachments: attachments.map((a) => ({
        network: `${ns}/${a.name}`,
        ...(a.aliases?.length ? { aliases: [...a.aliases] } : {}),
        ...(a.ipv4Address ? { ipv4Address: a.ipv4Address } : {}),
      })),
    },
  };
}

/** `status.ip` and `status.networks` from a setup; removes both when there is none. */
export function withNetworkStatus(status: ApiContainerStatus, setup: ContainerNetworkSetup | undefined): ApiContainerStatus {
  const { ip: _ip, networks: _networks, ...rest } = status;
  if (!setup?.addresses.length) return rest;
  return {
    ...rest,
    ip: setup.addresses[0]!.ip,
    networks: setup.addresses.map((a) => ({
      name: a.network.includes('/') ? a.network.slice(a.network.indexOf('/') + 1) : a.network,
      ip: a.ip,
      prefixLength: a.prefixLength,
      gateway: a.gateway,
      interfaceName: a.interfaceName,
    })),
  };
}

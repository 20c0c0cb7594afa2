/** Published ports on the node: `PortPublisher` (the `PortService` port) over nftables DNAT, or an in-process proxy. */
export { DEFAULT_PORTS_TABLE, PortPublisher, type PortLogger, type PortPublisherOptions, type PortRecovery } from './port-publisher.ts';
export { renderPortRules, needsRouteLocalnet } from './nft-port-rules.ts';
export { openHostPort, type HostPort, type ProxyTarget } from './host-port.ts';

/** Container networks on this node: bridges, network namespaces, IPAM, DNS, nftables isolation. */
export { BridgeNetworkService, DEFAULT_NETWORK_TABLE, type BridgeNetworkServiceOptions, type NetworkLogger } from './bridge-network-service.ts';
export { Ipam } from './ipam.ts';
export { DnsServer, DNS_RCODE, encodeQuery, decodeReply, type DnsServerOptions } from './dns-server.ts';
export { renderRuleset, type FirewallNetwork } from './nft-ruleset.ts';
export { parseSubnet, formatSubnet, overlaps, toIpNumber, toIpString, type Subnet } from './cidr.ts';

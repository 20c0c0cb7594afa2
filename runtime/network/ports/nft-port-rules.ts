/**
 * The nftables script of berth's private port-publishing table (`table ip <name>`).
 * Measured on this host (notes/runtime.md §4 and ports/README.md): DNAT in `output`
 * alone does not reach a container from 127.0.0.1; it also needs a masquerade of
 * loopback sources and `route_localnet=1` on the interface towards the container.
 */
import type { PortPublication } from '../../cri/port-service.ts';

/** Keys and interface names go into the script quoted; anything else is dropped. */
const quote = (s: string): string => JSON.stringify(s.replace(/[^A-Za-z0-9._:/@-]/g, ''));

const isLoopback = (ip: string): boolean => ip.startsWith('127.');

/**
 * The `nft -f` script that replaces table `ip <table>` with DNAT rules for
 * `publications`, in one transaction; with none, the script deletes the table.
 *
 * Per published port: `hostIP:hostPort` → `containerIp:containerPort` in `prerouting`
 * (from other hosts and namespaces) and `output` (from the host itself), for
 * destinations that are local addresses (`0.0.0.0` matches any of them). `postrouting`
 * masquerades DNATed connections from 127.0.0.0/8 (their replies could not leave the
 * container otherwise) and a container's connections to its own published port
 * (hairpin). `input` drops new connections to 127.0.0.0/8 arriving on
 * `localnetInterfaces`, the interfaces where `route_localnet` was turned on, so that
 * containers cannot reach the host's loopback services through them (CVE-2020-8558).
 */
export function renderPortRules(table: string, publications: readonly PortPublication[], localnetInterfaces: readonly string[]): string {
  const head = `table ip ${table} {}\ndelete table ip ${table}\n`;
  const ports = publications.flatMap((p) => p.ports.map((port) => ({ key: p.key, containerIp: p.containerIp, port })));
  if (!ports.length) return head;
  const dnat: string[] = [];
  const snat = ['    ip saddr 127.0.0.0/8 ct status dnat masquerade'];
  for (const { key, containerIp, port } of ports) {
    const l4 = port.protocol === 'UDP' ? 'udp' : 'tcp';
    const daddr = port.hostIP === '0.0.0.0' ? '' : `ip daddr ${port.hostIP} `;
    dnat.push(`    ${daddr}${l4} dport ${port.hostPort} dnat to ${containerIp}:${port.containerPort} comment ${quote(key)}`);
    snat.push(`    ip saddr ${containerIp} ip daddr ${containerIp} ${l4} dport ${port.containerPort} ct status dnat masquerade comment ${quote(key)}`);
  }
  const input = localnetInterfaces.length
    ? `    iifname { ${localnetInterfaces.map(quote).join(', ')} } ip daddr 127.0.0.0/8 ct state != { established, related } drop\n`
    : '';
  return (
    head +
    `table ip ${table} {\n` +
    `  chain ports {\n${dnat.join('\n')}\n  }\n` +
    `  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n` +
    `  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n` +
    `  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n${snat.join('\n')}\n  }\n` +
    `  chain input {\n    type filter hook input priority 0; policy accept;\n${input}  }\n` +
    `}\n`
  );
}

/** Whether a publication needs `route_localnet` on the interface towards its container. */
export const needsRouteLocalnet = (p: PortPublication): boolean => p.ports.some((port) => port.hostIP === '0.0.0.0' || isLoopback(port.hostIP));

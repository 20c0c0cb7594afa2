/** One network as the firewall sees it. */
export interface FirewallNetwork {
  readonly bridge: string;
  readonly subnet: string;
  readonly outbound: boolean;
}

/**
 * The `nft -f` script that replaces berth's private table `table inet <name>` with the
 * rules for `networks`, atomically (one transaction). With no networks, the script
 * deletes the table.
 *
 * Rules, per network (bridge B):
 * - traffic routed into B (from the host's other interfaces or another network) is
 *   dropped unless it answers a connection from B or was DNATed (published ports);
 *   traffic within B is bridged and passes;
 * - traffic routed out of B is dropped unless the network has `outbound`, in which
 *   case it is masqueraded behind the host's address.
 */
export function renderRuleset(table: string, networks: readonly FirewallNetwork[]): string {
  const head = `table inet ${table} {}\ndelete table inet ${table}\n`;
  if (!networks.length) return head;
  const q = (s: string) => JSON.stringify(s);
  const forward: string[] = [];
  const nat: string[] = [];
  for (const n of networks) {
    const b = q(n.bridge);
    forward.push(`    iifname ${b} oifname ${b} accept`);
    forward.push(`    oifname ${b} ct state established,related accept`);
    forward.push(`    oifname ${b} ct status dnat accept`);
    forward.push(`    oifname ${b} drop`);
    if (!n.outbound) forward.push(`    iifname ${b} drop`);
    else nat.push(`    ip saddr ${n.subnet} oifname != ${b} masquerade`);
  }
  return (
    head +
    `table inet ${table} {\n` +
    `  chain forward {\n    type filter hook forward priority filter; policy accept;\n${forward.join('\n')}\n  }\n` +
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n${nat.join('\n')}\n  }\n` +
    `}\n`
  );
}

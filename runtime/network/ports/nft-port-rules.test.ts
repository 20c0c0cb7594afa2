import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { PortPublication } from '../../cri/port-service.ts';
import { needsRouteLocalnet, renderPortRules } from './nft-port-rules.ts';

const pub = (key: string, containerIp: string, ports: PortPublication['ports']): PortPublication => ({ key, containerIp, ports, forwarding: 'nftables' });
const web = pub('default/web', '10.209.7.2', [{ containerPort: 80, hostPort: 5141, hostIP: '127.0.0.1', protocol: 'TCP' }]);
const dns = pub('default/dns', '10.209.7.3', [{ containerPort: 53, hostPort: 5142, hostIP: '0.0.0.0', protocol: 'UDP' }]);
const lan = pub('default/lan', '10.209.7.4', [{ containerPort: 80, hostPort: 5143, hostIP: '192.0.2.10', protocol: 'TCP' }]);

describe('renderPortRules', () => {
  const cases: { name: string; pubs: PortPublication[]; ifaces: string[]; want: string[]; wantNot?: string[] }[] = [
    { name: 'deletes the table when nothing is published', pubs: [], ifaces: [], want: ['table ip t {}\ndelete table ip t\n'], wantNot: ['chain'] },
    {
      name: 'DNATs a loopback TCP port from prerouting and output, masquerading loopback sources',
      pubs: [web],
      ifaces: ['bt9vx'],
      want: [
        'ip daddr 127.0.0.1 tcp dport 5141 dnat to 10.209.7.2:80 comment "default/web"',
        'type nat hook output priority -100',
        'type nat hook prerouting priority -100',
        'fib daddr type local jump ports',
        'ip saddr 127.0.0.0/8 ct status dnat masquerade',
        'ip saddr 10.209.7.2 ip daddr 10.209.7.2 tcp dport 80 ct status dnat masquerade',
        'iifname { "bt9vx" } ip daddr 127.0.0.0/8 ct state != { established, related } drop',
      ],
    },
    { name: 'matches every local address for 0.0.0.0', pubs: [dns], ifaces: [], want: ['    udp dport 5142 dnat to 10.209.7.3:53'], wantNot: ['iifname'] },
    { name: 'matches the given address otherwise', pubs: [lan], ifaces: [], want: ['ip daddr 192.0.2.10 tcp dport 5143 dnat to 10.209.7.4:80'] },
  ];
  it.each(cases)('$name', ({ pubs, ifaces, want, wantNot }) => {
    const script = renderPortRules('t', pubs, ifaces);
    for (const w of want) expect(script).toContain(w);
    for (const w of wantNot ?? []) expect(script).not.toContain(w);
  });

  it.skipIf(process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0)('renders a script nft accepts (nft -c)', () => {
    const r = spawnSync('nft', ['-c', '-f', '-'], { input: renderPortRules('bt9_check', [web, dns, lan], ['bt9vx', 'bt9vy']), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('needsRouteLocalnet', () => {
  it.each([
    { name: 'loopback hostIP needs it', p: web, want: true },
    { name: 'all addresses include loopback', p: dns, want: true },
    { name: 'another address does not', p: lan, want: false },
  ])('$name', ({ p, want }) => expect(needsRouteLocalnet(p)).toBe(want));
});

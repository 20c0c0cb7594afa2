/** IPv4 subnets in CIDR form: parsing and address arithmetic. */

/** A parsed IPv4 subnet. */
export interface Subnet {
  /** The network address as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefixLength: number;
  /** Number of addresses, network and broadcast included. */
  readonly size: number;
}

/** `10.0.0.1` → 167772161; throws on anything that is not a dotted quad. */
export function toIpNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** 167772161 → `10.0.0.1`. */
export function toIpString(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parses `a.b.c.d/len` (len 8–30); the address must be the network address. Throws with the reason. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`not an IPv4 CIDR: ${JSON.stringify(cidr)}`);
  const prefixLength = Number(m[2]);
  if (prefixLength < 8 || prefixLength > 30) throw new Error(`prefix length of ${cidr} must be between 8 and 30`);
  const base = toIpNumber(m[1]!);
  const size = 2 ** (32 - prefixLength);
  if (base % size !== 0) throw new Error(`${cidr} is not a network address (host bits set)`);
  return { base, prefixLength, size };
}

/** Whether `ip` is a host address of `subnet` (not the network or broadcast address). */
export function isHostAddress(subnet: Subnet, ip: number): boolean {
  return ip > subnet.base && ip < subnet.base + subnet.size - 1;
}

/** Whether two subnets share an address. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

/** `base/len` of a subnet. */
export function formatSubnet(s: Subnet): string {
  return `${toIpString(s.base)}/${s.prefixLength}`;
}

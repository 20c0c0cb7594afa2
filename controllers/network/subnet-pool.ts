/** Picking a free subnet for a Network without `spec.subnet`. */

const toNum = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

function range(cidr: string): [number, number] | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const size = 2 ** (32 - Number(m[2]));
  const base = toNum(m[1]!) - (toNum(m[1]!) % size);
  return [base, base + size];
}

/** The first `/prefixLength` inside `pool` that overlaps none of `taken` (malformed entries are ignored), or undefined. Pure. */
export function freeSubnet(pool: string, prefixLength: number, taken: readonly string[]): string | undefined {
  const p = range(pool);
  if (!p) return undefined;
  const used = taken.map(range).filter((r): r is [number, number] => !!r);
  const size = 2 ** (32 - prefixLength);
  for (let base = p[0]; base + size <= p[1]; base += size) {
    if (!used.some(([a, b]) => base < b && a < base + size)) return `${toIp(base)}/${prefixLength}`;
  }
  return undefined;
}

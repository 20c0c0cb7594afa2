/**
 * Kubernetes resource quantities (`500m`, `64Mi`, `1.5G`, `2`), as numbers and back:
 * enough of apimachinery's `resource.Quantity` for limits, capacities and requests
 * (decimal and binary suffixes, exponents; no canonical-form round trips). Resource
 * quantities are never negative, so a negative one is rejected.
 */

const SUFFIX: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^\+?((?:\d+\.?\d*)|(?:\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$/;

/**
 * The value of a non-negative quantity: `parseQuantity('500m')` is 0.5,
 * `parseQuantity('64Mi')` is 67108864, a number is returned as is. Throws
 * `RangeError` naming the input when it is not a quantity (or is negative).
 */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q) || q < 0) throw new RangeError(`not a quantity: ${q}`);
    return q;
  }
  const m = QUANTITY.exec(q.trim());
  if (!m) throw new RangeError(`not a quantity: ${JSON.stringify(q)}`);
  const base = Number(m[1]);
  return m[2] ? base * 10 ** Number(m[2].slice(1)) : base * SUFFIX[m[3] ?? '']!;
}

/** A memory quantity in bytes, rounded up to a whole byte. Throws `RangeError` when malformed or zero. */
export function toMemoryBytes(q: string | number): number {
  const bytes = Math.ceil(parseQuantity(q));
  if (bytes <= 0 || !Number.isSafeInteger(bytes)) throw new RangeError(`memory must be a positive quantity, got ${JSON.stringify(q)}`);
  return bytes;
}

/** A CPU quantity in cores (`500m` → 0.5). Throws `RangeError` when malformed or zero. */
export function toCpus(q: string | number): number {
  const cpus = parseQuantity(q);
  if (cpus <= 0) throw new RangeError(`cpus must be a positive quantity, got ${JSON.stringify(q)}`);
  return cpus;
}

/** `parseQuantity`, or `undefined` for an absent or malformed quantity (treated as "no request"). */
export function toQuantityValue(q: string | number | undefined | null): number | undefined {
  if (q === undefined || q === null || q === '') return undefined;
  try {
    return parseQuantity(q);
  } catch {
    return undefined;
  }
}

const BINARY = ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'] as const;

/**
 * A byte count as a quantity with the largest binary suffix that divides it exactly:
 * `24Gi`, `16318452Ki`, or plain bytes. Rejects negative and fractional counts.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`not a byte count: ${bytes}`);
  if (bytes === 0) return '0';
  for (const s of BINARY) {
    const unit = SUFFIX[s]!;
    if (bytes % unit === 0) return `${bytes / unit}${s}`;
  }
  return String(bytes);
}

/** CPU cores as a quantity: whole cores plain (`2`), fractions in millicores (`1500m`). */
export function formatCpus(cores: number): string {
  if (!Number.isFinite(cores) || cores < 0) throw new RangeError(`not a CPU count: ${cores}`);
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`;
}

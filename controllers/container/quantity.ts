/**
 * Kubernetes resource quantities (`64Mi`, `1G`, `500m`, `0.5`, `2`) for the limits of
 * a Container: memory as a whole number of bytes, CPUs as cores.
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

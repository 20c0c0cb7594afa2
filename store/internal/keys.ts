/**
 * Key ordering and prefix ranges shared by the backends.
 *
 * Keys sort bytewise on their UTF-8 encoding (as SQLite's BINARY collation and etcd
 * do), which is code point order, not JavaScript's UTF-16 code unit order.
 */

/** Compares two keys in UTF-8 byte order: negative, zero or positive. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF, which sort after U+E000–FFFF.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined
 * when there is none (the empty prefix). Keys in [prefix, end) are exactly those
 * starting with `prefix`.
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    let last = (points.pop() ?? 0) + 1;
    if (last === 0xd800) last = 0xe000;
    if (last <= 0x10ffff) {
      points.push(last);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

/** The larger of two keys in key order. */
export const maxKey = (a: string, b: string): string => (compareKeys(a, b) >= 0 ? a : b);

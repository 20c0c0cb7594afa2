import { describe, expect, it } from 'vitest';
import { parseQuantity, toCpus, toMemoryBytes } from './quantity.ts';

describe('parseQuantity', () => {
  const cases: { name: string; in: string | number; want: number }[] = [
    { name: 'binary suffix Mi', in: '64Mi', want: 64 * 2 ** 20 },
    { name: 'decimal suffix G', in: '1G', want: 1e9 },
    { name: 'binary suffix Gi with fraction', in: '1.5Gi', want: 1.5 * 2 ** 30 },
    { name: 'milli', in: '500m', want: 0.5 },
    { name: 'plain number string', in: '2', want: 2 },
    { name: 'decimal fraction', in: '0.25', want: 0.25 },
    { name: 'leading dot', in: '.5', want: 0.5 },
    { name: 'exponent', in: '1e3', want: 1000 },
    { name: 'k', in: '128k', want: 128_000 },
    { name: 'Ki', in: '4Ki', want: 4096 },
    { name: 'a number as is', in: 1024, want: 1024 },
    { name: 'surrounding spaces', in: ' 8Mi ', want: 8 * 2 ** 20 },
  ];
  it.each(cases)('reads $name', ({ in: q, want }) => expect(parseQuantity(q)).toBeCloseTo(want, 9));

  it.each(['', 'lots', '64MB', '1.2.3', '-1', 'Mi', '5 Mi', '1e'])('rejects %j with a RangeError naming it', (q) => {
    expect(() => parseQuantity(q)).toThrow(RangeError);
    expect(() => parseQuantity(q)).toThrow(`not a quantity: ${JSON.stringify(q.trim())}`);
  });
});

describe('toMemoryBytes / toCpus', () => {
  it('rounds memory up to whole bytes', () => expect(toMemoryBytes('1.5')).toBe(2));
  it('rejects zero memory', () => expect(() => toMemoryBytes('0')).toThrow(/positive/));
  it('reads cpus as cores from milli-cores and numbers', () => {
    expect(toCpus('500m')).toBe(0.5);
    expect(toCpus(2)).toBe(2);
    expect(toCpus('1.5')).toBe(1.5);
  });
  it('rejects zero cpus', () => expect(() => toCpus(0)).toThrow(/positive/));
});

import { describe, expect, it } from 'vitest';
import { formatBytes, formatCpus, parseQuantity, toCpus, toMemoryBytes, toQuantityValue } from './quantity.ts';

describe('quantities', () => {
  it.each([
    { in: '500m', want: 0.5 },
    { in: '2', want: 2 },
    { in: 2, want: 2 },
    { in: '1.5', want: 1.5 },
    { in: '64Mi', want: 64 * 2 ** 20 },
    { in: '1Gi', want: 2 ** 30 },
    { in: '500M', want: 5e8 },
    { in: '1k', want: 1000 },
    { in: '1e3', want: 1000 },
    { in: '100n', want: 1e-7 },
  ])('parses $in', ({ in: q, want }) => expect(parseQuantity(q)).toBeCloseTo(want, 12));

  it.each(['', 'abc', '1Xi', '1.2.3', 'Mi'])('rejects %j', (q) => expect(() => parseQuantity(q)).toThrow(RangeError));

  it('treats absent and malformed quantities as no value', () => {
    expect(toQuantityValue(undefined)).toBeUndefined();
    expect(toQuantityValue('lots')).toBeUndefined();
    expect(toQuantityValue('1Mi')).toBe(2 ** 20);
  });

  it.each([
    { bytes: 24 * 2 ** 30, want: '24Gi' },
    { bytes: 16318452 * 1024, want: '16318452Ki' },
    { bytes: 1536 * 2 ** 20, want: '1536Mi' },
    { bytes: 1000, want: '1000' },
    { bytes: 0, want: '0' },
  ])('formats $bytes bytes as $want', ({ bytes, want }) => {
    expect(formatBytes(bytes)).toBe(want);
    expect(parseQuantity(want)).toBe(bytes);
  });

  it.each([
    { cores: 2, want: '2' },
    { cores: 1.5, want: '1500m' },
  ])('formats $cores cores as $want', ({ cores, want }) => expect(formatCpus(cores)).toBe(want));
});


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

import { describe, expect, it } from 'vitest';
import { formatBytes, formatCpus, parseQuantity, toQuantityValue } from './quantity.ts';

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

import { describe, expect, it } from 'vitest';
import { deepEqual } from './deep-equal.ts';

describe('deepEqual', () => {
  const cases = [
    { name: 'ignores key order', a: { x: 1, y: { z: [1, 2] } }, b: { y: { z: [1, 2] }, x: 1 }, want: true },
    { name: 'compares arrays in order', a: [1, 2], b: [2, 1], want: false },
    { name: 'treats undefined-valued keys as absent, as JSON does', a: { x: 1, y: undefined }, b: { x: 1 }, want: true },
    { name: 'tells null from absent', a: { x: null }, b: {}, want: false },
    { name: 'tells an array from an object', a: { 0: 'a' }, b: ['a'], want: false },
    { name: 'compares nested values', a: { c: [{ type: 'Ready', status: 'True' }] }, b: { c: [{ type: 'Ready', status: 'False' }] }, want: false },
    { name: 'tells 0 from "0"', a: 0, b: '0', want: false },
  ];
  it.each(cases)('$name', ({ a, b, want }) => {
    expect(deepEqual(a, b)).toBe(want);
    expect(deepEqual(b, a)).toBe(want);
  });
});

import { describe, expect, it } from 'vitest';
import { effectiveBackoffStep, restartDelayMs, shouldRestart } from './restart-policy.ts';

describe('shouldRestart', () => {
  const cases = [
    { name: 'Always after success', policy: 'Always', code: 0, want: true },
    { name: 'Always after failure', policy: 'Always', code: 1, want: true },
    { name: 'OnFailure after success', policy: 'OnFailure', code: 0, want: false },
    { name: 'OnFailure after failure', policy: 'OnFailure', code: 137, want: true },
    { name: 'OnFailure after an unknown exit', policy: 'OnFailure', code: undefined, want: true },
    { name: 'Never after failure', policy: 'Never', code: 1, want: false },
    { name: 'the default (Always) after success', policy: undefined, code: 0, want: true },
  ] as const;
  it.each(cases)('decides $name', ({ policy, code, want }) => expect(shouldRestart({ restartPolicy: policy }, code, 0)).toBe(want));
  it('stops OnFailure at restartMaxRetries restarts (on-failure:N), and no other policy', () => {
    const onFailure3 = { restartPolicy: 'OnFailure', restartMaxRetries: 3 } as const;
    expect([0, 1, 2, 3, 4].map((n) => shouldRestart(onFailure3, 1, n))).toEqual([true, true, true, false, false]);
    expect(shouldRestart({ restartPolicy: 'OnFailure', restartMaxRetries: 0 }, 1, 0)).toBe(false);
    expect(shouldRestart({ restartPolicy: 'Always', restartMaxRetries: 1 }, 1, 5)).toBe(true);
  });
});

describe('restart back-off', () => {
  it('starts at 100 ms and doubles up to a 10 s cap', () => {
    expect([0, 1, 2, 3, 6, 7, 20].map((s) => restartDelayMs(s))).toEqual([100, 200, 400, 800, 6_400, 10_000, 10_000]);
  });
  it('resets after a run of at least 10 s, and not after a shorter one', () => {
    expect(effectiveBackoffStep(5, 10_000)).toBe(0);
    expect(effectiveBackoffStep(5, 9_999)).toBe(5);
    expect(effectiveBackoffStep(5, undefined)).toBe(5);
  });
  it('takes its numbers from options', () => expect(restartDelayMs(3, { initialMs: 10, maxMs: 50 })).toBe(50));
});

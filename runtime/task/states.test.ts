import { describe, expect, it } from 'vitest';
import { canTransition, exitReason, requireState, transition, type TaskState } from './states.ts';

describe('task state machine', () => {
  it.each<{ from: TaskState; to: TaskState; ok: boolean }>([
    { from: 'created', to: 'running', ok: true },
    { from: 'created', to: 'stopped', ok: true },
    { from: 'created', to: 'paused', ok: false },
    { from: 'running', to: 'paused', ok: true },
    { from: 'running', to: 'created', ok: false },
    { from: 'paused', to: 'running', ok: true },
    { from: 'paused', to: 'stopped', ok: true },
    { from: 'stopped', to: 'running', ok: false },
    { from: 'stopped', to: 'deleted', ok: true },
    { from: 'running', to: 'deleted', ok: false },
    { from: 'deleted', to: 'created', ok: false },
  ])('moving from $from to $to is allowed: $ok', ({ from, to, ok }) => {
    expect(canTransition(from, to)).toBe(ok);
    if (ok) expect(transition(from, to)).toBe(to);
    else expect(() => transition(from, to)).toThrow(expect.objectContaining({ code: 'FailedPrecondition' }));
  });

  it('names the state in the error of a forbidden verb', () => {
    expect(() => requireState('paused', ['running'], 'exec into')).toThrow('cannot exec into a paused container');
  });

  it.each([
    { code: 0, oom: false, want: 'Completed' },
    { code: 3, oom: false, want: 'Error' },
    { code: 137, oom: true, want: 'OOMKilled' },
    { code: undefined, oom: false, want: 'Unknown' },
  ])('gives reason $want for exit $code (oom $oom)', ({ code, oom, want }) => expect(exitReason(code, oom)).toBe(want));
});

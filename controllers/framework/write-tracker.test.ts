import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../api/types/index.ts';
import { Container, Event } from './resource-kind.ts';
import { FakeClock } from './testing/fake-clock.ts';
import { WriteTracker } from './write-tracker.ts';

const written = (name: string, rv: number): KubeObject => ({ apiVersion: 'v1', kind: 'X', metadata: { namespace: 'default', name, resourceVersion: String(rv) } }) as KubeObject;

describe('WriteTracker', () => {
  it('keeps the newest write per object until a cache settles exactly that write', () => {
    const t = new WriteTracker();
    t.record(Container, written('web', 5));
    t.record(Container, written('web', 4));
    expect(t.lastWrite(Container, 'default', 'web')).toBe('5');
    t.record(Container, written('web', 7));
    t.settle(Container, 'default', 'web', '5');
    expect(t.lastWrite(Container, 'default', 'web')).toBe('7');
    t.settle(Container, 'default', 'web', '7');
    expect(t.lastWrite(Container, 'default', 'web')).toBeUndefined();
    expect(t.size()).toBe(0);
  });

  it('forgets writes nobody settles (Events) once they are older than maxAgeMs', async () => {
    const clock = new FakeClock(0);
    const t = new WriteTracker({ clock, maxAgeMs: 1_000 });
    for (let i = 0; i < 100; i++) t.record(Event, written(`e${i}`, i + 1));
    await clock.advance(600);
    t.record(Container, written('web', 200));
    await clock.advance(600);
    t.record(Container, written('db', 201));
    expect(t.size()).toBe(2);
    expect(t.lastWrite(Event, 'default', 'e0')).toBeUndefined();
    expect(t.lastWrite(Container, 'default', 'web')).toBe('200');
  });

  it('measures age from an object\'s latest write, not its first', async () => {
    const clock = new FakeClock(0);
    const t = new WriteTracker({ clock, maxAgeMs: 1_000 });
    t.record(Container, written('web', 1));
    await clock.advance(900);
    t.record(Container, written('web', 2));
    await clock.advance(900);
    t.record(Container, written('db', 3));
    expect(t.lastWrite(Container, 'default', 'web')).toBe('2');
  });

  it('holds at most maxEntries writes, dropping the oldest', () => {
    const t = new WriteTracker({ maxEntries: 50 });
    for (let i = 0; i < 1_000; i++) t.record(Container, written(`c${i}`, i + 1));
    expect(t.size()).toBe(50);
    expect(t.lastWrite(Container, 'default', 'c949')).toBeUndefined();
    expect(t.lastWrite(Container, 'default', 'c950')).toBe('951');
  });
});

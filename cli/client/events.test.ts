import { describe, expect, it } from 'vitest';
import type { Container, Event as CoreEvent, Image } from '../../api/types/index.ts';
import { containerEvents, coreEvent, eventFilter, formatEvent, imageEvents, objectEvents, pastEvents, type BerthEvent } from './events.ts';

const NOW = '2026-11-28T05:00:09.500Z';
const ID = 'a'.repeat(64);
const ctr = (status: Container['status'], spec: Partial<Container['spec']> = {}): Container => ({
  apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'web', uid: '1234-5678', labels: { tier: 'front' } }, spec: { image: 'busybox', ...spec }, ...(status ? { status } : {}),
});
const line = (es: BerthEvent[]) => es.map(formatEvent).join('');

describe('container lifecycle events', () => {
  it.each([
    ['nothing for a Container the runtime has not created yet', undefined, ctr({ phase: 'Pending' }), ''],
    ['create once the runtime container exists', ctr({ phase: 'Pending' }), ctr({ phase: 'Created', containerID: ID }), `2026-11-28T05:00:09Z container create ${ID} (image=busybox, name=web)\n`],
    ['create and start when both show in one update, at startedAt', ctr({ phase: 'Pending' }), ctr({ phase: 'Running', containerID: ID, startedAt: '2026-11-28T05:00:01Z' }),
      `2026-11-28T05:00:09Z container create ${ID} (image=busybox, name=web)\n2026-11-28T05:00:01Z container start ${ID} (image=busybox, name=web)\n`],
    ['die with the exit code at finishedAt', ctr({ phase: 'Running', containerID: ID, startedAt: '2026-11-28T05:00:01Z' }), ctr({ phase: 'Exited', containerID: ID, startedAt: '2026-11-28T05:00:01Z', finishedAt: '2026-11-28T05:00:04Z', exitCode: 3 }),
      `2026-11-28T05:00:04Z container die ${ID} (exitCode=3, image=busybox, name=web)\n`],
    ['pause', ctr({ phase: 'Running', containerID: ID }), ctr({ phase: 'Paused', containerID: ID }), `2026-11-28T05:00:09Z container pause ${ID} (image=busybox, name=web)\n`],
    ['unpause', ctr({ phase: 'Paused', containerID: ID }), ctr({ phase: 'Running', containerID: ID }), `2026-11-28T05:00:09Z container unpause ${ID} (image=busybox, name=web)\n`],
    ['destroy when the object goes', ctr({ phase: 'Exited', containerID: ID }), undefined, `2026-11-28T05:00:09Z container destroy ${ID} (image=busybox, name=web)\n`],
    ['nothing for a status write that changes no phase', ctr({ phase: 'Running', containerID: ID, startedAt: '2026-11-28T05:00:01Z' }), ctr({ phase: 'Running', containerID: ID, startedAt: '2026-11-28T05:00:01Z', ip: '10.0.0.2' }), ''],
  ])('%s', (_name, prev, next, want) => {
    expect(line(containerEvents(prev, next, NOW))).toBe(want);
  });

  it('reports network connect and disconnect from spec.networks edits', () => {
    const es = containerEvents(ctr({ phase: 'Running', containerID: ID }, { networks: [{ name: 'a' }] }), ctr({ phase: 'Running', containerID: ID }, { networks: [{ name: 'b' }] }), NOW);
    expect(line(es)).toBe('2026-11-28T05:00:09Z network connect b (container=web, name=b)\n2026-11-28T05:00:09Z network disconnect a (container=web, name=a)\n');
  });

  it('replays create, start and die from the timestamps for --since', () => {
    const c = { ...ctr({ phase: 'Exited', containerID: ID, startedAt: '2026-11-28T05:00:01Z', finishedAt: '2026-11-28T05:00:02Z', exitCode: 0 }), metadata: { name: 'web', creationTimestamp: '2026-11-28T05:00:00Z' } };
    expect(pastEvents('container', c).map((e) => `${e.action}@${e.time}`)).toEqual(['create@2026-11-28T05:00:00Z', 'start@2026-11-28T05:00:01Z', 'die@2026-11-28T05:00:02Z']);
  });
});

describe('image, volume, network and core events', () => {
  const img = (phase: string, tags: string[], source: object = { pull: { reference: 'busybox' } }): Image =>
    ({ apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source, tags }, status: { phase } }) as Image;

  it.each([
    ['pull when a pulled image becomes Ready', img('Pulling', ['busybox:latest']), img('Ready', ['busybox:latest']), ['pull busybox:latest']],
    ['build when a built image becomes Ready', img('Building', ['app:1'], { build: {} }), img('Ready', ['app:1'], { build: {} }), ['build app:1']],
    ['tag and untag from spec.tags', img('Ready', ['busybox:latest', 'x:1']), img('Ready', ['busybox:latest', 'y:2']), ['tag y:2', 'untag x:1']],
    ['delete', img('Ready', ['busybox:latest']), undefined, ['delete busybox:latest']],
  ])('%s', (_n, prev, next, want) => {
    expect(imageEvents(prev, next, NOW).map((e) => `${e.action} ${e.id}`)).toEqual(want);
  });

  it('volume and network create and destroy', () => {
    const v = { apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: { name: 'data', creationTimestamp: '2026-11-28T05:00:00Z' } };
    expect(line(objectEvents('volume', undefined, v, NOW))).toBe('2026-11-28T05:00:00Z volume create data (driver=local)\n');
    expect(line(objectEvents('network', v, undefined, NOW))).toBe('2026-11-28T05:00:09Z network destroy data (name=data, type=bridge)\n');
    expect(objectEvents('volume', v, v, NOW)).toEqual([]);
  });

  it('prints a core Event with its object kind, reason and message', () => {
    const e = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'x' }, involvedObject: { kind: 'Container', name: 'web' }, reason: 'BackOff', message: 'restarting', type: 'Warning', lastTimestamp: '2026-11-28T05:00:00Z' } as CoreEvent;
    expect(formatEvent(coreEvent(e))).toBe('2026-11-28T05:00:00Z container BackOff web (message=restarting, type=Warning)\n');
  });
});

describe('events --filter', () => {
  const start: BerthEvent = { time: NOW, type: 'container', action: 'start', id: ID, attributes: { name: 'web', image: 'busybox' }, labels: { tier: 'front' } };
  it.each([
    [['type=container'], true],
    [['type=image'], false],
    [['event=start', 'event=die'], true],
    [['action=die'], false],
    [['container=web'], true],
    [[`container=${ID.slice(0, 12)}`], true],
    [['container=other'], false],
    [['image=busybox'], true],
    [['label=tier'], true],
    [['label=tier=back'], false],
  ])('%j keeps a container start: %s', (filters, want) => {
    expect(eventFilter(filters)(start)).toBe(want);
  });

  it('refuses keys it does not know, naming them', () => {
    expect(() => eventFilter(['daemon=x'])).toThrow(/--filter daemon: not supported/);
  });
});

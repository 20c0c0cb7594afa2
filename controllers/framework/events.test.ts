import { describe, expect, it, onTestFinished } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { EventRecorder } from './events.ts';
import { Event, Node } from './resource-kind.ts';
import { clientFor } from './testing/control-plane-client.ts';
import { FakeClock } from './testing/fake-clock.ts';
import { volumeFixture } from './testing/fixtures.ts';

async function setup() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  const client = clientFor(cp);
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const recorder = new EventRecorder({ client, component: 'berth-test', host: 'node-1', clock });
  return { cp, client, clock, recorder };
}

describe('EventRecorder', () => {
  it('writes a core v1 Event about the object', async () => {
    const { client, recorder } = await setup();
    const v = await client.create(volumeFixture('data'));
    await recorder.normal(v, 'Created', 'created the volume directory');
    const [e, ...rest] = (await client.list(Event, { namespace: 'default' })).items;
    expect(rest).toEqual([]);
    expect(e).toMatchObject({
      involvedObject: { apiVersion: 'berth.dev/v1', kind: 'Volume', name: 'data', namespace: 'default', uid: v.metadata.uid },
      reason: 'Created',
      message: 'created the volume directory',
      type: 'Normal',
      source: { component: 'berth-test', host: 'node-1' },
      count: 1,
      firstTimestamp: '2026-01-01T00:00:00.000Z',
      lastTimestamp: '2026-01-01T00:00:00.000Z',
    });
  });

  it('aggregates repeats of the same reason and message into one Event with a count', async () => {
    const { client, clock, recorder } = await setup();
    const v = await client.create(volumeFixture('data'));
    await recorder.warning(v, 'BackOff', 'restarting failed container');
    await clock.advance(10_000);
    await Promise.all([recorder.warning(v, 'BackOff', 'restarting failed container'), recorder.warning(v, 'BackOff', 'restarting failed container')]);
    await recorder.warning(v, 'BackOff', 'a different message');
    const events = (await client.list(Event, { namespace: 'default' })).items;
    expect(events.map((e) => [e.message, e.count]).sort()).toEqual([
      ['a different message', 1],
      ['restarting failed container', 3],
    ]);
    const repeated = events.find((e) => e.count === 3)!;
    expect(repeated.firstTimestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(repeated.lastTimestamp).toBe('2026-01-01T00:00:10.000Z');
  });

  it('starts a new Event when the aggregated one was deleted, and puts cluster-scoped objects in default', async () => {
    const { client, recorder } = await setup();
    const n = await client.create({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { role: 'worker' } } as Node);
    await recorder.normal(n, 'Registered', 'node registered');
    const [first] = (await client.list(Event, { namespace: 'default' })).items;
    expect(first?.involvedObject).toMatchObject({ kind: 'Node', name: 'n1' });
    await client.delete(Event, 'default', first!.metadata.name!);
    await recorder.normal(n, 'Registered', 'node registered');
    const after = (await client.list(Event, { namespace: 'default' })).items;
    expect(after.map((e) => e.count)).toEqual([1]);
    expect(after[0]!.metadata.name).not.toBe(first!.metadata.name);
  });

  it('never rejects: failures are logged and dropped', async () => {
    const { cp, client, recorder } = await setup();
    const v = await client.create(volumeFixture('data'));
    await cp.stop();
    await expect(recorder.normal(v, 'Created', 'x')).resolves.toBeUndefined();
  });

  it('shows aggregated events in kubectl describe', async () => {
    const { cp, client, recorder } = await setup();
    const v = await client.create(volumeFixture('data'));
    for (let i = 0; i < 3; i++) await recorder.warning(v, 'FailedMount', 'mount failed');
    const out = await cp.kubectl(['describe', 'volume', 'data', '-n', 'default']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/Warning\s+FailedMount\s+.*\(x3 over .*\)\s+berth-test\s+mount failed/);
  });

  it('writes a burst at once, then qps per second, and drops what waits beyond maxQueued', async () => {
    const { client } = await setup();
    const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
    const recorder = new EventRecorder({ client, component: 'berth-test', clock, qps: 10, burst: 2, maxQueued: 2 });
    const v = await client.create(volumeFixture('data'));
    const reasons = async () => (await client.list(Event, { namespace: 'default' })).items.map((e) => e.reason).sort();
    const written = ['A', 'B', 'C', 'D', 'E'].map((r) => recorder.normal(v, r, `event ${r}`));
    await Promise.all([written[0], written[1], written[4]]);
    expect(await reasons()).toEqual(['A', 'B']);
    expect(recorder.dropped).toBe(1);
    await clock.advance(100);
    await written[2];
    expect(await reasons()).toEqual(['A', 'B', 'C']);
    await clock.advance(100);
    await written[3];
    expect(await reasons()).toEqual(['A', 'B', 'C', 'D']);
  });

  it('refuses a qps that is not positive', () => {
    expect(() => new EventRecorder({ client: undefined as never, component: 'x', qps: 0 })).toThrow(RangeError);
  });
});

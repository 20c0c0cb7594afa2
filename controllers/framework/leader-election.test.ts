import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../../test/harness/control-plane.ts';
import { controllerFor } from './builder.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.ts';
import type { Manager } from './manager.ts';
import type { ReconcileContext, Reconciler, Request, Result } from './reconcile.ts';
import { Lease, Volume } from './resource-kind.ts';
import { clientFor } from './testing/control-plane-client.ts';
import { volumeFixture } from './testing/fixtures.ts';
import { managerFor } from './testing/manager.ts';

const FAST: Omit<LeaderElectionOptions, 'identity'> = { leaseName: 'test-controllers', leaseDurationSeconds: 1, renewDeadlineMs: 600, retryPeriodMs: 100 };

async function controlPlane(): Promise<ControlPlane> {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  return cp;
}

/** Records which manager reconciled, and whether two managers ever reconciled at once. */
class SharedLog {
  readonly reconciles: string[] = [];
  active = new Set<string>();
  overlaps = 0;
  reconcilerFor(id: string): Reconciler {
    return {
      reconcile: async (_ctx: ReconcileContext, req: Request): Promise<Result> => {
        this.active.add(id);
        if (this.active.size > 1) this.overlaps++;
        this.reconciles.push(`${id} ${req.name}`);
        await new Promise((r) => setTimeout(r, 5));
        this.active.delete(id);
        return {};
      },
    };
  }
}

/** Samples both managers every few ms and counts moments when both were leading. */
function watchBoth(a: Manager, b: Manager): { readonly both: () => number } {
  let both = 0;
  const t = setInterval(() => {
    if (a.isLeader() && b.isLeader()) both++;
  }, 2);
  onTestFinished(() => clearInterval(t));
  return { both: () => both };
}

function candidate(cp: ControlPlane, log: SharedLog, identity: string, extra: Partial<LeaderElectionOptions> = {}): Manager {
  const m = managerFor(cp, { leaderElection: { ...FAST, identity, ...extra } });
  m.add(controllerFor(Volume).complete(log.reconcilerFor(identity)));
  return m;
}

describe('leader election', () => {
  it('runs the controllers of one manager only, and hands over at once when the leader stops cleanly', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    const log = new SharedLog();
    const a = candidate(cp, log, 'a');
    await a.start();
    await vi.waitFor(() => expect(a.isLeader()).toBe(true));
    const b = candidate(cp, log, 'b');
    await b.start();
    const sampler = watchBoth(a, b);
    await client.create(volumeFixture('v1'));
    await vi.waitFor(() => expect(log.reconciles).toContain('a v1'));
    await new Promise((r) => setTimeout(r, 1_500)); // longer than the lease: b must still wait, as a renews
    expect(b.isLeader()).toBe(false);
    expect(log.reconciles.filter((x) => x.startsWith('b '))).toEqual([]);

    const stoppedAt = Date.now();
    await a.stop();
    await vi.waitFor(() => expect(b.isLeader()).toBe(true), { timeout: 5_000 });
    expect(Date.now() - stoppedAt).toBeLessThan(1_000); // released: no need to wait for expiry
    await vi.waitFor(() => expect(log.reconciles).toContain('b v1')); // b reconciles everything on taking over
    await client.create(volumeFixture('v2'));
    await vi.waitFor(() => expect(log.reconciles).toContain('b v2'));
    expect(log.reconciles).not.toContain('a v2');

    const lease = await client.get(Lease, 'berth-system', 'test-controllers');
    expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseDurationSeconds: 1 });
    expect(lease.spec?.leaseTransitions).toBe(1); // a created it (0), b took it over
    expect(sampler.both()).toBe(0);
    expect(log.overlaps).toBe(0);
  });

  it('takes over within about the lease duration when the leader goes away without releasing', async () => {
    const cp = await controlPlane();
    const log = new SharedLog();
    const a = candidate(cp, log, 'a', { releaseOnCancel: false });
    await a.start();
    await vi.waitFor(() => expect(a.isLeader()).toBe(true));
    const b = candidate(cp, log, 'b');
    await b.start();
    const sampler = watchBoth(a, b);
    await new Promise((r) => setTimeout(r, 300));
    const stoppedAt = Date.now();
    await a.stop();
    await vi.waitFor(() => expect(b.isLeader()).toBe(true), { timeout: 5_000 });
    const tookMs = Date.now() - stoppedAt;
    expect(tookMs).toBeGreaterThanOrEqual(700); // it waited for the lease to expire…
    expect(tookMs).toBeLessThan(3_000); // …and not much longer
    expect(sampler.both()).toBe(0);
  });

  it('steps down when the lease shows another holder', async () => {
    const cp = await controlPlane();
    const client = clientFor(cp);
    const events: string[] = [];
    const elector = new LeaderElector(
      { ...FAST, identity: 'a' },
      {
        client,
        onStartedLeading: async () => void events.push('started'),
        onStoppedLeading: async () => void events.push('stopped'),
      },
    );
    const stop = new AbortController();
    const running = elector.run(stop.signal);
    onTestFinished(async () => {
      stop.abort();
      await running;
    });
    await vi.waitFor(() => expect(elector.isLeader()).toBe(true));
    const lease = await client.get(Lease, 'berth-system', 'test-controllers');
    await client.update({ ...lease, spec: { ...lease.spec, holderIdentity: 'intruder', leaseDurationSeconds: 30, renewTime: new Date().toISOString() } });
    await vi.waitFor(() => expect(events).toEqual(['started', 'stopped']));
    expect(elector.isLeader()).toBe(false);
    expect(elector.observedLeader()).toBe('intruder');
  });
});

/**
 * Test helper: a `Manager` against a harness control plane with short durations,
 * stopped when the test ends.
 */
import { Registry } from 'prom-client';
import { onTestFinished } from 'vitest';
import { Manager, type ManagerOptions } from '../manager.ts';
import { clientFor } from './control-plane-client.ts';

/** A manager for `cp` with fast informer retries; `stop()` runs at the end of the test. */
export function managerFor(cp: { server: { kubeconfigPath: string } }, opts: Partial<ManagerOptions> = {}): Manager {
  const manager = new Manager({
    client: clientFor(cp),
    registry: new Registry(),
    informerBackoff: { initialMs: 20, maxMs: 200 },
    syncTimeoutMs: 10_000,
    ...opts,
  });
  onTestFinished(() => manager.stop());
  return manager;
}

import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { ApiClient } from './client.ts';
import { clientFromKubeconfigFile } from './kubeconfig.ts';
import { ApiStatusError, isAlreadyExists, isConflict, isNotFound } from './api-status-error.ts';
import { Container, Node, Volume } from './resource-kind.ts';
import { clientFor } from './testing/control-plane-client.ts';

async function setup() {
  const cp = await startControlPlane();
  onTestFinished(() => cp.stop());
  return { cp, client: clientFor(cp, { fieldManager: 'test-manager' }) };
}

const volume = (name: string, extra: Record<string, unknown> = {}): Volume => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Volume',
  metadata: { name, namespace: 'default', ...extra },
  spec: { driver: 'local' },
});

/** Counts requests the server has answered for a resource and verb. */
async function requests(cp: Awaited<ReturnType<typeof setup>>['cp'], verb: string, resource: string): Promise<number> {
  const values = (await cp.server.metrics.registry.getSingleMetric('apiserver_request_total')!.get()).values;
  return values.filter((v) => v.labels.verb === verb && v.labels.resource === resource).reduce((n, v) => n + v.value, 0);
}

describe('ApiClient', () => {
  it('creates, gets, lists, updates, patches and deletes objects', async () => {
    const { client } = await setup();
    const created = await client.create(volume('v1'));
    expect(created.metadata.uid).toBeTruthy();
    expect((await client.get(Volume, 'default', 'v1')).metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    expect((await client.list(Volume, { namespace: 'default' })).items.map((v) => v.metadata.name)).toEqual(['v1']);
    expect((await client.list(Volume)).items).toHaveLength(1); // all namespaces

    const updated = await client.update({ ...created, metadata: { ...created.metadata, labels: { a: 'b' } } });
    expect(updated.metadata.labels).toEqual({ a: 'b' });
    const patched = await client.patch(Volume, 'default', 'v1', { metadata: { labels: { c: 'd' } } });
    expect(patched.metadata.labels).toEqual({ a: 'b', c: 'd' });
    const withStatus = await client.updateStatus({ ...patched, status: { phase: 'Available' } });
    expect(withStatus.status?.phase).toBe('Available');

    await client.delete(Volume, 'default', 'v1');
    await expect(client.get(Volume, 'default', 'v1')).rejects.toSatisfy(isNotFound);
    await expect(client.delete(Volume, 'default', 'v1')).rejects.toSatisfy(isNotFound);
  });

  it('maps error responses to ApiStatusError with reason and code', async () => {
    const { client } = await setup();
    const v = await client.create(volume('v-err'));
    await expect(client.create(volume('v-err'))).rejects.toSatisfy(isAlreadyExists);
    await client.patch(Volume, 'default', 'v-err', { metadata: { labels: { x: '1' } } });
    const err = await client.update({ ...v, metadata: { ...v.metadata, labels: { x: '2' } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiStatusError);
    expect(err).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(isConflict(err)).toBe(true);
    expect(isNotFound(err)).toBe(false);
  });

  it('server-side applies with its field manager', async () => {
    const { client } = await setup();
    const applied = await client.apply(volume('v-ssa', { labels: { app: 'x' } }));
    expect(applied.metadata.managedFields?.map((m) => m.manager)).toContain('test-manager');
    const again = await client.apply(volume('v-ssa', { labels: { app: 'y' } }));
    expect(again.metadata.labels).toEqual({ app: 'y' });
  });

  it('adds and removes finalizers only when needed', async () => {
    const { cp, client } = await setup();
    const v = await client.create(volume('v-fin'));
    const before = await requests(cp, 'PATCH', 'volumes');
    const withF = await client.ensureFinalizer(v, 'berth.dev/test');
    expect(withF.metadata.finalizers).toEqual(['berth.dev/test']);
    expect(await client.ensureFinalizer(withF, 'berth.dev/test')).toBe(withF);
    await vi.waitFor(async () => expect(await requests(cp, 'PATCH', 'volumes')).toBe(before + 1));
    const without = await client.removeFinalizer(withF, 'berth.dev/test');
    expect(without.metadata.finalizers ?? []).toEqual([]);
    expect(await client.removeFinalizer(without, 'berth.dev/test')).toBe(without);
    await vi.waitFor(async () => expect(await requests(cp, 'PATCH', 'volumes')).toBe(before + 2));
    expect(v.metadata.finalizers).toBeUndefined(); // the argument is never mutated
  });

  it('adds a finalizer to a stale copy after a status write, but not over a concurrent finalizer change', async () => {
    const { client } = await setup();
    const v = await client.create(volume('v-fin-race'));
    // someone else writes status (and labels) after our copy was read: no conflict, nothing of theirs lost
    await client.updateStatus({ ...v, status: { phase: 'Available' } } as typeof v);
    await client.patch(Volume, 'default', 'v-fin-race', { metadata: { labels: { x: 'y' } } });
    const withF = await client.ensureFinalizer(v, 'berth.dev/a');
    expect(withF.metadata.finalizers).toEqual(['berth.dev/a']);
    expect(withF.metadata.labels).toEqual({ x: 'y' });
    expect((withF.status as { phase?: string }).phase).toBe('Available');
    // someone else changed the finalizers since: refused, theirs kept
    await client.ensureFinalizer(withF, 'berth.dev/b');
    await expect(client.ensureFinalizer(withF, 'berth.dev/c')).rejects.toMatchObject({ code: 422 });
    expect((await client.get(Volume, 'default', 'v-fin-race')).metadata.finalizers).toEqual(['berth.dev/a', 'berth.dev/b']);
    await client.patch(Volume, 'default', 'v-fin-race', { metadata: { finalizers: null } });
  });

  it('writes status only when it differs, ignoring key order', async () => {
    const { cp, client } = await setup();
    const v = await client.create(volume('v-st'));
    const s1 = await client.updateStatusIfChanged(v, { phase: 'Available', observedGeneration: 1 });
    await vi.waitFor(async () => expect(await requests(cp, 'PUT', 'volumes')).toBe(1));
    expect(await client.updateStatusIfChanged(s1, { observedGeneration: 1, phase: 'Available' })).toBe(s1);
    const s2 = await client.updateStatusIfChanged(s1, { phase: 'InUse', observedGeneration: 1 });
    await vi.waitFor(async () => expect(await requests(cp, 'PUT', 'volumes')).toBe(2)); // the equal status made no request
    expect(s2.status?.phase).toBe('InUse');
    expect(client.writes.lastWrite(Volume, 'default', 'v-st')).toBe(s2.metadata.resourceVersion);
  });

  it('handles cluster-scoped kinds and rejects unknown kinds', async () => {
    const { client } = await setup();
    const n = await client.create({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { role: 'worker' } } as Node);
    expect((await client.get(Node, '', 'n1')).metadata.uid).toBe(n.metadata.uid);
    expect(() => client.kindOf({ apiVersion: 'x/v1', kind: 'Y', metadata: {} })).toThrow(/unknown kind x\/v1\/Y/);
    await expect(client.get(Container, '', 'x')).rejects.toThrow(/namespace is required/);
  });

  it('rejects with a network error when the server is unreachable', async () => {
    const { cp } = await setup();
    const client = clientFromKubeconfigFile(cp.server.kubeconfigPath, { requestTimeoutMs: 2_000 });
    onTestFinished(() => client.close());
    await cp.stop();
    await expect(client.get(Volume, 'default', 'x')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

/**
 * `@kubernetes/client-node` 1.4.0's informer against a real berth server, the way
 * controllers use it: list, then watch from the list's resourceVersion; restart it
 * from its `error` handler when the connection fails (client-node stops on any
 * non-410 error, see notes/ecosystem.md §1); relist on a 410.
 */
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR } from './fixtures.ts';

const GVR = { group: 'berth.dev', version: 'v1', namespace: 'default', plural: 'containers' } as const;
const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const RESTART_BACKOFF_MS = 100;

interface Obj extends k8s.KubernetesObject {
  spec?: { image?: string };
}

/** A control plane and an informer watching its Containers. */
interface Watched {
  readonly cp: ControlPlane;
  /** What `makeInformer` returns; typed as the `ListWatch` it is, for `latestResourceVersion()`. */
  readonly informer: k8s.ListWatch<Obj>;
  readonly api: k8s.CustomObjectsApi;
  /** Events the informer emitted, in order, as `verb name@resourceVersion`. */
  readonly events: string[];
  /** Errors the `error` handler saw (and restarted the informer after). */
  readonly errors: unknown[];
  /** Number of `connect` events: one before every (re)list or watch. */
  connects(): number;
  /** Number of LISTs the informer has made. */
  lists(): number;
  /** Stops the informer without the error handler restarting it. */
  pause(): Promise<void>;
  /** Starts it again after `pause()`. */
  resume(): Promise<void>;
}

/**
 * A control plane seeded with Containers named `seed`, and a started informer on
 * default/containers whose `error` handler restarts it after a short backoff unless
 * it is being stopped. Both are stopped when the test finishes.
 */
async function startWatched(seed: readonly string[] = []): Promise<Watched> {
  const cp = await startControlPlane();
  let pause = async () => {};
  onTestFinished(async () => {
    await pause(); // first, or the server going away makes the informer restart itself
    await cp.stop();
  });
  for (const name of seed) expect((await cp.request('POST', CTR, { body: container(name) })).status).toBe(201);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.server.kubeconfigPath);
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  let lists = 0;
  const informer = k8s.makeInformer<Obj>(kc, CTR, () => {
    lists++;
    return api.listNamespacedCustomObject({ ...GVR }) as Promise<k8s.KubernetesListObject<Obj>>;
  });
  expect(informer).toBeInstanceOf(k8s.ListWatch);
  const events: string[] = [];
  const errors: unknown[] = [];
  let connects = 0;
  let stopping = false;
  let retry: NodeJS.Timeout | undefined;
  const record = (verb: string) => (o: Obj) => events.push(`${verb} ${o.metadata?.name}@${o.metadata?.resourceVersion}`);
  informer.on('add', record('add'));
  informer.on('update', record('update'));
  informer.on('delete', record('delete'));
  informer.on('connect', () => connects++);
  informer.on('error', (err) => {
    if (stopping) return; // stop() aborts the watch and reports that as an error too
    errors.push(err);
    clearTimeout(retry);
    retry = setTimeout(() => {
      if (!stopping) void informer.start();
    }, RESTART_BACKOFF_MS);
  });
  pause = async () => {
    stopping = true;
    clearTimeout(retry);
    await informer.stop();
  };
  await informer.start();
  return {
    cp,
    informer: informer as k8s.ListWatch<Obj>,
    api,
    events,
    errors,
    connects: () => connects,
    lists: () => lists,
    pause,
    resume: async () => {
      stopping = false;
      await informer.start();
    },
  };
}

const create = (w: Watched, name: string) => w.api.createNamespacedCustomObject({ ...GVR, body: container(name) }) as Promise<Obj>;
const setImage = (w: Watched, name: string, image: string) =>
  w.api.patchNamespacedCustomObject({ ...GVR, name, body: { spec: { image } } }, merge) as Promise<Obj>;
const remove = (w: Watched, name: string) => w.api.deleteNamespacedCustomObject({ ...GVR, name });

/** `name@resourceVersion image`, sorted: what a cache must agree with the server on. */
const summary = (items: readonly Obj[]) => items.map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion} ${o.spec?.image}`).sort();

async function serverSummary(w: Watched): Promise<string[]> {
  const res = await w.cp.request('GET', CTR);
  expect(res.status).toBe(200);
  return summary(res.body.items);
}

/** Waits until the informer's cache holds exactly what the server lists. */
async function expectCacheMatchesServer(w: Watched): Promise<void> {
  const want = await serverSummary(w);
  await vi.waitFor(() => expect(summary(w.informer.list('default'))).toEqual(want), { timeout: 10_000, interval: 20 });
  const names = w.informer.list().map((o) => o.metadata?.name);
  expect(new Set(names).size).toBe(names.length);
}

const addsOf = (events: readonly string[], name: string) => events.filter((e) => e.startsWith(`add ${name}@`));

describe('client-node informer', () => {
  it('lists existing objects, then sees adds, updates and deletes as they happen', async () => {
    const w = await startWatched(['inf-pre-1', 'inf-pre-2']);
    // start() resolves once the LIST is in the cache and the watch is open
    expect(w.events.map((e) => e.split('@')[0]).sort()).toEqual(['add inf-pre-1', 'add inf-pre-2']);
    expect(w.lists()).toBe(1);
    const listRv = (await w.cp.request('GET', CTR)).body.metadata.resourceVersion;
    expect(w.informer.latestResourceVersion()).toBe(listRv);
    await expectCacheMatchesServer(w);
    w.events.length = 0;

    const a = await create(w, 'inf-a');
    await vi.waitFor(() => expect(w.informer.get('inf-a', 'default')?.metadata?.resourceVersion).toBe(a.metadata?.resourceVersion));
    const a2 = await setImage(w, 'inf-a', 'busybox:2');
    await vi.waitFor(() => expect(w.informer.get('inf-a', 'default')?.spec?.image).toBe('busybox:2'));
    await remove(w, 'inf-pre-1');
    await vi.waitFor(() => expect(w.informer.get('inf-pre-1', 'default')).toBeUndefined());

    expect(w.events).toEqual([
      `add inf-a@${a.metadata?.resourceVersion}`,
      `update inf-a@${a2.metadata?.resourceVersion}`,
      expect.stringMatching(/^delete inf-pre-1@\d+$/),
    ]);
    expect(Number(w.events[2]!.split('@')[1])).toBeGreaterThan(Number(a2.metadata?.resourceVersion));
    await expectCacheMatchesServer(w);
    expect(w.errors).toEqual([]);
  });

  it('survives a server restart: resumes its watch, sees later writes, duplicates and loses nothing', async () => {
    const w = await startWatched();
    const a = await create(w, 'r-a');
    await create(w, 'r-b');
    await create(w, 'r-c');
    await expectCacheMatchesServer(w);
    const listsBefore = w.lists();
    const connectsBefore = w.connects();

    await w.cp.restart();
    // written while the informer is still disconnected or backing off
    await create(w, 'r-d');
    const a2 = await setImage(w, 'r-a', 'busybox:after-restart');
    await remove(w, 'r-b');
    await vi.waitFor(() => expect(w.informer.get('r-a', 'default')?.metadata?.resourceVersion).toBe(a2.metadata?.resourceVersion), { timeout: 10_000 });
    await create(w, 'r-e');
    await expectCacheMatchesServer(w);

    expect(summary(w.informer.list('default')).map((s) => s.split('@')[0])).toEqual(['r-a', 'r-c', 'r-d', 'r-e']);
    for (const n of ['r-a', 'r-b', 'r-c', 'r-d', 'r-e']) expect(addsOf(w.events, n)).toHaveLength(1);
    expect(w.events.filter((e) => e.startsWith('update r-a@'))).toEqual([`update r-a@${a2.metadata?.resourceVersion}`]);
    expect(w.events.filter((e) => e.startsWith('delete '))).toEqual([expect.stringMatching(/^delete r-b@\d+$/)]);
    expect(Number(a2.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata?.resourceVersion));
    // the only errors were the server being away (the error handler restarted the informer)
    expect(w.errors.map(String)).toEqual(w.errors.map(() => expect.stringMatching(/ECONNREFUSED|ECONNRESET|socket hang up|Premature close/)));
    // it reconnected by watching again from its resourceVersion, without a LIST
    expect(w.connects()).toBeGreaterThan(connectsBefore);
    expect(w.lists()).toBe(listsBefore);
  });

  it('relists after a 410 when its resourceVersion was compacted, and its cache then equals the server', async () => {
    const w = await startWatched();
    await create(w, 'g-keep');
    await create(w, 'g-update');
    await create(w, 'g-delete');
    await expectCacheMatchesServer(w);
    const staleRv = Number(w.informer.latestResourceVersion());
    await w.pause();
    const listsBefore = w.lists();

    // many changes while it is stopped, then history is compacted past its resourceVersion
    for (let i = 0; i < 30; i++) await create(w, `g-new-${i}`);
    for (let i = 0; i < 10; i++) await setImage(w, 'g-update', `busybox:${i}`);
    await remove(w, 'g-delete');
    for (let i = 0; i < 30; i += 3) await remove(w, `g-new-${i}`);
    const now = Number((await w.cp.request('GET', CTR)).body.metadata.resourceVersion);
    await w.cp.server.store.revisionLog.compact(now);
    expect(await w.cp.server.store.revisionLog.compactRevision()).toBeGreaterThan(staleRv);

    // on the wire: a watch from the stale resourceVersion is a 200 with one ERROR 410 event, then the end
    const probe = await w.cp.stream(`${CTR}?watch=true&resourceVersion=${staleRv}`);
    expect(probe.status).toBe(200);
    expect(await probe.next()).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    await probe.ended;
    probe.close();

    w.events.length = 0;
    await w.resume();
    await expectCacheMatchesServer(w);
    expect(w.lists()).toBe(listsBefore + 1);
    expect(w.errors).toEqual([]);
    expect(w.informer.get('g-delete', 'default')).toBeUndefined();
    expect(w.informer.get('g-update', 'default')?.spec?.image).toBe('busybox:9');
    expect(w.events).toContainEqual(expect.stringMatching(/^delete g-delete@\d+$/));
    expect(w.events.filter((e) => e.startsWith('add ')).length).toBe(20); // g-new-* minus the 10 deleted
    expect(Number(w.informer.latestResourceVersion())).toBeGreaterThanOrEqual(now);

    // and it keeps watching from the relist
    const late = await create(w, 'g-late');
    await vi.waitFor(() => expect(w.informer.get('g-late', 'default')?.metadata?.resourceVersion).toBe(late.metadata?.resourceVersion));
    await expectCacheMatchesServer(w);
  });
});

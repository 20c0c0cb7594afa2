import { afterEach, describe, expect, it } from 'vitest';
import { isStoreError, type RevisionLog, type StoreErrorCode, type WatchEvent } from '../revision-log.ts';

/** Makes a fresh, empty log and a function that removes everything it created. */
export type RevisionLogFactory = () => Promise<{ log: RevisionLog; cleanup: () => Promise<void> }>;

const STEP_TIMEOUT_MS = 10_000;

/**
 * The `RevisionLog` conformance suite: a vitest `describe` block that every backend
 * runs with its own factory (containerd's `SnapshotterSuite` pattern). Each test gets a
 * new log from `factory`; the suite closes it and calls `cleanup` afterwards.
 * Backends must not compact on their own while the suite runs.
 */
export function revisionLogConformance(name: string, factory: RevisionLogFactory): void {
  describe(`RevisionLog conformance: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });
    const open = async (): Promise<RevisionLog> => {
      const { log, cleanup } = await factory();
      cleanups.push(cleanup, () => log.close());
      return log;
    };

    it('creates, reads, updates and deletes a key, with revisions and createRevision', async () => {
      const log = await open();
      expect(await log.currentRevision()).toBe(0);
      const created = await log.create('/a/x', 'v1');
      expect(created).toEqual({ key: '/a/x', value: 'v1', modRevision: 1, createRevision: 1 });
      expect(await log.get('/a/x')).toEqual(created);
      const updated = await log.update('/a/x', 'v2', 1);
      expect(updated).toEqual({ key: '/a/x', value: 'v2', modRevision: 2, createRevision: 1 });
      const deleted = await log.delete('/a/x', 2);
      expect(deleted).toEqual({ key: '/a/x', value: 'v2', modRevision: 3, createRevision: 1 });
      expect(await log.get('/a/x')).toBeUndefined();
      expect(await log.currentRevision()).toBe(3);
      const again = await log.create('/a/x', 'v3');
      expect(again).toEqual({ key: '/a/x', value: 'v3', modRevision: 4, createRevision: 4 });
      expect(await log.delete('/a/x')).toMatchObject({ modRevision: 5, value: 'v3' });
    });

    const failures: Array<{ name: string; run: (log: RevisionLog) => Promise<unknown>; want: StoreErrorCode }> = [
      { name: 'create of an existing key', run: (l) => l.create('/k/a', 'x'), want: 'KeyExists' },
      { name: 'update of a missing key', run: (l) => l.update('/k/missing', 'x', 1), want: 'NotFound' },
      { name: 'update with a stale revision', run: (l) => l.update('/k/a', 'x', 1), want: 'RevisionMismatch' },
      { name: 'update of a deleted key', run: (l) => l.update('/k/gone', 'x', 3), want: 'NotFound' },
      { name: 'delete of a missing key', run: (l) => l.delete('/k/missing'), want: 'NotFound' },
      { name: 'delete with a stale revision', run: (l) => l.delete('/k/a', 1), want: 'RevisionMismatch' },
      { name: 'list at a future revision', run: (l) => l.list('/k/', { revision: 99 }), want: 'FutureRevision' },
    ];
    it.each(failures)('rejects $name with $want and consumes no revision', async ({ run, want }) => {
      const log = await open();
      await log.create('/k/a', '1'); // r1
      await log.update('/k/a', '2', 1); // r2
      await log.create('/k/gone', 'g'); // r3
      await log.delete('/k/gone'); // r4
      const err = await run(log).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isStoreError(err, want), `got ${String(err)}`).toBe(true);
      expect(await log.currentRevision()).toBe(4);
      expect((await log.create('/k/next', 'n')).modRevision).toBe(5);
    });

    it('checks writes issued together one by one in call order', async () => {
      const log = await open();
      const base = await log.create('/k/base', 'b');
      const results = await Promise.allSettled([
        log.create('/k/1', 'a'),
        log.create('/k/1', 'b'),
        log.update('/k/base', 'b2', base.modRevision),
        log.update('/k/base', 'b3', base.modRevision),
        log.create('/k/2', 'c'),
        log.delete('/k/1'),
      ]);
      const codes = results.map((r) => (r.status === 'fulfilled' ? r.value.modRevision : (r.reason as { code: string }).code));
      expect(codes).toEqual([2, 'KeyExists', 3, 'RevisionMismatch', 4, 5]);
      expect(await log.get('/k/base')).toMatchObject({ value: 'b2', modRevision: 3 });
      expect(await log.get('/k/1')).toBeUndefined();
    });

    it('lists by plain string prefix in key order at the latest revision', async () => {
      const log = await open();
      for (const key of ['/a/c', '/ab/x', '/a/a', '/b/a', '/a/b/deep', '/a']) await log.create(key, key.toUpperCase());
      const res = await log.list('/a/');
      expect(res.items.map((kv) => kv.key)).toEqual(['/a/a', '/a/b/deep', '/a/c']);
      expect(res.items[0]).toMatchObject({ value: '/A/A', modRevision: 3, createRevision: 3 });
      expect(res).toMatchObject({ revision: 6, more: false });
      expect((await log.list('')).items).toHaveLength(6);
      expect((await log.list('/zz/')).items).toEqual([]);
    });

    it('lists the state as it was at an older revision', async () => {
      const log = await open();
      await log.create('/a/1', 'one'); // r1
      await log.create('/a/2', 'two'); // r2
      await log.update('/a/1', 'uno', 1); // r3
      await log.delete('/a/2'); // r4
      await log.create('/a/3', 'three'); // r5
      await log.create('/a/0', 'zero'); // r6, sorts first
      await log.update('/a/3', 'tres', 5); // r7
      const at = async (revision: number): Promise<string[]> =>
        (await log.list('/a/', { revision })).items.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`);
      expect(await at(1)).toEqual(['/a/1=one@1']);
      expect(await at(2)).toEqual(['/a/1=one@1', '/a/2=two@2']);
      expect(await at(3)).toEqual(['/a/1=uno@3', '/a/2=two@2']);
      expect(await at(4)).toEqual(['/a/1=uno@3']);
      expect(await at(5)).toEqual(['/a/1=uno@3', '/a/3=three@5']);
      expect(await at(6)).toEqual(['/a/0=zero@6', '/a/1=uno@3', '/a/3=three@5']);
      expect((await log.list('/a/', { revision: 6, limit: 2 })).items.map((kv) => kv.key)).toEqual(['/a/0', '/a/1']);
      expect(await at(7)).toEqual(['/a/0=zero@6', '/a/1=uno@3', '/a/3=tres@7']);
      expect((await log.list('/a/', { revision: 2 })).revision).toBe(2);
    });

    it('pages with limit and startKey at a fixed revision while writes go on', async () => {
      const log = await open();
      for (let i = 0; i < 10; i++) await log.create(`/p/${i}`, `v${i}`);
      await log.create('/q/0', 'other');
      const first = await log.list('/p/', { limit: 4 });
      expect(first.items.map((kv) => kv.key)).toEqual(['/p/0', '/p/1', '/p/2', '/p/3']);
      expect(first).toMatchObject({ more: true, remaining: 6, revision: 11 });

      await log.delete('/p/5');
      await log.update('/p/4', 'changed', 5);
      await log.create('/p/45', 'new');

      const keys = first.items.map((kv) => kv.key);
      let page = first;
      while (page.more) {
        const startKey = `${page.items[page.items.length - 1]!.key}\u0000`;
        page = await log.list('/p/', { limit: 4, startKey, revision: first.revision });
        expect(page.revision).toBe(first.revision);
        keys.push(...page.items.map((kv) => kv.key));
        if (page.more) expect(page.remaining).toBe(10 - keys.length);
      }
      expect(keys).toEqual(Array.from({ length: 10 }, (_, i) => `/p/${i}`));
      expect((await log.list('/p/', { startKey: '/p/4' })).items.map((kv) => kv.value)).toEqual([
        'changed', 'new', 'v6', 'v7', 'v8', 'v9',
      ]);
      const exact = await log.list('/p/', { limit: 10 });
      expect(exact).toMatchObject({ more: false, remaining: 0 });
    });

    it('counts the live keys under a prefix', async () => {
      const log = await open();
      await log.create('/c/1', 'x');
      await log.create('/c/2', 'x');
      await log.create('/cc/1', 'x');
      await log.delete('/c/1');
      expect(await log.count('/c/')).toBe(1);
      expect(await log.count('/c')).toBe(2);
      expect(await log.count('')).toBe(2);
      expect(await log.count('/none/')).toBe(0);
    });

    it('watches history after a revision, then live changes, filtered by prefix', async () => {
      const log = await open();
      await log.create('/w/1', 'a'); // r1
      await log.create('/x/1', 'other'); // r2
      await log.update('/w/1', 'b', 1); // r3
      const ac = new AbortController();
      const it = iterate(log.watch('/w/', { afterRevision: 1, signal: ac.signal }));
      const history = await take(it, 1);
      expect(history[0]).toEqual({
        type: 'put',
        kv: { key: '/w/1', value: 'b', modRevision: 3, createRevision: 1 },
        prevKv: { key: '/w/1', value: 'a', modRevision: 1, createRevision: 1 },
      });
      await log.create('/x/2', 'other'); // r4
      await log.create('/w/2', 'c'); // r5
      const live = await take(it, 1);
      expect(live[0]).toEqual({ type: 'put', kv: { key: '/w/2', value: 'c', modRevision: 5, createRevision: 5 } });
      ac.abort();
      expect(await it.next()).toMatchObject({ done: true });
    });

    it('delivers deletes with the last value at the delete revision and the previous value', async () => {
      const log = await open();
      await log.create('/d/1', 'a'); // r1
      await log.update('/d/1', 'b', 1); // r2
      const it = iterate(log.watch('/d/', { afterRevision: 2 }));
      const next = take(it, 2);
      await log.delete('/d/1', 2); // r3
      await log.create('/d/1', 'c'); // r4
      const [del, recreate] = await next;
      expect(del).toEqual({
        type: 'delete',
        kv: { key: '/d/1', value: 'b', modRevision: 3, createRevision: 1 },
        prevKv: { key: '/d/1', value: 'b', modRevision: 2, createRevision: 1 },
      });
      expect(recreate).toEqual({ type: 'put', kv: { key: '/d/1', value: 'c', modRevision: 4, createRevision: 4 } });
      const replayed = await take(iterate(log.watch('/d/', { afterRevision: 2 })), 2);
      expect(replayed).toEqual([del, recreate]);
      await it.return?.();
    });

    it('completes a watch when its signal aborts, even while it waits', async () => {
      const log = await open();
      const ac = new AbortController();
      const it = iterate(log.watch('/', { afterRevision: 0, signal: ac.signal }));
      const pending = it.next();
      setTimeout(() => ac.abort(), 10);
      expect(await pending).toMatchObject({ done: true });
      await log.create('/after', 'x');
      expect(await it.next()).toMatchObject({ done: true });
      const aborted = iterate(log.watch('/', { afterRevision: 0, signal: AbortSignal.abort() }));
      expect(await aborted.next()).toMatchObject({ done: true });
      expect((await log.stats()).watchers).toBe(0);
    });

    it('stops a watch when the consumer breaks out of its loop', async () => {
      const log = await open();
      await log.create('/b/1', 'x');
      for await (const ev of log.watch('/b/', { afterRevision: 0 })) {
        expect(ev.kv.key).toBe('/b/1');
        break;
      }
      expect((await log.stats()).watchers).toBe(0);
    });

    it('compacts history: old lists and watches fail with Compacted, current data stays', async () => {
      const log = await open();
      await log.create('/c/a', '1'); // r1
      await log.update('/c/a', '2', 1); // r2
      await log.create('/c/b', 'x'); // r3
      await log.delete('/c/b'); // r4
      await log.create('/c/c', 'y'); // r5
      await log.update('/c/c', 'z', 5); // r6
      await log.compact(4);
      expect(await log.compactRevision()).toBe(4);
      await expectCode(log.list('/c/', { revision: 3 }), 'Compacted');
      await expectCode(take(iterate(log.watch('/c/', { afterRevision: 3 })), 1), 'Compacted');
      expect((await log.list('/c/', { revision: 4 })).items).toEqual([
        { key: '/c/a', value: '2', modRevision: 2, createRevision: 1 },
      ]);
      expect((await log.list('/c/', { revision: 5 })).items.map((kv) => kv.key)).toEqual(['/c/a', '/c/c']);
      expect(await log.get('/c/a')).toEqual({ key: '/c/a', value: '2', modRevision: 2, createRevision: 1 });
      expect(await log.count('/c/')).toBe(2);
      const after = await take(iterate(log.watch('/c/', { afterRevision: 4 })), 2);
      expect(after.map((e) => e.kv.modRevision)).toEqual([5, 6]);
      expect(after[1]!.prevKv).toEqual({ key: '/c/c', value: 'y', modRevision: 5, createRevision: 5 });

      await log.compact(2); // older: no-op
      await log.compact(4); // same: no-op
      expect(await log.compactRevision()).toBe(4);
      await expectCode(log.compact(99), 'FutureRevision');
      await log.compact(6);
      expect(await log.get('/c/c')).toMatchObject({ value: 'z', createRevision: 5 });
      const upd = await log.update('/c/a', '3', 2);
      expect(upd).toEqual({ key: '/c/a', value: '3', modRevision: 7, createRevision: 1 });
      expect(await log.create('/c/b', 'again')).toMatchObject({ modRevision: 8, createRevision: 8 });
      const stats = await log.stats();
      expect(stats).toMatchObject({ revision: 8, compactRevision: 6, keys: 3 });
    });

    it('ends a watcher that falls more than maxBacklog events behind with Compacted', async () => {
      const log = await open();
      await log.create('/s/0', 'x');
      const slow = iterate(log.watch('/s/', { afterRevision: 0, maxBacklog: 5 }));
      expect((await slow.next()).value).toMatchObject({ kv: { key: '/s/0' } });
      const fast = iterate(log.watch('/s/', { afterRevision: 1 }));
      const fastEvents = take(fast, 20);
      for (let i = 1; i <= 20; i++) await log.create(`/s/${i}`, 'x');
      expect((await fastEvents).map((e) => e.kv.modRevision)).toEqual(range(2, 21));
      await expectCode(drain(slow), 'Compacted');
      expect(await slow.next()).toMatchObject({ done: true });
      await fast.return?.();
    });

    it('gives 200 concurrent creates distinct revisions, all watched in order', async () => {
      const log = await open();
      const start = await log.currentRevision();
      const it = iterate(log.watch('/conc/', { afterRevision: start }));
      const watched = take(it, 200);
      const kvs = await Promise.all(range(0, 199).map((i) => log.create(`/conc/${i}`, `v${i}`)));
      const revisions = kvs.map((kv) => kv.modRevision);
      expect(new Set(revisions).size).toBe(200);
      expect([...revisions].sort((a, b) => a - b)).toEqual(range(start + 1, start + 200));
      const events = await watched;
      expect(events.map((e) => e.kv.modRevision)).toEqual(range(start + 1, start + 200));
      const byKey = new Map(kvs.map((kv) => [kv.key, kv.modRevision]));
      for (const e of events) expect(byKey.get(e.kv.key)).toBe(e.kv.modRevision);
      await it.return?.();
    });

    it('switches from replay to live with no gap and no duplicate under concurrent writes', async () => {
      const log = await open();
      await Promise.all(range(0, 2499).map((i) => log.create(`/r/${i}`, `v${i}`)));
      const writers = Promise.all(
        range(0, 15).map(async (w) => {
          for (let i = 0; i < 50; i++) {
            const key = `/r/${w * 50 + i}`;
            const cur = await log.get(key);
            await log.update(key, `w${w}-${i}`, cur!.modRevision);
          }
        }),
      );
      const seen: number[] = [];
      const ac = new AbortController();
      const watching = (async () => {
        for await (const ev of log.watch('/r/', { afterRevision: 0, signal: ac.signal })) {
          seen.push(ev.kv.modRevision);
          if (seen.length % 97 === 0) await new Promise((r) => setImmediate(r)); // a slowish reader
          if (ev.kv.modRevision >= 3300 || seen.length >= 3300) break;
        }
      })();
      await writers;
      expect(await log.currentRevision()).toBe(3300);
      await withTimeout(watching, 'watch to reach revision 3300');
      expect(seen).toEqual(range(1, 3300));
    });

    it('completes watches and rejects calls with Closed after close', async () => {
      const log = await open();
      await log.create('/z/1', 'x');
      const it = iterate(log.watch('/z/', { afterRevision: 1 }));
      const pending = it.next();
      await new Promise((r) => setTimeout(r, 5));
      await log.close();
      expect(await pending).toMatchObject({ done: true });
      await expectCode(log.create('/z/2', 'x'), 'Closed');
      await expectCode(log.get('/z/1'), 'Closed');
      await expectCode(log.list('/z/'), 'Closed');
      await expectCode(take(iterate(log.watch('/z/', { afterRevision: 0 })), 1), 'Closed');
      await log.close();
    });
  });
}

function iterate<T>(iterable: AsyncIterable<T>): AsyncIterator<T> {
  return iterable[Symbol.asyncIterator]();
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next `n` events, failing if the watch ends or stalls first. */
async function take(it: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  return withTimeout(
    (async () => {
      const out: WatchEvent[] = [];
      while (out.length < n) {
        const r = await it.next();
        if (r.done) throw new Error(`watch ended after ${out.length} of ${n} events`);
        out.push(r.value);
      }
      return out;
    })(),
    `${n} watch events`,
  );
}

/** Reads until the watch ends or throws. */
async function drain(it: AsyncIterator<WatchEvent>): Promise<void> {
  await withTimeout(
    (async () => {
      while (!(await it.next()).done);
    })(),
    'the watch to end',
  );
}

async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStoreError(err, code), `want StoreError(${code}), got ${String(err)}`).toBe(true);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);


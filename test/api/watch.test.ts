import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { container, CTR } from './fixtures.ts';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

const merge = 'application/merge-patch+json';

describe('watch', () => {
  it('replays changes after a resourceVersion, then streams live ones', async () => {
    const a = (await cp.request('POST', CTR, { body: container('w-a') })).body;
    await cp.request('PATCH', `${CTR}/w-a`, { body: { spec: { image: 'v2' } }, contentType: merge });
    const w = await cp.stream(`${CTR}?watch=true&resourceVersion=${a.metadata.resourceVersion}`);
    expect(w.status).toBe(200);
    const first = await w.next();
    expect(first.type).toBe('MODIFIED');
    expect(first.object.spec.image).toBe('v2');
    await cp.request('DELETE', `${CTR}/w-a`);
    const del = await w.next();
    expect(del.type).toBe('DELETED');
    expect(Number(del.object.metadata.resourceVersion)).toBeGreaterThan(Number(first.object.metadata.resourceVersion));
    w.close();
  });

  it('sends current objects as ADDED when no resourceVersion is given', async () => {
    await cp.request('POST', CTR, { body: container('w-init', { labels: { watch: 'init' } }) });
    const w = await cp.stream(`${CTR}?watch=1&labelSelector=watch%3Dinit`);
    const ev = await w.next();
    expect(ev).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'w-init' } } });
    w.close();
  });

  it('turns objects leaving a label selection into DELETED and entering into ADDED', async () => {
    const c = (await cp.request('POST', CTR, { body: container('w-sel', { labels: { sel: 'in' } }) })).body;
    const w = await cp.stream(`${CTR}?watch=true&labelSelector=sel%3Din&resourceVersion=${c.metadata.resourceVersion}`);
    await cp.request('PATCH', `${CTR}/w-sel`, { body: { metadata: { labels: { sel: 'out' } } }, contentType: merge });
    expect((await w.next()).type).toBe('DELETED');
    await cp.request('PATCH', `${CTR}/w-sel`, { body: { metadata: { labels: { sel: 'in' } } }, contentType: merge });
    expect((await w.next()).type).toBe('ADDED');
    w.close();
  });

  it('filters by field selector metadata.name as kubectl wait does', async () => {
    const list = (await cp.request('GET', CTR)).body;
    const w = await cp.stream(`${CTR}?watch=true&fieldSelector=metadata.name%3Dw-fs&resourceVersion=${list.metadata.resourceVersion}&allowWatchBookmarks=true`);
    await cp.request('POST', CTR, { body: container('w-other') });
    await cp.request('POST', CTR, { body: container('w-fs') });
    const ev = await w.next();
    expect(ev.type).toBe('ADDED');
    expect(ev.object.metadata.name).toBe('w-fs');
    w.close();
  });

  it('sends Table rows when asked, columns only in the first event', async () => {
    const list = (await cp.request('GET', CTR)).body;
    const w = await cp.stream(`${CTR}?watch=true&resourceVersion=${list.metadata.resourceVersion}`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    await cp.request('POST', CTR, { body: container('w-t1') });
    await cp.request('POST', CTR, { body: container('w-t2') });
    const e1 = await w.next();
    const e2 = await w.next();
    expect(e1.object.kind).toBe('Table');
    expect(e1.object.columnDefinitions.length).toBeGreaterThan(3);
    expect(e1.object.rows[0].cells[0]).toBe('w-t1');
    expect(e2.object.columnDefinitions).toBeUndefined();
    expect(e2.object.rows[0].cells[0]).toBe('w-t2');
    w.close();
  });

  it('ends the stream after timeoutSeconds', async () => {
    const w = await cp.stream(`${CTR}?watch=true&timeoutSeconds=1&resourceVersion=1`);
    await w.ended;
    w.close();
  });

  it('implements sendInitialEvents with an initial-events-end bookmark', async () => {
    await cp.request('POST', CTR, { body: container('w-si', { labels: { si: 'yes' } }) });
    const w = await cp.stream(`${CTR}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=si%3Dyes`);
    expect((await w.next()).object.metadata.name).toBe('w-si');
    const bm = await w.next();
    expect(bm.type).toBe('BOOKMARK');
    expect(bm.object.metadata.annotations['k8s.io/initial-events-end']).toBe('true');
    w.close();
  });

  it('rejects sendInitialEvents without resourceVersionMatch=NotOlderThan', async () => {
    const res = await cp.request('GET', `${CTR}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true`);
    expect(res.status).toBe(422);
  });

  it('answers a compacted resourceVersion with a 410 Expired ERROR event', async () => {
    const c = (await cp.request('POST', CTR, { body: container('w-gone') })).body;
    await cp.request('PATCH', `${CTR}/w-gone`, { body: { spec: { image: 'v2' } }, contentType: merge });
    const now = Number((await cp.request('GET', CTR)).body.metadata.resourceVersion);
    await cp.server.store.revisionLog.compact(now);
    const w = await cp.stream(`${CTR}?watch=true&resourceVersion=${c.metadata.resourceVersion}`);
    const ev = await w.next();
    expect(ev.type).toBe('ERROR');
    expect(ev.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    await w.ended;
    w.close();
  });

  it('keeps serving other watchers and writers while one watcher does not read', async () => {
    const rv = (await cp.request('GET', CTR)).body.metadata.resourceVersion;
    const stalled = await cp.stream(`${CTR}?watch=true&resourceVersion=${rv}`); // never read below
    const live = await cp.stream(`${CTR}?watch=true&resourceVersion=${rv}&labelSelector=burst%3Dlast`);
    const big = 'x'.repeat(100_000);
    for (let i = 0; i < 40; i++) await cp.request('POST', CTR, { body: container(`w-burst-${i}`, { metadata: { annotations: { big } } }) });
    await cp.request('POST', CTR, { body: container('w-burst-last', { labels: { burst: 'last' } }) });
    expect((await live.next()).object.metadata.name).toBe('w-burst-last');
    stalled.close();
    live.close();
  });
});

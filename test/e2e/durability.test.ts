/**
 * The real program as users run it (`node bin/berth.js server`), killed with
 * SIGKILL in the middle of a burst of writes: every acknowledged write survives
 * the restart, resourceVersions keep increasing, and the SQLite file is intact.
 * Also: start-up time, and a second start reusing the PKI, kubeconfig and data.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, spawnBerth, type SpawnedBerth } from './helpers.ts';

const CTR = '/apis/berth.dev/v1/namespaces/default/containers';
const SEQ = 'test.berth.dev/seq';
const MERGE = 'application/merge-patch+json';

const CLIENTS = 16;
const BURST_MS = 1_000;
const BURST_MAX_ACKED = 4_000;
const READY_TIMEOUT_MS = 15_000;

// Everything a test starts, cleaned up even when it fails.
const servers = new Set<SpawnedBerth>();
const dirs: string[] = [];
afterEach(async () => {
  for (const server of servers) {
    await server.stop('SIGKILL');
    server.closeClient();
  }
  servers.clear();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-'));
  dirs.push(dir);
  return dir;
}

type Reply = Awaited<ReturnType<SpawnedBerth['request']>>;

/** `berth server --data-dir dataDir --listen 127.0.0.1:port`, the API server alone, once `/readyz` answers 200. */
async function startBerth(dataDir: string, port: number, logLevel?: string): Promise<SpawnedBerth> {
  const server = await spawnBerth({ dataDir, port, runtime: 'none', controllers: false, readyTimeoutMs: READY_TIMEOUT_MS, maxSockets: CLIENTS, ...(logLevel ? { logLevel } : {}) });
  servers.add(server);
  expect(server.url).toBe(`https://127.0.0.1:${port}`);
  return server;
}

const containerBody = (name: string, seq: string) => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Container',
  metadata: { name, annotations: { [SEQ]: seq } },
  spec: { image: 'busybox', command: ['sleep', '3600'] },
});

/** What the clients know about one object: its last acknowledged state and a write that may or may not have landed. */
interface Known {
  /** The last acknowledged write; undefined until the create was acknowledged. */
  acked?: { readonly rv: number; readonly seq: string; readonly obj: any } | { readonly deleted: true };
  /** The write in flight when the server died, if any: `seq` of a create/update/patch, or a delete. */
  maybe?: { readonly seq: string } | { readonly deleted: true };
}

interface BurstResult {
  readonly known: Map<string, Known>;
  readonly acked: number;
  readonly unexpected: string[];
  readonly inFlightAtKill: number;
  readonly ms: number;
}

/**
 * CLIENTS concurrent clients write as fast as they can, each to its own objects
 * (creates, PUT updates, merge patches, a few deletes), each write carrying a unique
 * `seq` annotation. After BURST_MS or BURST_MAX_ACKED acknowledged writes, `kill()`
 * runs while they are still writing; then they stop.
 */
async function burst(client: SpawnedBerth, kill: () => void): Promise<BurstResult> {
  const known = new Map<string, Known>();
  const unexpected: string[] = [];
  let acked = 0;
  let killed = false;
  let inFlight = 0;
  let inFlightAtKill = 0;
  const started = performance.now();
  const doKill = () => {
    if (killed) return;
    killed = true;
    inFlightAtKill = inFlight;
    kill();
  };
  const timer = setTimeout(doKill, BURST_MS);

  const worker = async (w: number) => {
    const live: string[] = []; // own objects whose last acknowledged write is not a delete
    let n = 0;
    while (!killed) {
      const seq = `${w}-${n++}`;
      const r = Math.random();
      let name: string;
      let op: Promise<Reply>;
      let deleting = false;
      if (live.length === 0 || r < 0.45) {
        name = `d-${seq}`;
        known.set(name, { maybe: { seq } });
        op = client.request('POST', CTR, containerBody(name, seq));
      } else {
        name = live[Math.floor(Math.random() * live.length)]!;
        const k = known.get(name)!;
        const last = k.acked as { obj: any };
        if (r < 0.7) {
          k.maybe = { seq };
          const obj = structuredClone(last.obj);
          obj.metadata.annotations[SEQ] = seq;
          op = client.request('PUT', `${CTR}/${name}`, obj); // carries the acknowledged resourceVersion
        } else if (r < 0.92) {
          k.maybe = { seq };
          op = client.request('PATCH', `${CTR}/${name}`, { metadata: { annotations: { [SEQ]: seq } } }, { contentType: MERGE });
        } else {
          k.maybe = { deleted: true };
          deleting = true;
          op = client.request('DELETE', `${CTR}/${name}`);
        }
      }
      inFlight++;
      let res: Reply;
      try {
        res = await op;
      } catch (e) {
        if (!killed) unexpected.push(`${name} ${seq}: ${(e as Error).message}`);
        return; // the server is gone: this write stays "maybe"
      } finally {
        inFlight--;
      }
      const k = known.get(name)!;
      if (res.status < 200 || res.status > 299) {
        unexpected.push(`${name} ${seq}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        return;
      }
      if (deleting) {
        expect(res.body).toMatchObject({ kind: 'Status', status: 'Success' });
        known.set(name, { acked: { deleted: true } });
        live.splice(live.indexOf(name), 1);
      } else {
        expect(res.body.metadata.annotations[SEQ]).toBe(seq);
        known.set(name, { acked: { rv: Number(res.body.metadata.resourceVersion), seq, obj: res.body } });
        if (res.status === 201) live.push(name);
      }
      if (++acked >= BURST_MAX_ACKED) doKill();
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w)));
  clearTimeout(timer);
  return { known, acked, unexpected, inFlightAtKill, ms: performance.now() - started };
}

/** Every way the stored objects disagree with what was acknowledged. */
function violations(known: ReadonlyMap<string, Known>, stored: ReadonlyMap<string, any>): string[] {
  const out: string[] = [];
  for (const [name, obj] of stored) if (!known.has(name)) out.push(`${name}: stored but never written`);
  for (const [name, k] of known) {
    const obj = stored.get(name);
    const rv = obj ? Number(obj.metadata.resourceVersion) : undefined;
    const seq = obj?.metadata.annotations?.[SEQ];
    const maybeDeleted = !!k.maybe && 'deleted' in k.maybe;
    const maybeSeq = k.maybe && 'seq' in k.maybe ? k.maybe.seq : undefined;
    if (!k.acked) {
      // only an unacknowledged create: absent, or that create
      if (obj && seq !== maybeSeq) out.push(`${name}: never acknowledged, stored with seq ${seq}, not the in-flight ${maybeSeq}`);
    } else if ('deleted' in k.acked) {
      if (obj) out.push(`${name}: acknowledged delete, but stored (seq ${seq}, rv ${rv})`);
    } else if (!obj) {
      if (!maybeDeleted) out.push(`${name}: acknowledged rv ${k.acked.rv} seq ${k.acked.seq}, but missing`);
    } else if (seq === k.acked.seq) {
      if (rv !== k.acked.rv) out.push(`${name}: seq ${seq} acknowledged at rv ${k.acked.rv}, stored at rv ${rv}`);
    } else if (seq === maybeSeq) {
      if (!(rv! > k.acked.rv)) out.push(`${name}: in-flight seq ${seq} stored at rv ${rv}, not above acknowledged rv ${k.acked.rv}`);
    } else {
      out.push(`${name}: stored seq ${seq} rv ${rv}, acknowledged seq ${k.acked.seq} rv ${k.acked.rv}, in flight ${maybeSeq ?? (maybeDeleted ? 'delete' : 'none')}`);
    }
  }
  return out;
}

describe('berth server durability', () => {
  it('keeps every acknowledged write across a SIGKILL mid-burst, keeps resourceVersions increasing, and leaves an intact database', async () => {
    const dataDir = await tempDataDir();
    const port = await freePort();
    const first = await startBerth(dataDir, port, 'warn');
    const result = await burst(first, () => first.child.kill('SIGKILL'));
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    first.closeClient();
    const ackedRvs = [...result.known.values()].flatMap((k) => (k.acked && 'rv' in k.acked ? [k.acked.rv] : []));
    const maybes = [...result.known.values()].filter((k) => k.maybe).length;
    console.log(
      `burst: ${result.acked} acknowledged writes by ${CLIENTS} clients in ${result.ms.toFixed(0)} ms, ` +
        `${result.inFlightAtKill} in flight at SIGKILL, ${maybes} unacknowledged, max acknowledged rv ${Math.max(...ackedRvs)}`,
    );
    expect(result.unexpected).toEqual([]);
    expect(result.acked).toBeGreaterThan(100);
    expect(result.inFlightAtKill).toBeGreaterThan(0); // the kill really came mid-burst

    const second = await startBerth(dataDir, port, 'warn');
    const list = await second.request('GET', CTR);
    expect(list.status).toBe(200);
    const stored = new Map<string, any>(list.body.items.map((o: any) => [o.metadata.name, o]));
    expect(violations(result.known, stored)).toEqual([]);

    // resourceVersions keep increasing: above every acknowledged one and the list's
    const maxAcked = Math.max(...ackedRvs);
    const listRv = Number(list.body.metadata.resourceVersion);
    expect(listRv).toBeGreaterThanOrEqual(maxAcked);
    const after = await second.request('POST', CTR, containerBody('after-restart', 'after'));
    expect(after.status).toBe(201);
    expect(Number(after.body.metadata.resourceVersion)).toBeGreaterThan(listRv);
    const patched = await second.request('PATCH', `${CTR}/after-restart`, { metadata: { labels: { x: 'y' } } }, { contentType: MERGE });
    expect(Number(patched.body.metadata.resourceVersion)).toBeGreaterThan(Number(after.body.metadata.resourceVersion));

    expect(await second.stop('SIGTERM')).toBe(0);
    second.closeClient();
    const db = new Database(join(dataDir, 'berth.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    } finally {
      db.close();
    }
  });

  it('starts to /readyz quickly, and a second start reuses the CA, token and kubeconfig and keeps the data', async () => {
    const dataDir = await tempDataDir();
    const port = await freePort();
    const first = await startBerth(dataDir, port);
    const created = await first.request('POST', CTR, containerBody('kept', 'kept'));
    expect(created.status).toBe(201);
    const files = async () => ({
      ca: await readFile(join(dataDir, 'pki/ca.crt'), 'utf8'),
      token: await readFile(join(dataDir, 'pki/admin.token'), 'utf8'),
      kubeconfig: await readFile(join(dataDir, 'kubeconfig.yaml'), 'utf8'),
    });
    const before = await files();
    expect(JSON.parse(before.kubeconfig).clusters[0].cluster).toMatchObject({
      server: `https://127.0.0.1:${port}`,
      extensions: [{ name: 'berth.dev/local-socket', extension: { path: join(dataDir, 'api.sock') } }],
    });
    expect(await first.stop('SIGTERM')).toBe(0);
    first.closeClient();

    const second = await startBerth(dataDir, port);
    console.log(`berth server ready in ${first.readyMs.toFixed(0)} ms (first start, new PKI), ${second.readyMs.toFixed(0)} ms (second start)`);
    expect(first.readyMs).toBeLessThan(5_000);
    expect(second.readyMs).toBeLessThan(5_000);
    expect(await files()).toEqual(before);
    const kept = await second.request('GET', `${CTR}/kept`);
    expect(kept.status).toBe(200);
    expect(kept.body.metadata.uid).toBe(created.body.metadata.uid);
    expect(kept.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion);
    expect(await second.stop('SIGTERM')).toBe(0);
    second.closeClient();
  });
});

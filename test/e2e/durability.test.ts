/**
 * The real program as users run it (`node bin/berth.js server`), killed with
 * SIGKILL in the middle of a burst of writes: every acknowledged write survives
 * the restart, resourceVersions keep increasing, and the SQLite file is intact.
 * Also: start-up time, and a second start reusing the PKI, kubeconfig and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const BERTH = join(REPO, 'bin/berth.js');
const CTR = '/apis/berth.dev/v1/namespaces/default/containers';
const SEQ = 'test.berth.dev/seq';
const MERGE = 'application/merge-patch+json';

const CLIENTS = 16;
const BURST_MS = 1_000;
const BURST_MAX_ACKED = 4_000;
const READY_TIMEOUT_MS = 15_000;

// Everything a test starts, cleaned up even when it fails.
const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children) await stopChild(child, 'SIGKILL');
  children.clear();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-'));
  dirs.push(dir);
  return dir;
}

/** A port nothing listens on right now (listen on 0, close). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok, fail) => srv.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

/** Signals the child (if still running) and waits for it to exit; resolves to its exit code or signal. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number | string> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
    child.kill(signal);
    await exited;
  }
  children.delete(child);
  return child.exitCode ?? child.signalCode!;
}

interface Berth {
  readonly child: ChildProcess;
  readonly url: string;
  /** Milliseconds from spawn to the first `/readyz` 200. */
  readonly readyMs: number;
  readonly client: Client;
  /** What the server wrote to stderr so far (the tail). */
  stderr(): string;
}

/** `berth server --data-dir dataDir --listen 127.0.0.1:port`, once `/readyz` answers 200. */
async function startBerth(dataDir: string, port: number, logLevel?: string): Promise<Berth> {
  const started = performance.now();
  const args = [BERTH, 'server', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--runtime', 'none', '--no-controllers', ...(logLevel ? ['--log-level', logLevel] : [])];
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-64_000);
  });
  const exited = new Promise<never>((_, fail) =>
    child.once('exit', (code, sig) => fail(new Error(`berth server exited (${code ?? sig}) before it was ready:\n${stderr}`))),
  );
  exited.catch(() => {});

  const url = await Promise.race([
    exited,
    new Promise<string>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`no "serving on" line within ${READY_TIMEOUT_MS} ms:\n${stderr}`)), READY_TIMEOUT_MS);
      const look = () => {
        const m = /serving on (https:\/\/\S+)/.exec(stderr);
        if (!m) return;
        clearTimeout(t);
        child.stderr!.off('data', look);
        ok(m[1]!);
      };
      child.stderr!.on('data', look);
      look();
    }),
  ]);
  expect(url).toBe(`https://127.0.0.1:${port}`);
  const client = await Client.open(url, dataDir);
  const deadline = started + READY_TIMEOUT_MS;
  for (;;) {
    const res = await Promise.race([exited, client.request('GET', '/readyz', undefined, { token: false }).catch((e: Error) => e)]);
    if (!(res instanceof Error) && res.status === 200) break;
    if (performance.now() > deadline) throw new Error(`/readyz not 200 within ${READY_TIMEOUT_MS} ms: ${res instanceof Error ? res.message : res.status}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, url, readyMs: performance.now() - started, client, stderr: () => stderr };
}

interface Reply {
  readonly status: number;
  readonly body: any;
}

/** HTTPS to the server with the CA and admin token from its data directory. */
class Client {
  private constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly agent: https.Agent,
  ) {}

  static async open(url: string, dataDir: string): Promise<Client> {
    const ca = await readFile(join(dataDir, 'pki/ca.crt'), 'utf8');
    const token = (await readFile(join(dataDir, 'pki/admin.token'), 'utf8')).trim();
    return new Client(url, token, new https.Agent({ ca, keepAlive: true, maxSockets: CLIENTS }));
  }

  request(method: string, path: string, body?: unknown, opts: { contentType?: string; token?: boolean } = {}): Promise<Reply> {
    return new Promise((ok, fail) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string> = {};
      if (opts.token !== false) headers.authorization = `Bearer ${this.token}`;
      if (payload) {
        headers['content-type'] = opts.contentType ?? 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const req = https.request(new URL(path, this.url), { method, headers, agent: this.agent, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('response aborted')));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* plain text */
          }
          ok({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', fail);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
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
async function burst(client: Client, kill: () => void): Promise<BurstResult> {
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
    const result = await burst(first.client, () => first.child.kill('SIGKILL'));
    expect(await stopChild(first.child, 'SIGKILL')).toBe('SIGKILL');
    first.client.close();
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
    const list = await second.client.request('GET', CTR);
    expect(list.status).toBe(200);
    const stored = new Map<string, any>(list.body.items.map((o: any) => [o.metadata.name, o]));
    expect(violations(result.known, stored)).toEqual([]);

    // resourceVersions keep increasing: above every acknowledged one and the list's
    const maxAcked = Math.max(...ackedRvs);
    const listRv = Number(list.body.metadata.resourceVersion);
    expect(listRv).toBeGreaterThanOrEqual(maxAcked);
    const after = await second.client.request('POST', CTR, containerBody('after-restart', 'after'));
    expect(after.status).toBe(201);
    expect(Number(after.body.metadata.resourceVersion)).toBeGreaterThan(listRv);
    const patched = await second.client.request('PATCH', `${CTR}/after-restart`, { metadata: { labels: { x: 'y' } } }, { contentType: MERGE });
    expect(Number(patched.body.metadata.resourceVersion)).toBeGreaterThan(Number(after.body.metadata.resourceVersion));

    expect(await stopChild(second.child, 'SIGTERM')).toBe(0);
    second.client.close();
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
    const created = await first.client.request('POST', CTR, containerBody('kept', 'kept'));
    expect(created.status).toBe(201);
    const files = async () => ({
      ca: await readFile(join(dataDir, 'pki/ca.crt'), 'utf8'),
      token: await readFile(join(dataDir, 'pki/admin.token'), 'utf8'),
      kubeconfig: await readFile(join(dataDir, 'kubeconfig.yaml'), 'utf8'),
    });
    const before = await files();
    expect(before.kubeconfig).toContain(`server: https://127.0.0.1:${port}`);
    expect(await stopChild(first.child, 'SIGTERM')).toBe(0);
    first.client.close();

    const second = await startBerth(dataDir, port);
    console.log(`berth server ready in ${first.readyMs.toFixed(0)} ms (first start, new PKI), ${second.readyMs.toFixed(0)} ms (second start)`);
    expect(first.readyMs).toBeLessThan(5_000);
    expect(second.readyMs).toBeLessThan(5_000);
    expect(await files()).toEqual(before);
    const kept = await second.client.request('GET', `${CTR}/kept`);
    expect(kept.status).toBe(200);
    expect(kept.body.metadata.uid).toBe(created.body.metadata.uid);
    expect(kept.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion);
    expect(await stopChild(second.child, 'SIGTERM')).toBe(0);
    second.client.close();
  });
});

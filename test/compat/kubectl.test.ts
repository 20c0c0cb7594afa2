/**
 * API compatibility, proven with the real `kubectl` against a real berth server
 * (test/harness): exit codes, JSON output and kubectl's own messages. Table output is
 * checked by header words and row contents, not golden files. Each area works in its
 * own namespace so that tables stay predictable; one control plane serves the file.
 * See /work/shared/notes/kubectl.md (§ numbers below) for what kubectl sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { startControlPlane, type ControlPlane, type KubectlResult } from '../harness/control-plane.ts';
import { container } from '../api/fixtures.ts';

const GROUP_VERSION = 'berth.dev/v1';

/** The first `name` on PATH, resolved through symlinks; undefined when absent. */
function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return realpathSync(p);
  }
  return undefined;
}

const DEFAULT_KUBECTL = findOnPath('kubectl');
/** Versioned binaries sit beside the installed kubectl (kubectl.md, top). */
const KUBECTL_DIR = DEFAULT_KUBECTL ? dirname(DEFAULT_KUBECTL) : undefined;

interface KubectlVersion {
  readonly label: string;
  /** Absent: not installed. */
  readonly bin: string | undefined;
}

const VERSIONS: readonly KubectlVersion[] = [
  { label: 'default', bin: DEFAULT_KUBECTL },
  ...['1.27', '1.33'].map((v) => {
    const p = KUBECTL_DIR ? join(KUBECTL_DIR, `kubectl.${v}`) : undefined;
    return { label: v, bin: p && existsSync(p) ? p : undefined };
  }),
];

let cp: ControlPlane;
let tmp: string;

beforeAll(async () => {
  cp = await startControlPlane();
  tmp = await mkdtemp(join(tmpdir(), 'berth-compat-'));
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// helpers

interface RunOptions {
  readonly stdin?: string;
  readonly bin?: string | undefined;
  readonly timeoutMs?: number;
}

/** Runs kubectl (default binary unless `bin`) with the control plane's kubeconfig. */
const kubectl = (args: readonly string[], o: RunOptions = {}): Promise<KubectlResult> =>
  cp.kubectl(args, { ...(o.stdin !== undefined ? { stdin: o.stdin } : {}), ...(o.bin ? { bin: o.bin } : {}), ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });

/** Fails with kubectl's output when the exit code is not `code`, so failures explain themselves. */
function expectExit(r: KubectlResult, code: number): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code });
}

const ctrPath = (ns: string, name?: string) => `/apis/berth.dev/v1/namespaces/${ns}/containers${name ? `/${name}` : ''}`;
const svcPath = (ns: string, name?: string) => `/apis/berth.dev/v1/namespaces/${ns}/services${name ? `/${name}` : ''}`;

async function createNamespace(name: string): Promise<void> {
  const res = await cp.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  expect(res.status, res.text).toBe(201);
}

/** Creates an object through the API and returns it. */
async function post(path: string, body: unknown): Promise<any> {
  const res = await cp.request('POST', path, { body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await cp.request('GET', path);
  return { status: res.status, body: res.body };
}

async function mergePatch(path: string, patch: unknown): Promise<any> {
  const res = await cp.request('PATCH', path, { body: patch, contentType: 'application/merge-patch+json' });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** A Container manifest as users write it (YAML). */
function ctrManifest(name: string, o: { image?: string; labels?: Record<string, string>; namespace?: string; spec?: Record<string, unknown> } = {}): string {
  return toYaml({
    apiVersion: GROUP_VERSION,
    kind: 'Container',
    metadata: { name, ...(o.namespace ? { namespace: o.namespace } : {}), ...(o.labels ? { labels: o.labels } : {}) },
    spec: { image: o.image ?? 'nginx:1.25', ...(o.spec ?? {}) },
  });
}

/** Writes a file under the test's temp dir and returns its path. */
async function file(name: string, content: string): Promise<string> {
  const p = join(tmp, name);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
  return p;
}

const rfc3339 = (d = new Date()) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** Sets a True Ready condition (observedGeneration 1) through the status subresource, as a controller would. */
async function markReady(ns: string, name: string): Promise<void> {
  await mergePatch(`${ctrPath(ns, name)}/status`, {
    status: {
      observedGeneration: 1,
      conditions: [{ type: 'Ready', status: 'True', reason: 'Test', message: '', lastTransitionTime: rfc3339(), observedGeneration: 1 }],
    },
  });
}

/** Open watches of a resource, from the server's `apiserver_registered_watchers` gauge. */
async function openWatches(resource: string): Promise<number> {
  const res = await cp.request('GET', '/metrics');
  const line = res.text
    .split('\n')
    .find((l) => l.startsWith('apiserver_registered_watchers{') && l.includes(`resource="${resource}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A promise whose settlement can be checked synchronously. */
function track<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  void p.finally(() => (done = true));
  return { promise: p, settled: () => done };
}

/**
 * Runs a kubectl command that blocks on a watch (`wait`, `delete`), and resolves once the
 * server sees that watch open and the command has not finished, which proves it is waiting.
 */
async function startWaiting(args: readonly string[], resource: string, bin?: string): Promise<{ readonly done: Promise<KubectlResult> }> {
  const before = await openWatches(resource);
  const run = track(kubectl(args, { bin, timeoutMs: 60_000 }));
  await vi.waitFor(
    async () => {
      if (run.settled()) throw new Error(`kubectl ${args.join(' ')} ended before it waited: ${JSON.stringify(await run.promise)}`);
      expect(await openWatches(resource)).toBeGreaterThan(before);
    },
    { timeout: 20_000, interval: 50 },
  );
  expect(run.settled()).toBe(false);
  // Wrapped: an async function returning a bare promise would wait for it.
  return { done: run.promise };
}

/** Header words and rows (cells split on runs of spaces) of kubectl's table output. */
function table(stdout: string): { header: string[]; rows: string[][] } {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  return { header: lines[0]?.trim().split(/\s+/) ?? [], rows: lines.slice(1).map((l) => l.trim().split(/\s+/)) };
}

const rowOf = (rows: string[][], name: string) => rows.find((r) => r[0] === name);

/** What the API server fills into every Container's spec from openapi.yaml's `default`s. */
const CONTAINER_DEFAULTS = {
  state: 'Running',
  restartPolicy: 'Always',
  imagePullPolicy: 'IfNotPresent',
  tty: false,
  stdin: false,
  autoRemove: false,
  stopSignal: 'SIGTERM',
  stopGracePeriodSeconds: 10,
};

// ---------------------------------------------------------------------------------------------

describe.skipIf(!DEFAULT_KUBECTL)('kubectl against berth', () => {
  describe('apply (client-side)', () => {
    const ns = 'csa';
    beforeAll(() => createNamespace(ns));

    it('creates from stdin, configures a change from a file, and leaves an unchanged object alone', async () => {
      const created = await kubectl(['apply', '-n', ns, '-f', '-'], { stdin: ctrManifest('web', { labels: { app: 'x' }, spec: { command: ['sleep', '3600'] } }) });
      expectExit(created, 0);
      expect(created.stdout.trim()).toBe('container.berth.dev/web created');
      const live = (await get(ctrPath(ns, 'web'))).body;
      expect(live.spec).toEqual({ ...CONTAINER_DEFAULTS, image: 'nginx:1.25', command: ['sleep', '3600'] }); // the schema's defaults stored, as kube-apiserver
      expect(live.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toContain('"image":"nginx:1.25"');

      // The new manifest drops `command`: kubectl sends it as null and the server must remove it.
      const path = await file('csa/web.yaml', ctrManifest('web', { image: 'nginx:1.27', labels: { app: 'x' } }));
      const configured = await kubectl(['apply', '-n', ns, '-f', path]);
      expectExit(configured, 0);
      expect(configured.stdout.trim()).toBe('container.berth.dev/web configured');
      const after = (await get(ctrPath(ns, 'web'))).body;
      expect(after.spec).toEqual({ ...CONTAINER_DEFAULTS, image: 'nginx:1.27' });
      expect(after.metadata.generation).toBe(2);

      const unchanged = await kubectl(['apply', '-n', ns, '-f', path]);
      expectExit(unchanged, 0);
      expect(unchanged.stdout.trim()).toBe('container.berth.dev/web unchanged');
      expect((await get(ctrPath(ns, 'web'))).body.metadata.resourceVersion).toBe(after.metadata.resourceVersion);
    });

    it('applies a cluster-scoped Node', async () => {
      const node = toYaml({ apiVersion: GROUP_VERSION, kind: 'Node', metadata: { name: 'csa-node' }, spec: { role: 'worker' } });
      const r = await kubectl(['apply', '-f', '-'], { stdin: node });
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('node.berth.dev/csa-node created');
      expect((await get('/apis/berth.dev/v1/nodes/csa-node')).body.metadata.namespace).toBeUndefined();
    });
  });

  describe('apply --server-side', () => {
    const ns = 'ssa';
    beforeAll(() => createNamespace(ns));

    it('creates, refuses a conflicting manager, and forces with --force-conflicts', async () => {
      const created = await kubectl(['apply', '--server-side', '-n', ns, '-f', '-'], { stdin: ctrManifest('ssa', { labels: { app: 'x' } }) });
      expectExit(created, 0);
      expect(created.stdout.trim()).toBe('container.berth.dev/ssa serverside-applied');

      const other = ctrManifest('ssa', { image: 'nginx:1.26', labels: { app: 'x' } });
      const conflict = await kubectl(['apply', '--server-side', '--field-manager=other', '-n', ns, '-f', '-'], { stdin: other });
      expectExit(conflict, 1);
      expect(conflict.stderr).toContain('error: Apply failed with 1 conflict: conflict with "kubectl": .spec.image');
      expect(conflict.stderr).toContain('--force-conflicts');
      expect((await get(ctrPath(ns, 'ssa'))).body.spec.image).toBe('nginx:1.25');

      const forced = await kubectl(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-n', ns, '-f', '-'], { stdin: other });
      expectExit(forced, 0);
      expect(forced.stdout.trim()).toBe('container.berth.dev/ssa serverside-applied');
      const live = (await get(ctrPath(ns, 'ssa'))).body;
      expect(live.spec.image).toBe('nginx:1.26');
      const owners = (live.metadata.managedFields as { manager: string; fieldsV1: any }[]).filter((m) => m.fieldsV1?.['f:spec']?.['f:image']).map((m) => m.manager);
      expect(owners).toEqual(['other']);
    });

    it('switches an object from client-side to server-side apply and back (kubectl.md §6.7)', async () => {
      expectExit(await kubectl(['apply', '-n', ns, '-f', '-'], { stdin: ctrManifest('switch', { labels: { app: 'x' } }) }), 0);

      const ssa = await kubectl(['apply', '--server-side', '-n', ns, '-f', '-'], { stdin: ctrManifest('switch', { image: 'nginx:1.27', labels: { app: 'x' } }) });
      expectExit(ssa, 0);
      expect(ssa.stdout.trim()).toBe('container.berth.dev/switch serverside-applied');
      expect((await get(ctrPath(ns, 'switch'))).body.spec.image).toBe('nginx:1.27');

      const csa = await kubectl(['apply', '-n', ns, '-f', '-'], { stdin: ctrManifest('switch', { image: 'nginx:1.28', labels: { app: 'x' } }) });
      expectExit(csa, 0);
      expect(csa.stdout.trim()).toBe('container.berth.dev/switch configured');
      expect((await get(ctrPath(ns, 'switch'))).body.spec.image).toBe('nginx:1.28');
    });
  });

  describe('diff', () => {
    const ns = 'diff';
    beforeAll(() => createNamespace(ns));

    it('exits 0 without a difference, 1 with one, and changes nothing on the server', async () => {
      const path = await file('diff/web.yaml', ctrManifest('web', { labels: { app: 'x' } }));
      expectExit(await kubectl(['apply', '-n', ns, '-f', path]), 0);
      const before = (await get(ctrPath(ns, 'web'))).body;

      const same = await kubectl(['diff', '-n', ns, '-f', path]);
      expectExit(same, 0);
      expect(same.stdout).toBe('');

      const changed = await kubectl(['diff', '-n', ns, '-f', '-'], { stdin: ctrManifest('web', { image: 'nginx:1.27', labels: { app: 'x' } }) });
      expectExit(changed, 1);
      expect(changed.stdout).toMatch(/^-\s+image: nginx:1\.25$/m);
      expect(changed.stdout).toMatch(/^\+\s+image: nginx:1\.27$/m);

      const fresh = await kubectl(['diff', '-n', ns, '-f', '-'], { stdin: ctrManifest('new', { image: 'nginx:1.27' }) });
      expectExit(fresh, 1);
      expect(fresh.stdout).toMatch(/^\+\s+name: new$/m);

      // dryRun=All: nothing persisted, no new revision.
      const after = (await get(ctrPath(ns, 'web'))).body;
      expect(after.spec.image).toBe('nginx:1.25');
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
      expect((await get(ctrPath(ns, 'new'))).status).toBe(404);
    });
  });

  describe('get', () => {
    const ns = 'get';
    beforeAll(async () => {
      await createNamespace(ns);
      await post(ctrPath(ns), container('web', { labels: { app: 'x' }, spec: { image: 'nginx:1.25' } }));
      await post(ctrPath(ns), container('db', { labels: { app: 'y' }, spec: { image: 'postgres:16' } }));
      await mergePatch(`${ctrPath(ns, 'web')}/status`, { status: { phase: 'Running', nodeName: 'get-node', ip: '10.89.0.7', restartCount: 2 } });
      await post(svcPath(ns), { apiVersion: GROUP_VERSION, kind: 'Service', metadata: { name: 'api' }, spec: { replicas: 2, template: { spec: { image: 'busybox' } } } });
      await post('/apis/berth.dev/v1/nodes', { apiVersion: GROUP_VERSION, kind: 'Node', metadata: { name: 'get-node' }, spec: { role: 'manager' } });
    });

    it('prints the server-side table, with -o wide columns, for every way of naming the kind', async () => {
      const [ctr, containers, single, wide] = await Promise.all([
        kubectl(['get', 'ctr', '-n', ns]),
        kubectl(['get', 'containers', '-n', ns]),
        kubectl(['get', 'container', 'web', '-n', ns]),
        kubectl(['get', 'ctr', '-o', 'wide', '-n', ns]),
      ]);
      for (const r of [ctr, containers, single, wide]) expectExit(r, 0);

      const t = table(ctr.stdout);
      expect(t.header).toEqual(['NAME', 'IMAGE', 'STATE', 'RESTARTS', 'NODE', 'AGE']);
      expect(t.rows.map((r) => r[0])).toEqual(['db', 'web']);
      expect(rowOf(t.rows, 'web')).toEqual(['web', 'nginx:1.25', 'Running', '2', 'get-node', expect.stringMatching(/^\d+s$/)]);
      expect(rowOf(t.rows, 'db')?.slice(0, 5)).toEqual(['db', 'postgres:16', 'Pending', '0', '<none>']);
      expect(table(containers.stdout).rows.map((r) => r.slice(0, 5))).toEqual(t.rows.map((r) => r.slice(0, 5)));
      expect(table(single.stdout).rows.map((r) => r[0])).toEqual(['web']);

      const w = table(wide.stdout);
      expect(w.header).toEqual(['NAME', 'IMAGE', 'STATE', 'RESTARTS', 'NODE', 'AGE', 'DESIRED', 'IP', 'PORTS', 'CONTAINER-ID']);
      expect(rowOf(w.rows, 'web')?.slice(6)).toEqual(['Running', '10.89.0.7', '<none>', '<none>']);
    });

    it('prints yaml, json, name and jsonpath from the objects', async () => {
      const [yaml, json, name, jsonpath] = await Promise.all([
        kubectl(['get', 'container', 'web', '-n', ns, '-o', 'yaml']),
        kubectl(['get', 'ctr', '-n', ns, '-o', 'json']),
        kubectl(['get', 'ctr', '-n', ns, '-o', 'name']),
        kubectl(['get', 'ctr', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}']),
      ]);
      for (const r of [yaml, json, name, jsonpath]) expectExit(r, 0);

      const obj = parseYaml(yaml.stdout);
      expect(obj).toMatchObject({ apiVersion: GROUP_VERSION, kind: 'Container', metadata: { name: 'web', namespace: ns, labels: { app: 'x' } }, spec: { image: 'nginx:1.25' }, status: { phase: 'Running' } });
      expect(obj.metadata.managedFields).toBeUndefined(); // hidden without --show-managed-fields

      const list = JSON.parse(json.stdout);
      expect(list.kind).toBe('List');
      expect(list.items.map((i: any) => [i.kind, i.metadata.name])).toEqual([
        ['Container', 'db'],
        ['Container', 'web'],
      ]);
      expect(name.stdout).toBe('container.berth.dev/db\ncontainer.berth.dev/web\n');
      expect(jsonpath.stdout).toBe('db web');
    });

    it('lists across namespaces, by label, by category, and cluster-scoped nodes', async () => {
      const [all, labelled, allCat, berthCat, nodes, namespaces] = await Promise.all([
        kubectl(['get', 'ctr', '-A']),
        kubectl(['get', 'ctr', '-n', ns, '-l', 'app=x']),
        kubectl(['get', 'all', '-n', ns]),
        kubectl(['get', 'berth', '-n', ns]),
        kubectl(['get', 'nodes']),
        kubectl(['get', 'ns']),
      ]);
      for (const r of [all, labelled, allCat, berthCat, nodes, namespaces]) expectExit(r, 0);

      const a = table(all.stdout);
      expect(a.header.slice(0, 3)).toEqual(['NAMESPACE', 'NAME', 'IMAGE']);
      expect(a.rows.filter((r) => r[0] === ns).map((r) => r[1])).toEqual(['db', 'web']);

      expect(table(labelled.stdout).rows.map((r) => r[0])).toEqual(['web']);

      // Category `all` has containers and services; `berth` adds images, volumes, networks, nodes.
      expect(allCat.stdout).toMatch(/^container\.berth\.dev\/db\s/m);
      expect(allCat.stdout).toMatch(/^container\.berth\.dev\/web\s/m);
      expect(allCat.stdout).toMatch(/^service\.berth\.dev\/api\s+Replicated\s+0\/2\s+busybox\s/m);
      expect(allCat.stdout).not.toContain('node.berth.dev/');
      expect(berthCat.stdout).toMatch(/^container\.berth\.dev\/web\s/m);
      expect(berthCat.stdout).toMatch(/^node\.berth\.dev\/get-node\s/m);

      const n = table(nodes.stdout);
      expect(n.header).toEqual(['NAME', 'STATUS', 'ROLE', 'AVAILABILITY', 'AGE']);
      expect(rowOf(n.rows, 'get-node')?.slice(0, 4)).toEqual(['get-node', 'Unknown', 'manager', 'Active']);

      const s = table(namespaces.stdout);
      expect(s.header).toEqual(['NAME', 'STATUS', 'AGE']);
      for (const name of ['default', 'berth-system', ns]) expect(rowOf(s.rows, name)?.[1]).toBe('Active');
    });

    it('reports a missing object with the NotFound message', async () => {
      const r = await kubectl(['get', 'ctr', 'nope', '-n', ns]);
      expectExit(r, 1);
      expect(r.stderr.trim()).toBe('Error from server (NotFound): containers.berth.dev "nope" not found');
    });
  });

  describe('get --watch', () => {
    const ns = 'watch';
    beforeAll(async () => {
      await createNamespace(ns);
      await post(ctrPath(ns), container('w1', { spec: { image: 'nginx:1.25' } }));
    });

    it('prints a row for each change made through the API', async () => {
      const before = await openWatches('containers');
      const child: ChildProcess = spawn(
        DEFAULT_KUBECTL!,
        ['--kubeconfig', cp.server.kubeconfigPath, '--cache-dir', join(tmp, 'watch-cache'), 'get', 'ctr', '-n', ns, '-w', '--output-watch-events'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      onTestFinished(async () => {
        child.kill('SIGTERM');
        await exited;
      });
      let out = '';
      let err = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const rows = () => table(out).rows;
      const waitRow = (event: string, name: string, image: string) =>
        vi.waitFor(() => expect(rows(), `stdout:\n${out}\nstderr:\n${err}`).toContainEqual([event, name, image, expect.anything(), expect.anything(), expect.anything(), expect.anything()]), {
          timeout: 15_000,
          interval: 50,
        });

      await waitRow('ADDED', 'w1', 'nginx:1.25');
      expect(table(out).header).toEqual(['EVENT', 'NAME', 'IMAGE', 'STATE', 'RESTARTS', 'NODE', 'AGE']);
      await vi.waitFor(async () => expect(await openWatches('containers')).toBeGreaterThan(before), { timeout: 10_000, interval: 50 });

      await mergePatch(ctrPath(ns, 'w1'), { spec: { image: 'nginx:1.27' } });
      await waitRow('MODIFIED', 'w1', 'nginx:1.27');
      await post(ctrPath(ns), container('w2', { spec: { image: 'redis:7' } }));
      await waitRow('ADDED', 'w2', 'redis:7');
      expect((await cp.request('DELETE', ctrPath(ns, 'w2'))).status).toBe(200);
      await waitRow('DELETED', 'w2', 'redis:7');
      // Each event once: no duplicate rows from a list/watch gap (kubectl.md §8.6).
      expect(rows().filter((r) => r[0] === 'ADDED' && r[1] === 'w1')).toHaveLength(1);

      child.kill('SIGTERM');
      await exited;
      await vi.waitFor(async () => expect(await openWatches('containers')).toBe(before), { timeout: 10_000, interval: 50 });
    });
  });

  describe('wait', () => {
    const ns = 'wait';
    beforeAll(() => createNamespace(ns));

    it('waits for condition=Ready until the status subresource reports it', async () => {
      await post(ctrPath(ns), container('ready'));
      const waiting = await startWaiting(['wait', '--for=condition=Ready', 'ctr/ready', '-n', ns, '--timeout=60s'], 'containers');
      await markReady(ns, 'ready');
      const r = await waiting.done;
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('container.berth.dev/ready condition met');
    });

    it('times out when the condition is never met', async () => {
      await post(ctrPath(ns), container('never'));
      const r = await kubectl(['wait', '--for=condition=Ready', 'ctr/never', '-n', ns, '--timeout=1s']);
      expectExit(r, 1);
      expect(r.stderr.trim()).toBe('error: timed out waiting for the condition on containers/never');
    });

    it('waits for delete until a finalizer is removed', async () => {
      await post(ctrPath(ns), container('held', { metadata: { finalizers: ['test.berth.dev/hold'] } }));
      expect((await cp.request('DELETE', ctrPath(ns, 'held'))).status).toBe(202);
      const waiting = await startWaiting(['wait', '--for=delete', 'ctr/held', '-n', ns, '--timeout=60s'], 'containers');
      expect((await get(ctrPath(ns, 'held'))).body.metadata.deletionTimestamp).toBeTruthy();
      await mergePatch(ctrPath(ns, 'held'), { metadata: { finalizers: null } });
      const r = await waiting.done;
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('container.berth.dev/held condition met');
      expect((await get(ctrPath(ns, 'held'))).status).toBe(404);
    });
  });

  describe('delete', () => {
    const ns = 'del';
    beforeAll(() => createNamespace(ns));

    it('deletes from a file, by name and by label', async () => {
      const path = await file('del/a.yaml', ctrManifest('a'));
      expectExit(await kubectl(['apply', '-n', ns, '-f', path]), 0);
      for (const name of ['b', 'l1', 'l2', 'keep']) {
        await post(ctrPath(ns), container(name, { labels: { app: name.startsWith('l') ? 'gone' : 'stay' } }));
      }

      const [byFile, byName] = await Promise.all([kubectl(['delete', '-n', ns, '-f', path]), kubectl(['delete', 'ctr', 'b', '-n', ns])]);
      expectExit(byFile, 0);
      expect(byFile.stdout.trim()).toBe('container.berth.dev "a" deleted');
      expectExit(byName, 0);
      expect(byName.stdout.trim()).toBe('container.berth.dev "b" deleted');

      const byLabel = await kubectl(['delete', 'ctr', '-l', 'app=gone', '-n', ns]);
      expectExit(byLabel, 0);
      expect(byLabel.stdout.trim().split('\n')).toEqual(['container.berth.dev "l1" deleted', 'container.berth.dev "l2" deleted']);

      const left = (await get(ctrPath(ns))).body.items.map((i: any) => i.metadata.name);
      expect(left).toEqual(['keep']);

      const missing = await kubectl(['delete', 'ctr', 'a', '-n', ns]);
      expectExit(missing, 1);
      expect(missing.stderr.trim()).toBe('Error from server (NotFound): containers.berth.dev "a" not found');
    });

    it('waits for finalizers before it returns', async () => {
      await post(ctrPath(ns), container('fin', { metadata: { finalizers: ['test.berth.dev/hold'] } }));
      const deleting = await startWaiting(['delete', 'ctr', 'fin', '-n', ns], 'containers');
      await mergePatch(ctrPath(ns, 'fin'), { metadata: { finalizers: null } });
      const r = await deleting.done;
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('container.berth.dev "fin" deleted');
      expect((await get(ctrPath(ns, 'fin'))).status).toBe(404);
    });

    /** A Service that owns `count` Containers, as the service controller would make them. */
    async function serviceWithTasks(name: string, count: number): Promise<void> {
      const svc = await post(svcPath(ns), { apiVersion: GROUP_VERSION, kind: 'Service', metadata: { name }, spec: { replicas: count, template: { spec: { image: 'busybox' } } } });
      for (let i = 1; i <= count; i++) {
        const ownerReferences = [{ apiVersion: GROUP_VERSION, kind: 'Service', name, uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }];
        await post(ctrPath(ns), container(`${name}-${i}`, { labels: { svc: name }, metadata: { ownerReferences } }));
      }
    }
    const tasksOf = async (name: string) => (await get(`${ctrPath(ns)}?labelSelector=svc%3D${name}`)).body.items as any[];

    it('--cascade=foreground removes the dependents before the owner', async () => {
      await serviceWithTasks('fg', 2);
      const r = await kubectl(['delete', 'bsvc', 'fg', '-n', ns, '--cascade=foreground']);
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('service.berth.dev "fg" deleted');
      // kubectl returned only once the owner was gone, which foreground deletion allows only after its dependents.
      expect((await get(svcPath(ns, 'fg'))).status).toBe(404);
      expect(await tasksOf('fg')).toEqual([]);
    });

    it('--cascade=orphan keeps the dependents and drops their owner reference', async () => {
      await serviceWithTasks('orph', 2);
      const r = await kubectl(['delete', 'bsvc', 'orph', '-n', ns, '--cascade=orphan']);
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('service.berth.dev "orph" deleted');
      expect((await get(svcPath(ns, 'orph'))).status).toBe(404);
      const tasks = await tasksOf('orph');
      expect(tasks.map((t) => t.metadata.name)).toEqual(['orph-1', 'orph-2']);
      for (const t of tasks) expect(t.metadata.ownerReferences).toBeUndefined();
    });
  });

  describe('describe', () => {
    const ns = 'desc';
    beforeAll(() => createNamespace(ns));

    it('prints the object and the Events that involve it', async () => {
      expectExit(await kubectl(['apply', '-n', ns, '-f', '-'], { stdin: ctrManifest('web', { labels: { app: 'x', tier: 'fe' } }) }), 0);
      const web = (await get(ctrPath(ns, 'web'))).body;
      const now = rfc3339();
      await post(`/api/v1/namespaces/${ns}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: 'web.started' },
        involvedObject: { apiVersion: GROUP_VERSION, kind: 'Container', name: 'web', namespace: ns, uid: web.metadata.uid },
        reason: 'Started',
        message: 'Started container web (image nginx:1.25)',
        type: 'Normal',
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'berth-agent' },
      });
      // An event about another object must not show up.
      await post(`/api/v1/namespaces/${ns}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: 'other.pulled' },
        involvedObject: { apiVersion: GROUP_VERSION, kind: 'Container', name: 'other', namespace: ns, uid: 'd3f5c2a4-0000-4000-8000-000000000000' },
        reason: 'Pulled',
        message: 'not about web',
        type: 'Normal',
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'berth-agent' },
      });

      const r = await kubectl(['describe', 'ctr', 'web', '-n', ns]);
      expectExit(r, 0);
      expect(r.stdout).toMatch(/^Name:\s+web$/m);
      expect(r.stdout).toMatch(/^Namespace:\s+desc$/m);
      expect(r.stdout).toMatch(/^Labels:\s+app=x\n\s+tier=fe$/m);
      expect(r.stdout).toMatch(/^API Version:\s+berth\.dev\/v1$/m);
      expect(r.stdout).toMatch(/^Kind:\s+Container$/m);
      expect(r.stdout).toMatch(/^ {2}Image:\s+nginx:1\.25$/m);
      expect(r.stdout).toMatch(/^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/m);
      expect(r.stdout).toMatch(/^\s+Normal\s+Started\s+\S+\s+berth-agent\s+Started container web \(image nginx:1\.25\)$/m);
      expect(r.stdout).not.toContain('not about web');
    });
  });

  describe('explain', () => {
    const schemas = (parseYaml(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as any).components.schemas;
    /** The first words of a description, which kubectl prints on one line. */
    const opening = (d: string) => d.split(/\s+/).slice(0, 6).join(' ');

    it('explains the kind, a field and a field recursively from OpenAPI v3', async () => {
      const [kind, spec, env] = await Promise.all([
        kubectl(['explain', 'containers']),
        kubectl(['explain', 'ctr.spec']),
        kubectl(['explain', 'ctr.spec.env', '--recursive']),
      ]);
      for (const r of [kind, spec, env]) {
        expectExit(r, 0);
        expect(r.stdout).toMatch(/^GROUP:\s+berth\.dev$/m);
        expect(r.stdout).toMatch(/^KIND:\s+Container$/m);
        expect(r.stdout).toMatch(/^VERSION:\s+v1$/m);
      }
      expect(kind.stdout).toContain(opening(schemas.Container.description));
      expect(kind.stdout).toMatch(/^ {2}spec\t<ContainerSpec> -required-$/m);
      expect(kind.stdout).toMatch(/^ {2}status\t<ContainerStatus>$/m);

      expect(spec.stdout).toMatch(/^FIELD: spec <ContainerSpec>$/m);
      expect(spec.stdout).toContain(opening(schemas.ContainerSpec.description));
      expect(spec.stdout).toMatch(/^ {2}image\t<string> -required-$/m);
      expect(spec.stdout).toMatch(/^ {2}restartPolicy\t<string>$/m);
      expect(spec.stdout).toMatch(/^ {2}env\t<\[\]EnvVar>$/m);

      expect(env.stdout).toMatch(/^FIELD: env <\[\]EnvVar>$/m);
      expect(env.stdout).toMatch(/^ {2}name\t<string> -required-$/m);
      expect(env.stdout).toMatch(/^ {2}value\t<string>$/m);
    });
  });

  describe('discovery commands', () => {
    it('lists resources, API versions and the server version', async () => {
      const [resources, names, versions, version] = await Promise.all([
        kubectl(['api-resources']),
        kubectl(['api-resources', '--api-group=berth.dev', '-o', 'name']),
        kubectl(['api-versions']),
        kubectl(['version']),
      ]);
      for (const r of [resources, names, versions, version]) expectExit(r, 0);

      const t = table(resources.stdout);
      expect(t.header).toEqual(['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND']);
      expect(resources.stdout).toMatch(/^containers\s+ctr\s+berth\.dev\/v1\s+true\s+Container$/m);
      expect(resources.stdout).toMatch(/^services\s+bsvc\s+berth\.dev\/v1\s+true\s+Service$/m);
      expect(resources.stdout).toMatch(/^nodes\s+no\s+berth\.dev\/v1\s+false\s+Node$/m);
      expect(resources.stdout).toMatch(/^namespaces\s+ns\s+v1\s+false\s+Namespace$/m);
      expect(resources.stdout).toMatch(/^leases\s+coordination\.k8s\.io\/v1\s+true\s+Lease$/m);
      expect(resources.stdout).not.toContain('containers/status');

      expect(names.stdout.trim().split('\n').sort()).toEqual(
        ['containers', 'images', 'networks', 'nodes', 'services', 'volumes'].map((p) => `${p}.berth.dev`),
      );
      expect(versions.stdout.trim().split('\n').sort()).toEqual(['berth.dev/v1', 'coordination.k8s.io/v1', 'v1']);

      const served = (await get('/version')).body;
      expect(version.stdout).toMatch(new RegExp(`^Server Version: ${served.gitVersion.replace(/\./g, '\\.')}$`, 'm'));
    });
  });

  describe('label, annotate, patch', () => {
    const ns = 'edit';
    beforeAll(async () => {
      await createNamespace(ns);
      await post(ctrPath(ns), container('web', { labels: { app: 'x' } }));
    });

    it('labels and annotates with merge patches', async () => {
      const label = await kubectl(['label', 'ctr', 'web', 'tier=be', '-n', ns]);
      expectExit(label, 0);
      expect(label.stdout.trim()).toBe('container.berth.dev/web labeled');
      const annotate = await kubectl(['annotate', 'ctr', 'web', 'note=hi', '-n', ns]);
      expectExit(annotate, 0);
      expect(annotate.stdout.trim()).toBe('container.berth.dev/web annotated');
      const live = (await get(ctrPath(ns, 'web'))).body;
      expect(live.metadata.labels).toEqual({ app: 'x', tier: 'be' });
      expect(live.metadata.annotations).toEqual({ note: 'hi' });

      const relabel = await kubectl(['label', 'ctr', 'web', 'tier-', '-n', ns]);
      expectExit(relabel, 0);
      expect(relabel.stdout.trim()).toBe('container.berth.dev/web unlabeled');
      expect((await get(ctrPath(ns, 'web'))).body.metadata.labels).toEqual({ app: 'x' });
    });

    it('patches with --type=merge and --type=json, and refuses a strategic merge patch with 415', async () => {
      const merge = await kubectl(['patch', 'ctr', 'web', '-n', ns, '--type=merge', '-p', '{"spec":{"state":"Paused"}}']);
      expectExit(merge, 0);
      expect(merge.stdout.trim()).toBe('container.berth.dev/web patched');
      const json = await kubectl(['patch', 'ctr', 'web', '-n', ns, '--type=json', '-p', '[{"op":"replace","path":"/spec/image","value":"nginx:1.29"}]']);
      expectExit(json, 0);
      expect(json.stdout.trim()).toBe('container.berth.dev/web patched');
      const live = (await get(ctrPath(ns, 'web'))).body;
      expect(live.spec).toMatchObject({ state: 'Paused', image: 'nginx:1.29' });

      const smp = await kubectl(['patch', 'ctr', 'web', '-n', ns, '-p', '{"spec":{"state":"Running"}}']);
      expectExit(smp, 1);
      expect(smp.stderr.trim()).toBe(
        'error: application/strategic-merge-patch+json is not supported by berth.dev/v1, Kind=Container: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      );
      expect((await get(ctrPath(ns, 'web'))).body.metadata.resourceVersion).toBe(live.metadata.resourceVersion);
    });
  });

  describe('apply --prune', () => {
    const ns = 'prune';
    beforeAll(() => createNamespace(ns));

    it('prunes an applied object removed from the directory, and nothing else', async () => {
      const dir = join(tmp, 'prune');
      await file('prune/a.yaml', ctrManifest('a', { labels: { app: 'pr' } }));
      const old = await file('prune/old.yaml', ctrManifest('old', { labels: { app: 'pr' } }));
      // Same label but never applied (no last-applied annotation): kubectl must not prune it.
      await post(ctrPath(ns), container('manual', { labels: { app: 'pr' } }));
      const args = ['apply', '--prune', '-l', 'app=pr', '--prune-allowlist=berth.dev/v1/Container', '-n', ns, '-f', dir];

      const first = await kubectl(args);
      expectExit(first, 0);
      expect(first.stdout.trim().split('\n').sort()).toEqual(['container.berth.dev/a created', 'container.berth.dev/old created']);

      await unlink(old);
      const second = await kubectl(args);
      expectExit(second, 0);
      expect(second.stdout.trim().split('\n').sort()).toEqual(['container.berth.dev/a unchanged', 'container.berth.dev/old pruned']);
      const left = (await get(ctrPath(ns))).body.items.map((i: any) => i.metadata.name);
      expect(left).toEqual(['a', 'manual']);
    });
  });

  describe('errors', () => {
    const ns = 'err';
    beforeAll(() => createNamespace(ns));

    it('prints one line per cause of a 422 and stores nothing', async () => {
      const bad = toYaml({ apiVersion: GROUP_VERSION, kind: 'Container', metadata: { name: 'bad' }, spec: { restartPolicy: 'Sometimes' } });
      for (const verb of ['apply', 'create']) {
        const r = await kubectl([verb, '-n', ns, '-f', '-'], { stdin: bad });
        expectExit(r, 1);
        const lines = r.stderr.trim().split('\n');
        expect(lines[0]).toMatch(/^The Container "bad" is invalid:\s*$/);
        expect(lines.slice(1)).toEqual([
          '* spec.image: Required value',
          '* spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ]);
      }
      expect((await get(ctrPath(ns, 'bad'))).status).toBe(404);
    });

    it('refuses an unknown field under kubectl default (Strict) validation, and warns with --validate=warn', async () => {
      const path = await file('err/unk.yaml', toYaml({ apiVersion: GROUP_VERSION, kind: 'Container', metadata: { name: 'unk' }, spec: { image: 'busybox', colour: 'red' } }));
      const strict = await kubectl(['apply', '-n', ns, '-f', path]);
      expectExit(strict, 1);
      expect(strict.stderr.trim()).toBe(
        `Error from server (BadRequest): error when creating "${path}": Container in version "v1" cannot be handled as a Container: strict decoding error: unknown field "spec.colour"`,
      );
      expect((await get(ctrPath(ns, 'unk'))).status).toBe(404);

      const warn = await kubectl(['apply', '--validate=warn', '-n', ns, '-f', path]);
      expectExit(warn, 0);
      expect(warn.stdout.trim()).toBe('container.berth.dev/unk created');
      expect(warn.stderr.trim()).toBe('Warning: unknown field "spec.colour"');
      expect((await get(ctrPath(ns, 'unk'))).body.spec).toEqual({ ...CONTAINER_DEFAULTS, image: 'busybox' });
    });

    it('reports AlreadyExists on create and Conflict on a stale replace', async () => {
      const path = await file('err/dup.yaml', ctrManifest('dup'));
      expectExit(await kubectl(['create', '-n', ns, '-f', path]), 0);
      const again = await kubectl(['create', '-n', ns, '-f', path]);
      expectExit(again, 1);
      expect(again.stderr.trim()).toBe(`Error from server (AlreadyExists): error when creating "${path}": containers.berth.dev "dup" already exists`);

      const stale = await kubectl(['get', 'ctr', 'dup', '-n', ns, '-o', 'json']);
      expectExit(stale, 0);
      const stalePath = await file('err/stale.json', stale.stdout);
      expectExit(await kubectl(['label', 'ctr', 'dup', 'moved=on', '-n', ns]), 0);
      const replace = await kubectl(['replace', '-n', ns, '-f', stalePath]);
      expectExit(replace, 1);
      expect(replace.stderr.trim()).toBe(
        `Error from server (Conflict): error when replacing "${stalePath}": Operation cannot be fulfilled on containers.berth.dev "dup": the object has been modified; please apply your changes to the latest version and try again`,
      );
      expect((await get(ctrPath(ns, 'dup'))).body.metadata.labels).toEqual({ moved: 'on' });
    });
  });

  describe('namespaces', () => {
    // kubectl ≥ 1.32 sends `create namespace` as protobuf (api/server/protobuf.ts decodes it);
    // 1.27 sends the typed client's JSON ({"metadata":{"creationTimestamp":null},"spec":{},"status":{}}).
    const json127 = VERSIONS.find((v) => v.label === '1.27')?.bin;
    it.skipIf(!json127)('creates a namespace imperatively with a kubectl that sends JSON (1.27)', async () => {
      const r = await kubectl(['create', 'ns', 'made'], { bin: json127 });
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('namespace/made created');
      expect((await get('/api/v1/namespaces/made')).body.status.phase).toBe('Active');
    });

    it('creates a namespace imperatively with the default kubectl, which sends protobuf', async () => {
      const r = await kubectl(['create', 'ns', 'made-pb']);
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('namespace/made-pb created');
      expect((await get('/api/v1/namespaces/made-pb')).body.status.phase).toBe('Active');
    });

    it('creates a namespace from a manifest and deletes it only once its content is gone', async () => {
      const created = await kubectl(['create', '-f', '-'], { stdin: toYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gone' } }) });
      expectExit(created, 0);
      expect(created.stdout.trim()).toBe('namespace/gone created');
      expectExit(await kubectl(['apply', '-n', 'gone', '-f', '-'], { stdin: ctrManifest('web') }), 0);
      await post(ctrPath('gone'), container('held', { metadata: { finalizers: ['test.berth.dev/hold'] } }));

      const deleting = await startWaiting(['delete', 'ns', 'gone'], 'namespaces');
      await vi.waitFor(async () => expect((await get(ctrPath('gone'))).body.items.map((i: any) => i.metadata.name)).toEqual(['held']), { timeout: 10_000, interval: 50 });
      expect((await get('/api/v1/namespaces/gone')).body.status.phase).toBe('Terminating');
      await mergePatch(ctrPath('gone', 'held'), { metadata: { finalizers: null } });

      const r = await deleting.done;
      expectExit(r, 0);
      expect(r.stdout.trim()).toBe('namespace "gone" deleted');
      expect((await get('/api/v1/namespaces/gone')).status).toBe(404);
      expect((await get(ctrPath('gone'))).body.items).toEqual([]);
      const list = await kubectl(['get', 'ns']);
      expect(rowOf(table(list.stdout).rows, 'gone')).toBeUndefined();
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe.each(VERSIONS)('kubectl $label: core commands', ({ label, bin }) => {
  if (!bin) {
    const reason = DEFAULT_KUBECTL ? `kubectl.${label} not found beside ${DEFAULT_KUBECTL}` : 'kubectl is not on PATH';
    console.warn(`skipping kubectl ${label}: ${reason}`);
    it.skip(`kubectl ${label} (${reason})`, () => {});
    return;
  }
  const ns = `v-${label.replace('.', '-')}`;
  const k = (args: readonly string[], stdin?: string) => kubectl(args, { bin, ...(stdin !== undefined ? { stdin } : {}) });
  beforeAll(() => createNamespace(ns));

  it('applies: created, configured, unchanged', async () => {
    const create = await k(['apply', '-n', ns, '-f', '-'], ctrManifest('web', { labels: { app: 'x' } }));
    expectExit(create, 0);
    expect(create.stdout.trim()).toBe('container.berth.dev/web created');
    const path = await file(`${ns}/web.yaml`, ctrManifest('web', { image: 'nginx:1.27', labels: { app: 'x' } }));
    const configure = await k(['apply', '-n', ns, '-f', path]);
    expectExit(configure, 0);
    expect(configure.stdout.trim()).toBe('container.berth.dev/web configured');
    const unchanged = await k(['apply', '-n', ns, '-f', path]);
    expectExit(unchanged, 0);
    expect(unchanged.stdout.trim()).toBe('container.berth.dev/web unchanged');
    expect((await get(ctrPath(ns, 'web'))).body.spec.image).toBe('nginx:1.27');
  });

  it('gets a table and JSON', async () => {
    const [tbl, json] = await Promise.all([k(['get', 'ctr', '-n', ns]), k(['get', 'ctr', 'web', '-n', ns, '-o', 'json'])]);
    expectExit(tbl, 0);
    const t = table(tbl.stdout);
    expect(t.header).toEqual(['NAME', 'IMAGE', 'STATE', 'RESTARTS', 'NODE', 'AGE']);
    expect(t.rows.map((r) => r.slice(0, 5))).toEqual([['web', 'nginx:1.27', 'Pending', '0', '<none>']]);
    expectExit(json, 0);
    expect(JSON.parse(json.stdout)).toMatchObject({ apiVersion: GROUP_VERSION, kind: 'Container', metadata: { name: 'web', namespace: ns }, spec: { image: 'nginx:1.27' } });
  });

  it('diffs without changing the live object', async () => {
    const before = (await get(ctrPath(ns, 'web'))).body.metadata.resourceVersion;
    const same = await k(['diff', '-n', ns, '-f', join(tmp, ns, 'web.yaml')]);
    expectExit(same, 0);
    const changed = await k(['diff', '-n', ns, '-f', '-'], ctrManifest('web', { image: 'nginx:1.29', labels: { app: 'x' } }));
    expectExit(changed, 1);
    expect(changed.stdout).toMatch(/^\+\s+image: nginx:1\.29$/m);
    const live = (await get(ctrPath(ns, 'web'))).body;
    expect([live.spec.image, live.metadata.resourceVersion]).toEqual(['nginx:1.27', before]);
  });

  it('explains containers', async () => {
    const r = await k(['explain', 'containers']);
    expectExit(r, 0);
    expect(r.stdout).toMatch(/^KIND:\s+Container$/m);
    expect(r.stdout).toMatch(/^VERSION:\s+v1$/m);
    expect(r.stdout).toMatch(/^ {2}spec\t<ContainerSpec> -required-$/m);
  });

  it('waits for condition=Ready', async () => {
    const waiting = await startWaiting(['wait', '--for=condition=Ready', 'container/web', '-n', ns, '--timeout=60s'], 'containers', bin);
    // web was configured once, so its generation is 2: a status for generation 1 is out of date (kubectl.md §6.5).
    expect((await get(ctrPath(ns, 'web'))).body.metadata.generation).toBe(2);
    await mergePatch(`${ctrPath(ns, 'web')}/status`, {
      status: { observedGeneration: 2, conditions: [{ type: 'Ready', status: 'True', reason: 'Test', message: '', lastTransitionTime: rfc3339(), observedGeneration: 2 }] },
    });
    const r = await waiting.done;
    expectExit(r, 0);
    expect(r.stdout.trim()).toBe('container.berth.dev/web condition met');
  });

  it('deletes from a file', async () => {
    const r = await k(['delete', '-n', ns, '-f', join(tmp, ns, 'web.yaml')]);
    expectExit(r, 0);
    expect(r.stdout.trim()).toBe('container.berth.dev "web" deleted');
    expect((await get(ctrPath(ns, 'web'))).status).toBe(404);
  });
});

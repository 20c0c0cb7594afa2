import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Container, Lease, Node } from '../controllers/framework/index.ts';
import { clientFor } from '../controllers/framework/testing/control-plane-client.ts';
import type { FakeRuntimeService } from '../runtime/testing/index.ts';
import { buildBusyboxImage } from '../test/fixtures/busybox-image.ts';
import { startControlPlane } from '../test/harness/control-plane.ts';
import { createLogger } from './logger.ts';
import { startServer } from './server.ts';
import { findResource } from '../api/registry/resources.ts';

describe('berth server (all in one)', () => {
  it('runs no agent and no controllers in the test harness unless asked', async () => {
    const cp = await startControlPlane();
    onTestFinished(() => cp.stop());
    expect(cp.server.agent).toBeUndefined();
    expect(cp.server.controllers).toBeUndefined();
    const nodes = await cp.request('GET', '/apis/berth.dev/v1/nodes');
    expect(nodes.body.items).toEqual([]);
  });

  it('serves the same API on DATA_DIR/api.sock (mode 0600, same authentication), names it in its kubeconfig, and removes it when it stops', async () => {
    const cp = await startControlPlane({ runtime: 'fake', nodeName: 'n1' });
    onTestFinished(() => cp.stop());
    const socket = join(cp.dataDir, 'api.sock');
    expect(cp.server.localSocket).toBe(socket);
    const st = statSync(socket);
    expect([st.isSocket(), st.mode & 0o777]).toEqual([true, 0o600]);
    const kubeconfig = JSON.parse(readFileSync(cp.server.kubeconfigPath, 'utf8'));
    expect(kubeconfig.clusters[0].cluster.extensions).toEqual([{ name: 'berth.dev/local-socket', extension: { path: socket } }]);
    const get = (token?: string) =>
      new Promise<{ code: number; body: any }>((resolve, reject) => {
        const req = http.request({ socketPath: socket, path: '/api/v1/namespaces', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end();
      });
    const ok = await get(cp.server.token);
    expect(ok.code).toBe(200);
    expect(ok.body.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toContain('default');
    expect((await get()).code).toBe(401);
    expect((await get('not-the-token')).code).toBe(401);
    // The agent's stream server has a socket of its own for the API server's hop to it.
    expect(statSync(join(cp.dataDir, 'agent.sock')).isSocket()).toBe(true);
    await cp.server.close();
    expect(existsSync(cp.server.kubeconfigPath)).toBe(true);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(cp.dataDir, 'agent.sock'))).toBe(false);
  });

  it('locks its data directory: a second server on it is refused, naming the first, and nothing of the first is touched', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-lock-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const start = () => startServer({ dataDir, listen: '127.0.0.1:0', runtime: 'none', controllers: false, logger: createLogger({ level: 'silent', name: 'berth' }) });
    const first = await start();
    onTestFinished(() => first.close());
    const pidFile = join(dataDir, 'berth.pid');
    expect(JSON.parse(readFileSync(pidFile, 'utf8'))).toMatchObject({ pid: process.pid, owner: `berth server, data dir ${dataDir}` });
    await expect(start()).rejects.toThrow(
      `the data directory ${dataDir} is in use by another berth process (pid ${process.pid}, berth server, data dir ${dataDir}): stop it first, or give this one another --data-dir`,
    );
    expect((await first.store.list(findResource('', 'v1', 'namespaces')!, '', {})).items.length).toBeGreaterThan(0); // the first still serves
    expect(existsSync(join(dataDir, 'api.sock'))).toBe(true);
    await first.close();
    expect(existsSync(pidFile)).toBe(false);
    const second = await start();
    await second.close();
  });

  it('names its socket by an absolute path in the kubeconfig when the data directory is given relative', async () => {
    const abs = mkdtempSync(join(tmpdir(), 'berth-rel-'));
    const server = await startServer({ dataDir: relative(process.cwd(), abs), listen: '127.0.0.1:0', runtime: 'none', controllers: false, logger: createLogger({ level: 'silent', name: 'berth' }) });
    onTestFinished(async () => {
      await server.close();
      rmSync(abs, { recursive: true, force: true });
    });
    const kubeconfig = JSON.parse(readFileSync(join(abs, 'kubeconfig.yaml'), 'utf8'));
    expect(kubeconfig.clusters[0].cluster.extensions[0].extension.path).toBe(join(abs, 'api.sock'));
    expect(statSync(join(abs, 'api.sock')).isSocket()).toBe(true);
  });

  it('registers its node as a Ready manager, heartbeats, and serves controller metrics on /metrics', async () => {
    const cp = await startControlPlane({ runtime: 'fake', controllers: true, nodeName: 'n1' });
    onTestFinished(() => cp.stop());
    const client = clientFor(cp);
    const node = await client.get(Node, '', 'n1');
    expect(node.spec?.role).toBe('manager');
    expect(node.status?.runtime).toEqual({ name: 'fake', version: '0.1.0' });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect((await client.get(Lease, 'berth-system', 'n1')).spec?.holderIdentity).toBe('n1');
    await vi.waitFor(async () => {
      const metrics = await cp.request('GET', '/metrics');
      expect(metrics.text).toContain('controller_runtime_reconcile_total{controller="node-lifecycle"');
      expect(metrics.text).toContain('# TYPE container_memory_working_set_bytes gauge');
    });
  });

  it('schedules a Container without a node and runs it on the fake runtime', async () => {
    const cp = await startControlPlane({ runtime: 'fake', controllers: true, nodeName: 'n1' });
    onTestFinished(() => cp.stop());
    const client = clientFor(cp);
    const image = await buildBusyboxImage(join(cp.dataDir, 'fixture'));
    await cp.server.images!.importImage(image.layoutDir, { tags: ['busybox:latest'] });

    await client.create<Container>({
      apiVersion: 'berth.dev/v1',
      kind: 'Container',
      metadata: { name: 'web', namespace: 'default' },
      spec: { image: 'busybox', command: ['sleep', '3600'], resources: { memory: '64Mi' } },
    });
    await vi.waitFor(
      async () => {
        const c = await client.get(Container, 'default', 'web');
        expect(c.spec?.nodeName).toBe('n1');
        expect(c.status?.conditions?.find((x) => x.type === 'Scheduled')).toMatchObject({ status: 'True', message: 'bound to node n1' });
        expect(c.status?.phase).toBe('Running');
      },
      { timeout: 10_000, interval: 100 },
    );
    const runtime = cp.server.runtime as FakeRuntimeService;
    expect([...runtime.containers.values()].filter((c) => c.state === 'running')).toHaveLength(1);

    // Exec goes API server → local agent stream server → runtime.
    const kc = new KubeConfig();
    kc.loadFromFile(cp.server.kubeconfigPath);
    const out = new PassThrough();
    let stdout = '';
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    const status = await new Promise<any>((resolve, reject) => {
      new Exec(kc).exec('default', 'web', 'web', ['sh', '-c', 'echo through-the-api; exit 4'], out, null, null, false, resolve).catch(reject);
    });
    expect(stdout).toBe('through-the-api\n');
    expect(status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode' });

    const metrics = await cp.request('GET', '/metrics');
    expect(metrics.text).toMatch(/container_spec_memory_limit_bytes\{namespace="default",name="web",id="[0-9a-f]+"\} 67108864/);
  });
});

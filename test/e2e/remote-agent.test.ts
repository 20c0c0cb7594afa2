/**
 * A node agent in its own process (`berth agent`, as on a second machine) joined to a
 * `berth server` that runs no agent of its own: the agent registers its Node with the
 * endpoint and CA of its stream server, runs the Containers bound to it (on the fake
 * runtime, so no root is needed), and its log (`kubectl get --raw …/log`) and client-node `Exec` reach it
 * through the API server, which dials the agent at the advertised endpoint over TLS
 * with the CA the agent published.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { STREAM_CA_ANNOTATION, STREAM_ENDPOINT_ANNOTATION } from '../../api/server/node-proxy.ts';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane } from '../harness/control-plane.ts';

const BERTH_BIN = join(import.meta.dirname, '../../bin/berth.js');
const NODE = 'remote-1';

/** Starts `berth agent` against `kubeconfig`; killed when the test ends. */
function spawnAgent(kubeconfig: string, dataDir: string): { child: ChildProcess; stderr: () => string } {
  const child = spawn(
    process.execPath,
    [BERTH_BIN, 'agent', '--kubeconfig', kubeconfig, '--runtime', 'fake', '--node-name', NODE, '--data-dir', dataDir, '--stream-listen', '127.0.0.1:0', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-32_000)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGKILL');
    }
  });
  return { child, stderr: () => stderr };
}

describe('a remote node agent (berth agent)', () => {
  it('registers its stream endpoint, runs its containers, and serves logs and exec through the API server', async () => {
    const root = await mkdtemp(join(tmpdir(), 'berth-remote-agent-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    const cp = await startControlPlane({ runtime: 'none', controllers: true });
    onTestFinished(() => cp.stop());
    const fixture = await buildBusyboxImage(join(root, 'fixture'));
    const agent = spawnAgent(cp.server.kubeconfigPath, join(root, 'agent'));

    const nodePath = `/apis/berth.dev/v1/nodes/${NODE}`;
    await vi.waitFor(async () => {
      const node = await cp.request('GET', nodePath);
      expect(node.status, agent.stderr()).toBe(200);
      expect(node.body.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status).toBe('True');
    }, { timeout: 30_000, interval: 200 });
    const node = (await cp.request('GET', nodePath)).body;
    expect(node.metadata.annotations[STREAM_ENDPOINT_ANNOTATION]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(node.metadata.annotations[STREAM_CA_ANNOTATION]).toContain('BEGIN CERTIFICATE');
    // The agent's own CA, not the API server's: each agent makes its PKI.
    expect(node.metadata.annotations[STREAM_CA_ANNOTATION]).not.toBe(cp.server.caPem);

    const ns = '/apis/berth.dev/v1/namespaces/default';
    expect((await cp.request('POST', `${ns}/images`, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.layoutDir } }, tags: ['busybox:latest'] } } })).status).toBe(201);
    const ctr = { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'far' }, spec: { image: 'busybox', command: ['sh', '-c', 'echo hello from afar; sleep 3600'] } };
    expect((await cp.request('POST', `${ns}/containers`, { body: ctr })).status).toBe(201);
    await vi.waitFor(async () => {
      const c = (await cp.request('GET', `${ns}/containers/far`)).body;
      expect(c.spec.nodeName).toBe(NODE);
      expect(c.status?.phase, agent.stderr()).toBe('Running');
    }, { timeout: 30_000, interval: 200 });

    await vi.waitFor(async () => {
      const logs = await cp.kubectl(['get', '--raw', `${ns}/containers/far/log`]);
      expect(logs.stderr).toBe('');
      expect(logs.stdout).toBe('hello from afar\n');
    }, { timeout: 10_000, interval: 200 });

    const kc = new KubeConfig();
    kc.loadFromFile(cp.server.kubeconfigPath);
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const status = await new Promise<unknown>((resolve, reject) => {
      new Exec(kc).exec('default', 'far', 'far', ['echo', 'exec', 'works'], stdout, null, null, false, resolve).catch(reject);
    });
    expect(status).toMatchObject({ status: 'Success' });
    expect(out).toBe('exec works\n');
  }, 90_000);
});

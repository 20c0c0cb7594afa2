import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Container, Lease, Node } from '../controllers/framework/index.ts';
import { clientFor } from '../controllers/framework/testing/control-plane-client.ts';
import { startControlPlane } from '../test/harness/control-plane.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'berth.js');

interface Role {
  readonly child: ChildProcess;
  /** Log lines so far, parsed. */
  readonly lines: Record<string, unknown>[];
  /** The /metrics + /healthz base URL, once logged. */
  metricsUrl(): Promise<string>;
  /** SIGTERM, then the exit code. */
  terminate(): Promise<number | null>;
  /** The exit code, once it has exited. */
  readonly exited: Promise<number | null>;
}

/** Runs `berth <args>` from source; killed at the end of the test if still running. */
function runRole(args: readonly string[]): Role {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BERTH_FROM_SOURCE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    lines,
    exited,
    metricsUrl: async () => {
      let url = '';
      await vi.waitFor(
        () => {
          url = String(lines.find((l) => l.msg === 'serving /metrics and /healthz')?.url ?? '');
          expect(url, JSON.stringify(lines)).not.toBe('');
        },
        { timeout: 20_000, interval: 100 },
      );
      return url;
    },
    terminate: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('berth controllers and berth agent as separate processes', () => {
  it('berth controllers marks silent nodes not ready, serves /metrics and /healthz, and releases its lease on SIGTERM', async () => {
    const cp = await startControlPlane();
    onTestFinished(() => cp.stop());
    const client = clientFor(cp);
    await client.create<Node>({ apiVersion: 'berth.dev/v1', kind: 'Node', metadata: { name: 'silent' }, spec: { role: 'worker' } });
    const role = runRole(['controllers', '--kubeconfig', cp.server.kubeconfigPath, '--node-grace-period', '500ms', '--metrics-listen', '127.0.0.1:0', '--log-level', 'info']);
    const url = await role.metricsUrl();

    await vi.waitFor(
      async () => expect((await client.get(Node, '', 'silent')).status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown' }),
      { timeout: 20_000, interval: 200 },
    );
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('controller_runtime_reconcile_total{controller="node-lifecycle"');
    expect((await client.get(Lease, 'berth-system', 'berth-controllers')).spec?.holderIdentity).toBeTruthy();

    expect(await role.terminate()).toBe(0);
    expect((await client.get(Lease, 'berth-system', 'berth-controllers')).spec?.holderIdentity ?? '').toBe('');
  });

  it('berth agent registers its node, reconciles a Container bound to it, and stops on SIGTERM', async () => {
    const cp = await startControlPlane();
    onTestFinished(() => cp.stop());
    const client = clientFor(cp);
    const role = runRole(['agent', '--kubeconfig', cp.server.kubeconfigPath, '--node-name', 'w1', '--runtime', 'fake', '--data-dir', join(cp.dataDir, 'agent'), '--metrics-listen', '127.0.0.1:0']);
    const url = await role.metricsUrl();
    const node = await client.get(Node, '', 'w1');
    expect(node.spec?.role).toBe('worker');
    expect(node.status?.runtime?.name).toBe('fake');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('# TYPE container_cpu_usage_seconds_total counter');

    // bound by hand: no scheduler runs here; the image is absent, so the agent reports it is waiting
    await client.create<Container>({ apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'web', namespace: 'default' }, spec: { image: 'busybox', nodeName: 'w1' } });
    await vi.waitFor(async () => expect((await client.get(Container, 'default', 'web')).status?.conditions?.find((c) => c.type === 'ImageReady')?.status).toBe('False'), {
      timeout: 10_000,
      interval: 200,
    });

    // a second agent on the same data directory is refused, naming the first
    const agentDir = join(cp.dataDir, 'agent');
    const second = runRole(['agent', '--kubeconfig', cp.server.kubeconfigPath, '--node-name', 'w2', '--runtime', 'fake', '--data-dir', agentDir]);
    expect(await second.exited).toBe(1);
    expect(second.lines.map((l) => l.msg)).toContain(
      `berth: the data directory ${agentDir} is in use by another berth process (pid ${role.child.pid}, berth agent, data dir ${agentDir}): stop it first, or give this one another --data-dir`,
    );

    expect(await role.terminate()).toBe(0);
    expect(role.lines.some((l) => l.msg === 'shutting down')).toBe(true);
    expect(existsSync(join(agentDir, 'berth.pid'))).toBe(false);
  });
});

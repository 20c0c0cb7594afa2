/**
 * A single-member etcd (Debian `etcd-server`, 3.4) for the comparison benchmark, and a
 * client for its gRPC-gateway HTTP/JSON API (`POST /v3/kv/put`) over keep-alive
 * connections. It listens on 127.0.0.1 only; the process is killed by PID when the
 * runner exits, even on failure (`cleanup.ts`).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnTracked, stopChild } from './cleanup.ts';
import { sleep } from './stats.ts';

export interface EtcdOptions {
  readonly dataDir: string;
  /** Default 23790. */
  readonly clientPort?: number;
  /** Default 23800. */
  readonly peerPort?: number;
}

export interface EtcdProcess {
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  /** Puts one key; resolves once etcd acknowledged it (committed and fsynced). */
  put(key: string, value: string): Promise<void>;
  /** Stops etcd (SIGTERM, SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/** The installed etcd version, e.g. `3.4.23`, or undefined when etcd is not installed. */
export function etcdVersion(): string | undefined {
  try {
    return /etcd Version: (\S+)/.exec(execFileSync('etcd', ['--version'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

/** Starts etcd on `dataDir` and resolves once `/health` reports healthy. Rejects if etcd is not installed. */
export async function startEtcd(opts: EtcdOptions): Promise<EtcdProcess> {
  const version = etcdVersion();
  if (!version) throw new Error('etcd is not installed: apt-get install -y etcd-server etcd-client');
  const clientUrl = `http://127.0.0.1:${opts.clientPort ?? 23790}`;
  const peerUrl = `http://127.0.0.1:${opts.peerPort ?? 23800}`;
  const logFd = fs.openSync(path.join(opts.dataDir, 'etcd.log'), 'a');
  const { child, exited } = spawnTracked(
    'etcd',
    [
      '--name', 'bench',
      '--data-dir', path.join(opts.dataDir, 'data'),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--initial-cluster-state', 'new',
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
  const u = new URL(clientUrl);

  const call = (method: string, p: string, body?: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = http.request({ host: u.hostname, port: Number(u.port), method, path: p, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  const stop = async (): Promise<void> => {
    agent.destroy();
    await stopChild(child, exited, 'SIGTERM', 5_000);
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`etcd exited before it was healthy; see ${path.join(opts.dataDir, 'etcd.log')}`);
    }
    const health = await call('GET', '/health').catch(() => undefined);
    if (health?.status === 200 && /"health":\s*"true"/.test(health.body)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error('etcd did not become healthy within 30 s');
    }
    await sleep(100);
  }

  return {
    url: clientUrl,
    pid: child.pid!,
    version,
    put: async (key, value) => {
      const body = JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
      const res = await call('POST', '/v3/kv/put', body);
      if (res.status !== 200) throw new Error(`etcd put ${key}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    },
    stop,
  };
}

/**
 * The API server's container streams (log, exec, attach, stats, kill) and a node's
 * registry login check wired as in
 * `berth server`, in one process for unit tests: an HTTPS API server with an in-memory
 * store, and a node agent stream server (`node-1`) on the fake runtime, both on
 * 127.0.0.1 with a fresh PKI.
 */
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApiServer, type ApiServer } from '../../api/server/app.ts';
import { bearerAuth } from '../../api/server/auth.ts';
import { containerStreams } from '../../api/server/container-streams.ts';
import { registryLogin } from '../../api/server/registry-login.ts';
import { ObjectStore } from '../../api/registry/object-store.ts';
import { ensurePki, type Pki } from '../../cli/pki.ts';
import { expect, onTestFinished } from 'vitest';
import { createStreamServer, NAME_LABEL, NAMESPACE_LABEL, type StreamServer, type StreamServerOptions } from '../../controllers/node/stream-server.ts';
import type { ContainerConfig, ContainerId } from '../../runtime/cri/types.ts';
import { FakeRuntimeService } from '../../runtime/testing/fake-runtime-service.ts';
import { MemoryLog } from '../../store/memory/memory-log.ts';

/** The bearer token the API server presents to the agent. */
export const AGENT_TOKEN = 'api-server-to-agent';

/** One answer of `request`: the body parsed when it is JSON. */
export interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body: any;
  readonly text: string;
}

export interface StreamsFixture {
  readonly pki: Pki;
  readonly runtime: FakeRuntimeService;
  readonly agent: StreamServer;
  readonly api: ApiServer;
  /** The API server's base URL. */
  readonly url: string;
  /** One request to the API server (as the admin unless `token` says otherwise). */
  request(method: string, path: string, body?: unknown, contentType?: string, token?: string): Promise<Reply>;
  /**
   * A Container `name` (busybox) bound to `node` through the status subresource, as the
   * agent reports it, and — unless `start: false` — its running runtime container
   * (`command`, default `sleep 3600`); both removed when the test finishes.
   */
  containerOn(name: string, node: string | undefined, opts?: ContainerOnOptions): Promise<ContainerId | undefined>;
  close(): Promise<void>;
}

export interface ContainerOnOptions {
  readonly start?: boolean;
  readonly command?: readonly string[];
  readonly config?: Partial<ContainerConfig>;
}

/** The path of the default namespace's Containers. */
export const CONTAINERS = '/apis/berth.dev/v1/namespaces/default/containers';

/** Starts the fixture; `agentOptions` are added to the stream server's (e.g. `statsIntervalMs`). */
export async function startStreamsFixture(agentOptions: Partial<StreamServerOptions> = {}): Promise<StreamsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-streams-test-'));
  const pki = await ensurePki(dir, { hosts: [] });
  const runtime = new FakeRuntimeService();
  const agent = createStreamServer({ runtime, token: AGENT_TOKEN, tls: { cert: pki.serverCertPem, key: pki.serverKeyPem }, ...agentOptions });
  await new Promise<void>((r) => agent.server.listen(0, '127.0.0.1', r));
  const agentUrl = `https://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;

  const store = new ObjectStore({ log: new MemoryLog() });
  await store.ensureNamespace('default');
  const authenticate = bearerAuth({ tokens: new Map([[pki.adminToken, { user: 'admin', groups: ['system:masters'] }]]) });
  const dialNode = async (node: string) => (node === 'node-1' ? { url: agentUrl, ca: pki.caCertPem, token: AGENT_TOKEN } : undefined);
  const streams = containerStreams({ store, authenticate, dialNode });
  const api = createApiServer({ store, logger: pino({ level: 'silent' }), authenticate, extraRouters: [streams.router, registryLogin({ store, dialNode })] });
  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, api.app);
  server.on('upgrade', streams.handleUpgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const request = (method: string, path: string, body?: unknown, contentType = 'application/json', token = pki.adminToken): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        new URL(path, url),
        {
          method,
          ca: pki.caCertPem,
          headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let parsed: any;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not one JSON document */
            }
            resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: parsed, text });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  const containerOn = async (name: string, node: string | undefined, opts: ContainerOnOptions = {}): Promise<ContainerId | undefined> => {
    const created = await request('POST', CONTAINERS, { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name }, spec: { image: 'busybox' } });
    expect(created.status, created.text).toBe(201);
    onTestFinished(async () => void (await request('DELETE', `${CONTAINERS}/${name}`)));
    if (node) {
      const bound = await request('PATCH', `${CONTAINERS}/${name}/status`, { status: { nodeName: node } }, 'application/merge-patch+json');
      expect(bound.status).toBe(200);
    }
    if (opts.start === false) return undefined;
    const id = await runtime.createContainer({
      name: `default_${name}_1`,
      image: 'busybox',
      command: [...(opts.command ?? ['sleep', '3600'])],
      labels: { [NAMESPACE_LABEL]: 'default', [NAME_LABEL]: name },
      ...opts.config,
    });
    await runtime.startContainer(id);
    onTestFinished(() => runtime.removeContainer(id).catch(() => {}));
    return id;
  };

  return {
    pki,
    runtime,
    agent,
    api,
    url,
    request,
    containerOn,
    close: async () => {
      api.shutdown();
      await new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()));
      await agent.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `berth server`: everything in one process for one machine. Wiring only: it opens
 * the SQLite store, makes the PKI and kubeconfig, builds the API server with auth,
 * logs and metrics, starts the garbage collector, serves HTTPS, and then runs the
 * control-plane controllers (`cli/controllers.ts`) and the node agent (`cli/agent.ts`)
 * as clients of that same HTTPS endpoint.
 * The test harness starts servers through `startServer` too, so tests run what users run.
 */
import { mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { openSqliteLog } from '../store/sqlite/sqlite-log.ts';
import { MemoryLog } from '../store/memory/memory-log.ts';
import type { RevisionLog } from '../store/revision-log.ts';
import { ObjectStore } from '../api/registry/object-store.ts';
import { createApiServer } from '../api/server/app.ts';
import { bearerAuth, PUBLIC_INFO_PATHS } from '../api/server/auth.ts';
import { pathOf, plainNode } from '../api/server/plain-node.ts';
import { ImageStore } from '../runtime/images/index.ts';
import { createRegistry, isRegistryPath, type BuiltinRegistry } from '../registry/index.ts';
import { ApiMetrics } from '../api/server/metrics.ts';
import { requestLogger } from '../api/server/request-log.ts';
import { GarbageCollector } from '../api/gc/garbage-collector.ts';
import { RESOURCES } from '../api/registry/resources.ts';
import { resourcePrefix } from '../api/registry/keys.ts';
import { ensurePki } from './pki.ts';
import { listenUnix, parseListen } from './listen.ts';
import { adminKubeconfigPath, localSocketPath } from './data-dir.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { createLogger } from './logger.ts';
import type { ApiClient } from '../controllers/framework/index.ts';
import type { ImageService, RegistryConfig, RuntimeService } from '../runtime/cri/index.ts';
import type { AgentStreams, NodeNetwork, NodeNetworkOptions, NodeRuntime, RunningAgent } from './agent.ts';
import type { RunningControllers } from './controllers.ts';
import { defaultRuntimeKind, whyNoRuntime, type RuntimeKind } from './runtime-kind.ts';
import { containerStreams } from '../api/server/container-streams.ts';
import { storeDialNode, type DialNode, type NodeEndpoint } from '../api/server/node-proxy.ts';
import { imageStreams } from '../api/server/image-streams.ts';
import { registryLogin } from '../api/server/registry-login.ts';
import { lockDataDir } from './instance-lock.ts';

/** Namespaces that exist from the first start. */
export const INITIAL_NAMESPACES = ['default', 'berth-system'] as const;

export interface ServerOptions {
  readonly dataDir: string;
  /** `host:port`; port 0 picks a free port. Default `127.0.0.1:7443`. */
  readonly listen?: string;
  readonly logLevel?: string;
  readonly logger?: Logger;
  /** Extra names and addresses for the serving certificate. */
  readonly hosts?: readonly string[];
  /** `memory` keeps nothing on disk (tests only). Default `sqlite`. */
  readonly storage?: 'sqlite' | 'memory';
  /** Shorter watch timeouts for tests. */
  readonly minWatchTimeoutMs?: number;
  /**
   * The node agent's runtime: `runc` (conmon + runc, needs root), `fake` (in memory:
   * tests, benchmarks) or `none` (no agent). Default `runc` when running as root with
   * runc and conmon installed, else `none` with a warning.
   */
  readonly runtime?: RuntimeKind;
  /** Run the control-plane controllers (scheduler, node lifecycle). Default true. */
  readonly controllers?: boolean;
  /** The agent's Node name. Default the hostname. */
  readonly nodeName?: string;
  /** Time without a heartbeat before a node is marked not ready. Default 40 s. */
  readonly nodeGracePeriodMs?: number;
  /** The agent's heartbeat interval. Default 10 s. */
  readonly heartbeatIntervalMs?: number;
  /** How the node agent reaches registries: hosts spoken to over plain HTTP, extra CAs. */
  readonly registry?: RegistryConfig;
  /**
   * Host paths Containers may bind-mount (`spec.bindMounts[].hostPath` must be one of
   * them or below one); the API server rejects others with 422. Default none.
   */
  readonly allowedBindMountPaths?: readonly string[];
  /**
   * Container networks of the `runc` agent (default network berth0 10.89.0.0/16, names
   * of host devices and the nftables table); `false`: none, every container gets a
   * loopback-only namespace. Not used with the `fake` runtime.
   */
  readonly network?: NodeNetworkOptions | false;
}

/** A running `berth server`. */
export interface RunningServer {
  /** `https://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The Unix socket serving the same API (`<dataDir>/api.sock`); undefined when it could not be made. */
  readonly localSocket?: string;
  readonly kubeconfigPath: string;
  readonly caPem: string;
  readonly token: string;
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  /** The agent's runtime (`FakeRuntimeService` with `runtime: 'fake'`); undefined without an agent. */
  readonly runtime?: RuntimeService;
  /** The registry at `/v2/`, over the same image store as the agent. */
  readonly registry: BuiltinRegistry;
  /** The agent's image store (`<dataDir>/images`); undefined without an agent. */
  readonly images?: ImageService;
  readonly agent?: RunningAgent;
  readonly controllers?: RunningControllers;
  /**
   * Drains the agent's and the control plane's controllers, closes the runtime
   * (containers keep running), stops serving, ends watches, stops background work and
   * closes the store.
   */
  close(): Promise<void>;
}

/** The name of some Node (the first by name), for what any node's agent can serve. */
async function anyNodeName(store: ObjectStore): Promise<string | undefined> {
  const nodes = RESOURCES.find((r) => r.kind === 'Node')!;
  const list = await store.list(nodes, '', { limit: 1 });
  return (list.items[0] as { metadata?: { name?: string } } | undefined)?.metadata?.name;
}

/**
 * Starts the all-in-one server and resolves once it is serving. The data directory is
 * locked (`<dataDir>/berth.pid`) until `close`: a second server on it is refused.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:7443');
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const lock = await lockDataDir(opts.dataDir, 'berth server');
  try {
    const running = await serve(opts, host, port);
    return { ...running, close: () => running.close().finally(() => lock.release()) };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function serve(opts: ServerOptions, host: string, port: number): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: opts.logLevel ?? 'info', name: 'berth' });
  const metrics = new ApiMetrics();

  const log: RevisionLog =
    opts.storage === 'memory'
      ? new MemoryLog()
      : openSqliteLog({
          path: join(opts.dataDir, 'berth.db'),
          onCommit: (n, s) => metrics.observeCommit(n, s),
          onCompact: (rows, s) => metrics.observeCompaction(rows, s),
        });
  const store = new ObjectStore({ log, allowedBindMountPaths: opts.allowedBindMountPaths ?? [] });
  metrics.setStoreStatsSource(() => log.stats());
  metrics.setStorageObjectsSource(async () => {
    const counts = new Map<string, number>();
    for (const r of RESOURCES) counts.set(r.group ? `${r.plural}.${r.group}` : r.plural, await log.count(resourcePrefix(r)));
    return counts;
  });
  for (const ns of INITIAL_NAMESPACES) await store.ensureNamespace(ns);

  const pki = await ensurePki(opts.dataDir, { hosts: [...(opts.hosts ?? []), ...(host !== '0.0.0.0' && host !== '::' ? [host] : [])] });
  const gc = new GarbageCollector({ store, logger: logger.child({ component: 'garbage-collector' }) });
  gc.start();

  const watchEnds = new Map<object, (() => void)[]>();
  const tokens = new Map([[pki.adminToken, { user: 'admin', groups: ['system:masters'] }]]);
  const authenticate = bearerAuth({ tokens, anonymousPaths: PUBLIC_INFO_PATHS });
  // One image store for the registry and the node agent: blobs are shared.
  // Registries are reached over HTTPS trusting the system roots, berth's own CA (to pull
  // from itself) and `registry.caBundlePem`; plain HTTP only to `insecureRegistries`.
  const images = new ImageStore({
    root: join(opts.dataDir, 'images'),
    registry: { ...opts.registry, caBundlePem: [pki.caCertPem, opts.registry?.caBundlePem ?? ''].join('\n').trim() },
  });
  const registry = await createRegistry({
    images, tokens, tokenKeyPath: join(opts.dataDir, 'registry', 'token.key'), logger, metricsRegistry: metrics.registry,
  });
  // The registry authenticates its own requests (bearer-token flow, registry/auth.ts).
  const authenticateApi = plainNode((req, res, next) => (isRegistryPath(pathOf(req.url)) ? next() : authenticate(req, res, next)));
  // Logs, exec and attach are served by the node agent's stream server; the API server
  // proxies to it: its own agent directly, a remote agent (`berth agent`) at the endpoint
  // and CA its Node's annotations name, authenticated with the admin token.
  let localNode: { name: string; endpoint: NodeEndpoint } | undefined;
  const remoteNode = storeDialNode({ store, token: pki.adminToken });
  const dialNode: DialNode = async (name) => (localNode?.name === name ? localNode.endpoint : remoteNode(name));
  const streams = containerStreams({ store, authenticate, dialNode });
  const api = createApiServer({
    store,
    logger,
    authenticate: authenticateApi,
    extraRouters: [registry.router, streams.router, imageStreams({ store, dialNode, nodeFor: async () => localNode?.name ?? (await anyNodeName(store)) }), registryLogin({ store, dialNode })],
    observers: [requestLogger(logger.child({ component: 'apiserver' })), metrics.middleware()],
    metricsHandler: metrics.handler(),
    watchHooks: {
      onStart: (r) => {
        const done = metrics.watchStarted({ group: r.group, resource: r.plural });
        watchEnds.set(r, [...(watchEnds.get(r) ?? []), done]);
      },
      onEnd: (r) => watchEnds.get(r)?.pop()?.(),
      onEvent: (r) => metrics.observeWatchEvents({ group: r.group, resource: r.plural }),
    },
    ...(opts.minWatchTimeoutMs ? { minWatchTimeoutMs: opts.minWatchTimeoutMs } : {}),
  });

  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem, keepAliveTimeout: 65_000 }, api.app);
  server.requestTimeout = 0; // watches and log streams are long
  server.on('upgrade', streams.handleUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `https://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${actualPort}`;
  // The same API on a Unix socket in the data directory, for clients on this machine
  // (the CLI, this process's controllers and agent): the same authentication, no TLS —
  // a TLS context and handshake are most of a short CLI command's time on the wire.
  const localServer = http.createServer({ keepAliveTimeout: 65_000 }, api.app);
  localServer.requestTimeout = 0;
  localServer.on('upgrade', streams.handleUpgrade);
  // Absolute: the kubeconfig names it, and clients resolve a relative path against the kubeconfig's directory.
  const socketPath = localSocketPath(resolve(opts.dataDir));
  const serving = await listenUnix(localServer, socketPath).then(
    (ok) => ok || (logger.warn({ socketPath }, 'the data directory path is too long for a Unix socket: clients use HTTPS'), false),
    (err: unknown) => (logger.warn({ err, socketPath }, 'cannot serve the local socket: clients use HTTPS'), false),
  );
  const localSocket = serving ? socketPath : undefined;
  const kubeconfigPath = adminKubeconfigPath(opts.dataDir);
  await writeKubeconfig(kubeconfigPath, { server: url, caPem: pki.caCertPem, token: pki.adminToken, ...(localSocket ? { localSocket } : {}) });
  logger.info({ url, ...(localSocket ? { localSocket } : {}), kubeconfig: kubeconfigPath, dataDir: opts.dataDir }, 'berth server is serving');

  // Controllers and agent are API clients like any other, over the same HTTPS endpoint.
  // They (and @kubernetes/client-node) are loaded only when they run: an API-only server stays small.
  const runtimeKind = opts.runtime ?? defaultRuntimeKind();
  if (opts.runtime === undefined && runtimeKind === 'none') logger.warn({ reason: whyNoRuntime() }, 'no container runtime: running without a node agent');
  let client: ApiClient | undefined;
  const apiClient = async (): Promise<ApiClient> => {
    const { clientFromKubeconfigFile } = await import('../controllers/framework/kubeconfig.ts');
    return (client ??= clientFromKubeconfigFile(kubeconfigPath, { fieldManager: 'berth-server', ...(localSocket ? { socketPath: localSocket } : {}) }));
  };
  let controllers: RunningControllers | undefined;
  let nodeRuntime: NodeRuntime | undefined;
  let nodeNetwork: NodeNetwork | undefined;
  let agent: RunningAgent | undefined;
  let agentStreams: AgentStreams | undefined;
  const stopClients = async () => {
    await agentStreams?.close();
    await agent?.stop();
    await controllers?.stop();
    await nodeRuntime?.close();
    await nodeNetwork?.close();
    client?.close();
  };
  const stopServing = async () => {
    api.shutdown();
    await Promise.all(
      [server, localServer].map((s) =>
        new Promise<void>((resolve) => {
          if (!s.listening) return resolve();
          s.close(() => resolve());
          s.closeIdleConnections();
          setTimeout(() => s.closeAllConnections(), 2_000).unref();
        }),
      ),
    );
    if (localSocket) await rm(localSocket, { force: true });
    await gc.stop();
    await registry.close();
    await log.close();
  };
  try {
    if (opts.controllers !== false) {
      const { startControllers } = await import('./controllers.ts');
      controllers = await startControllers({
        client: await apiClient(),
        registry: metrics.registry,
        logger,
        ...(opts.nodeGracePeriodMs !== undefined ? { nodeGracePeriodMs: opts.nodeGracePeriodMs } : {}),
      });
    }
    if (runtimeKind !== 'none') {
      const { openNodeNetwork, openNodeRuntime, startAgent, startAgentStreams } = await import('./agent.ts');
      nodeRuntime = openNodeRuntime(runtimeKind, opts.dataDir, logger, { images });
      if (runtimeKind === 'runc' && opts.network !== false) nodeNetwork = await openNodeNetwork(opts.dataDir, logger, opts.network ?? {});
      agentStreams = await startAgentStreams({
        runtime: nodeRuntime.runtime,
        images: nodeRuntime.images,
        buildLogDir: nodeRuntime.buildLogDir,
        listen: '127.0.0.1:0',
        localSocket: join(opts.dataDir, 'agent.sock'),
        tls: { cert: pki.serverCertPem, key: pki.serverKeyPem },
        caPem: pki.caCertPem,
        logger,
      });
      localNode = { name: opts.nodeName ?? hostname(), endpoint: agentStreams.endpoint };
      agent = await startAgent({
        client: await apiClient(),
        runtime: nodeRuntime.runtime,
        images: nodeRuntime.images,
        builder: nodeRuntime.builder,
        buildLogDir: nodeRuntime.buildLogDir,
        registry: metrics.registry,
        logger,
        role: 'manager',
        volumesRoot: join(opts.dataDir, 'volumes'),
        ...(nodeNetwork ? { network: nodeNetwork } : {}),
        ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
        ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
      });
    }
  } catch (err) {
    await stopClients().catch(() => {});
    await stopServing();
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    url,
    port: actualPort,
    ...(localSocket ? { localSocket } : {}),
    kubeconfigPath,
    caPem: pki.caCertPem,
    token: pki.adminToken,
    store,
    logger,
    metrics,
    registry,
    ...(nodeRuntime ? { runtime: nodeRuntime.runtime, images: nodeRuntime.images } : {}),
    ...(agent ? { agent } : {}),
    ...(controllers ? { controllers } : {}),
    close: () =>
      (closed ??= (async () => {
        await stopClients().catch((err: unknown) => logger.error({ err }, 'stopping controllers failed'));
        await stopServing();
      })()),
  };
}

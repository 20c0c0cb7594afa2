/**
 * `berth server`: everything in one process for one machine. Wiring only: it opens
 * the SQLite store, makes the PKI and kubeconfig, builds the API server with auth,
 * logs and metrics, starts the garbage collector, and serves HTTPS.
 * The test harness starts servers through `startServer` too, so tests run what users run.
 */
import { mkdir } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openSqliteLog } from '../store/sqlite/sqlite-log.ts';
import { MemoryLog } from '../store/memory/memory-log.ts';
import type { RevisionLog } from '../store/revision-log.ts';
import { ObjectStore } from '../api/registry/object-store.ts';
import { createApiServer } from '../api/server/app.ts';
import { bearerAuth, PUBLIC_INFO_PATHS } from '../api/server/auth.ts';
import { ApiMetrics } from '../api/server/metrics.ts';
import { requestLogger } from '../api/server/request-log.ts';
import { GarbageCollector } from '../api/gc/garbage-collector.ts';
import { RESOURCES } from '../api/registry/resources.ts';
import { resourcePrefix } from '../api/registry/keys.ts';
import { ensurePki } from './pki.ts';
import { adminKubeconfigPath, writeKubeconfig } from './kubeconfig.ts';
import { createLogger } from './logger.ts';

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
}

/** A running `berth server`. */
export interface RunningServer {
  /** `https://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  readonly kubeconfigPath: string;
  readonly caPem: string;
  readonly token: string;
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  /** Stops serving, ends watches, stops background work and closes the store. */
  close(): Promise<void>;
}

/** Parses `host:port` or `[v6]:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be host:port, got ${JSON.stringify(listen)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`--listen port out of range: ${port}`);
  return { host: m[1] || '127.0.0.1', port };
}

/** Starts the all-in-one server and resolves once it is serving. */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:7443');
  const logger = opts.logger ?? createLogger({ level: opts.logLevel ?? 'info', name: 'berth' });
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const metrics = new ApiMetrics();

  const log: RevisionLog =
    opts.storage === 'memory'
      ? new MemoryLog()
      : openSqliteLog({
          path: join(opts.dataDir, 'berth.db'),
          onCommit: (n, s) => metrics.observeCommit(n, s),
          onCompact: (rows, s) => metrics.observeCompaction(rows, s),
        });
  const store = new ObjectStore({ log });
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
  const api = createApiServer({
    store,
    logger,
    authenticate: bearerAuth({
      tokens: new Map([[pki.adminToken, { user: 'admin', groups: ['system:masters'] }]]),
      anonymousPaths: PUBLIC_INFO_PATHS,
    }),
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `https://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${actualPort}`;
  const kubeconfigPath = adminKubeconfigPath(opts.dataDir);
  await writeKubeconfig(kubeconfigPath, { server: url, caPem: pki.caCertPem, token: pki.adminToken });
  logger.info({ url, kubeconfig: kubeconfigPath, dataDir: opts.dataDir }, 'berth server is serving');

  let closed: Promise<void> | undefined;
  return {
    url,
    port: actualPort,
    kubeconfigPath,
    caPem: pki.caCertPem,
    token: pki.adminToken,
    store,
    logger,
    metrics,
    close: () =>
      (closed ??= (async () => {
        api.shutdown();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 2_000).unref();
        });
        await gc.stop();
        await log.close();
      })()),
  };
}

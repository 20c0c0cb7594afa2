/**
 * The node agent: Node registration and heartbeat, the Container, Image and Volume
 * controllers of this node, and per-container stats metrics — what `berth agent` runs
 * alone and `berth server` runs in process. Wiring only.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { addContainerController } from '../controllers/container/index.ts';
import { EventRecorder, Manager, type ApiClient } from '../controllers/framework/index.ts';
import { addImageController } from '../controllers/image/index.ts';
import { addVolumeController } from '../controllers/volume/index.ts';
import { ContainerStatsCollector, NodeRegistration } from '../controllers/node/index.ts';
import { createStreamServer } from '../controllers/node/stream-server.ts';
import { STREAM_CA_ANNOTATION, STREAM_ENDPOINT_ANNOTATION, type NodeEndpoint } from '../api/server/node-proxy.ts';
import { ensurePki } from './pki.ts';
import { listenUnix, parseListen } from './listen.ts';
import type { ImageBuilder, ImageService, NetworkService, PortService, RegistryConfig, RuntimeService } from '../runtime/cri/index.ts';
import { DEFAULT_PORTS_TABLE, PortPublisher } from '../runtime/network/ports/index.ts';
import { lockHostNetwork, type InstanceLock } from './instance-lock.ts';
import { addNetworkController, sweepContainerNetworks } from '../controllers/network/index.ts';
import { Container } from '../controllers/framework/index.ts';
import { BridgeNetworkService, DEFAULT_NETWORK_TABLE } from '../runtime/network/index.ts';
import { NodeImageBuilder } from '../runtime/build/node-image-builder.ts';
import { ImageStore } from '../runtime/images/index.ts';
import { DEFAULT_CGROUP_PARENT, RuncRuntimeService } from '../runtime/server/index.ts';
import { FakeRuntimeService } from '../runtime/testing/fake-runtime-service.ts';
import { BERTH_VERSION } from './version.ts';


/** A node's runtime, image store and image builder, opened under a data directory. */
export interface NodeRuntime {
  readonly kind: 'runc' | 'fake';
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  /** Builds (and, with runc, commits) into `images`. */
  readonly builder: ImageBuilder;
  /** Where build logs are kept. */
  readonly buildLogDir: string;
  /** Stops watching; containers keep running. */
  close(): Promise<void>;
}

export interface OpenNodeRuntimeOptions {
  /** The store the server already opened for its registry; default `<dataDir>/images`. */
  readonly images?: ImageStore;
  /** How the node reaches registries (insecure hosts, extra CAs). */
  readonly registry?: RegistryConfig;
}

/**
 * Opens `<dataDir>/images` and, for `runc`, the runtime under `<dataDir>/runtime` with
 * cgroups under `/berth`; builds run RUN steps under `/berth-build`.
 */
export function openNodeRuntime(kind: 'runc' | 'fake', dataDir: string, logger: Logger, opts: OpenNodeRuntimeOptions = {}): NodeRuntime {
  const images = opts.images ?? new ImageStore({ root: join(dataDir, 'images'), ...(opts.registry ? { registry: opts.registry } : {}) });
  const buildLogDir = join(dataDir, 'build-logs');
  if (kind === 'fake') {
    return { kind, runtime: new FakeRuntimeService(), images, builder: new NodeImageBuilder({ store: images }), buildLogDir, close: async () => {} };
  }
  const runtime = new RuncRuntimeService({
    root: join(dataDir, 'runtime'),
    rootfs: images,
    cgroupParent: DEFAULT_CGROUP_PARENT,
    logger: logger.child({ component: 'runtime' }),
  });
  return { kind, runtime, images, builder: new NodeImageBuilder({ store: images, runtime }), buildLogDir, close: () => runtime.close() };
}

export interface AgentOptions {
  readonly client: ApiClient;
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  /** Builds and commits for Images; absent: those sources fail with a clear message. */
  readonly builder?: ImageBuilder;
  /** Where build logs are kept. */
  readonly buildLogDir?: string;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Default: the hostname. */
  readonly nodeName?: string;
  /** `spec.role` if the agent creates its Node. Default `worker`. */
  readonly role?: 'manager' | 'worker';
  /** Default 10 s. */
  readonly heartbeatIntervalMs?: number;
  /** Annotations to keep on the Node (`streamAnnotations` of a remote agent's stream server). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Where the node keeps local Volumes (`<dataDir>/volumes`); absent: no Volume controller, containers with volume mounts wait. */
  readonly volumesRoot?: string;
  /** The node's container networks (`openNodeNetwork`); absent: containers get loopback-only namespaces. */
  readonly network?: NodeNetwork;
}

/** A running node agent. */
export interface RunningAgent {
  readonly nodeName: string;
  readonly manager: Manager;
  readonly registration: NodeRegistration;
  /** Drains the controllers, then stops heartbeating. The runtime is the caller's to close. Idempotent. */
  stop(): Promise<void>;
}

/** Registers the node, then starts its controllers; resolves once their caches have synced. */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const { client, runtime, images, registry } = opts;
  const nodeName = opts.nodeName ?? hostname();
  const logger = opts.logger.child({ component: 'agent', node: nodeName });
  const registration = new NodeRegistration(
    {
      nodeName,
      role: opts.role ?? 'worker',
      agentVersion: BERTH_VERSION,
      ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    { client, runtime, log: logger },
  );
  const manager = new Manager({ client, registry, log: logger });
  const recorder = new EventRecorder({ client, component: 'berth-agent', host: nodeName, log: logger });
  const net = opts.network;
  if (net?.defaultNetwork) await net.service.ensureNetwork(net.defaultNetwork);
  addContainerController(manager, {
    client, runtime, images, nodeName, recorder, logger,
    ...(opts.volumesRoot ? { volumesRoot: opts.volumesRoot } : {}),
    ...(net ? { network: net.service, ports: net.ports, ...(net.defaultNetwork ? { defaultNetwork: net.defaultNetwork.key } : {}) } : {}),
  });
  if (net) {
    addNetworkController(manager, {
      client, network: net.service, nodeName, recorder, logger,
      ...(net.subnetPool ? { subnetPool: net.subnetPool } : {}),
      reservedSubnets: net.defaultNetwork ? [net.defaultNetwork.subnet] : [],
    });
  }
  if (opts.volumesRoot) addVolumeController(manager, { client, nodeName, volumesRoot: opts.volumesRoot, recorder, logger });
  addImageController(manager, {
    client, images, runtime, nodeName, recorder, logger,
    ...(opts.builder ? { builder: opts.builder } : {}),
    ...(opts.buildLogDir ? { buildLogDir: opts.buildLogDir } : {}),
  });
  new ContainerStatsCollector({ runtime, registry, log: logger });

  await registration.start();
  try {
    await manager.start();
  } catch (err) {
    await manager.stop();
    await registration.stop();
    throw err;
  }
  if (net) {
    const removed = await sweepContainerNetworks(net.service, manager.informer(Container, { fieldSelector: `spec.nodeName=${nodeName}` }), nodeName);
    if (removed.length) logger.warn({ removed }, 'removed container networks whose Container is gone');
  }
  logger.info({}, 'node agent started');
  let stopped: Promise<void> | undefined;
  return {
    nodeName,
    manager,
    registration,
    stop: () =>
      (stopped ??= (async () => {
        await manager.stop();
        await registration.stop();
      })()),
  };
}

export interface AgentStreamsOptions {
  readonly runtime: RuntimeService;
  /** Serves image exports. */
  readonly images?: ImageService;
  /** Serves the build logs kept there. */
  readonly buildLogDir?: string;
  /** `host:port` to listen on; port 0 picks a free one. */
  readonly listen: string;
  /** The bearer token the API server presents (see `startAgentStreams`). Default: a random one. */
  readonly token?: string;
  /** Serving certificate and key (PEM). */
  readonly tls: { readonly cert: string; readonly key: string };
  /** CA of `tls.cert`, published to the API server. */
  readonly caPem: string;
  /** URL the API server dials; default `https://<listen host>:<port>`. */
  readonly advertiseUrl?: string;
  /** Also serve on this Unix socket, for an API server on this machine (`berth server`'s own agent). */
  readonly localSocket?: string;
  readonly logger: Logger;
}

/** A node agent's stream server (logs, exec, attach), listening. */
export interface AgentStreams {
  /** How the API server reaches it: URL, CA and token. */
  readonly endpoint: NodeEndpoint;
  /** The Node annotations that tell a remote API server the endpoint and its CA. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Ends open streams and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts the agent's stream server, the apiserver → kubelet hop of `kubectl logs`
 * and `exec`. The API server authenticates with `token`: a remote agent uses the
 * bearer token of its own kubeconfig, which is the credential the API server holds
 * too (berth has one admin identity), so no new secret is shared.
 */
export async function startAgentStreams(opts: AgentStreamsOptions): Promise<AgentStreams> {
  const token = opts.token ?? randomBytes(32).toString('base64url');
  const streams = createStreamServer({
    runtime: opts.runtime,
    token,
    logger: opts.logger.child({ component: 'stream-server' }),
    tls: opts.tls,
    ...(opts.images ? { images: opts.images } : {}),
    ...(opts.buildLogDir ? { buildLogDir: opts.buildLogDir } : {}),
  });
  const { host, port } = parseListen(opts.listen, '--stream-listen');
  await new Promise<void>((resolve, reject) => {
    streams.server.once('error', reject);
    streams.server.listen(port, host, () => {
      streams.server.off('error', reject);
      resolve();
    });
  });
  const actual = (streams.server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  const url = opts.advertiseUrl ?? `https://${shownHost}:${actual}`;
  const local = opts.localSocket && (await listenUnix(streams.localServer, opts.localSocket).catch((err: unknown) => (opts.logger.warn({ err }, 'stream server: no local socket'), false))) ? opts.localSocket : undefined;
  opts.logger.info({ url, ...(local ? { localSocket: local } : {}) }, 'stream server listening');
  return {
    endpoint: { url, ca: opts.caPem, token, ...(local ? { socketPath: local } : {}) },
    annotations: { [STREAM_ENDPOINT_ANNOTATION]: url, [STREAM_CA_ANNOTATION]: opts.caPem },
    close: () => streams.close(),
  };
}

/**
 * The serving certificate of a remote agent's stream server: its own CA and
 * certificate under `<dataDir>/agent/pki/`, made at first start (as `berth server`
 * makes its own), with `hosts` as extra SANs.
 */
export async function ensureAgentPki(dataDir: string, hosts: readonly string[]): Promise<{ cert: string; key: string; caPem: string }> {
  const dir = join(dataDir, 'agent');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pki = await ensurePki(dir, { hosts: hosts.filter((h) => h !== '0.0.0.0' && h !== '::') });
  return { cert: pki.serverCertPem, key: pki.serverKeyPem, caPem: pki.caCertPem };
}

/** How the node builds container networks (`berth server`, `berth agent`). */
export interface NodeNetworkOptions {
  /** The network containers without `spec.networks` join; `false`: none (loopback only). Default berth0, 10.89.0.0/16, no outbound. */
  readonly defaultNetwork?: { readonly name?: string; readonly bridge?: string; readonly subnet?: string; readonly outbound?: boolean } | false;
  /** Range for Networks without `spec.subnet`. Default `10.90.0.0/16`. */
  readonly subnetPool?: string;
  /** Names of what berth makes on the host (tests use their own). Defaults `berth-`, `berth-`, `vb-`, `berth-net`. */
  readonly netnsPrefix?: string;
  readonly bridgePrefix?: string;
  readonly vethPrefix?: string;
  readonly nftTable?: string;
  /** nftables table of published ports. Default `berth-ports`. */
  readonly portsTable?: string;
}

/** A node's network service and its default network. */
export interface NodeNetwork {
  readonly service: NetworkService;
  /** Publishes containers' ports on this node (`<dataDir>/ports`). */
  readonly ports: PortService;
  readonly defaultNetwork?: { readonly key: string; readonly subnet: string; readonly outbound: boolean };
  readonly subnetPool?: string;
  /** Stops the DNS servers; bridges, namespaces and rules stay for the running containers. */
  close(): Promise<void>;
}

/**
 * Opens the node's networks under `<dataDir>/networks` (bridges, namespaces, IPAM, DNS,
 * nftables table `berth-net`) and repairs what a crash left behind. Needs root. The
 * bridge and table names are locked (`lockHostNetwork`) until `close`: another berth
 * process using them is refused.
 */
export async function openNodeNetwork(dataDir: string, logger: Logger, opts: NodeNetworkOptions = {}): Promise<NodeNetwork> {
  const d = opts.defaultNetwork === false ? undefined : { name: 'berth0', bridge: 'berth0', subnet: '10.89.0.0/16', outbound: false, ...opts.defaultNetwork };
  // One berth per set of host names: another on the same bridge or tables would reuse addresses and drop our rules.
  const lock = await lockHostNetwork({ ...(d ? { bridge: d.bridge } : {}), nftTables: [opts.nftTable ?? DEFAULT_NETWORK_TABLE, opts.portsTable ?? DEFAULT_PORTS_TABLE] }, dataDir);
  try {
    return await openLocked(dataDir, logger, opts, d, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function openLocked(
  dataDir: string, logger: Logger, opts: NodeNetworkOptions, d: { name: string; bridge: string; subnet: string; outbound: boolean } | undefined, lock: InstanceLock,
): Promise<NodeNetwork> {
  const service = await BridgeNetworkService.open({
    stateDir: join(dataDir, 'networks'),
    log: logger.child({ component: 'network' }),
    ...(d ? { bridgeNames: { [d.name]: d.bridge } } : {}),
    ...(opts.netnsPrefix ? { netnsPrefix: opts.netnsPrefix } : {}),
    ...(opts.bridgePrefix ? { bridgePrefix: opts.bridgePrefix } : {}),
    ...(opts.vethPrefix ? { vethPrefix: opts.vethPrefix } : {}),
    ...(opts.nftTable ? { nftTable: opts.nftTable } : {}),
  });
  // Published ports: re-applied for the containers whose networks survived, dropped for the others.
  const ports = new PortPublisher({ stateDir: join(dataDir, 'ports'), log: logger.child({ component: 'ports' }), ...(opts.portsTable ? { table: opts.portsTable } : {}) });
  const recovered = await ports.recover({ presentKeys: await service.listContainerNetworks() });
  logger.info({ forwarding: await ports.forwardingMode(), publications: recovered.publications.length, removed: recovered.removedKeys.length }, 'published ports recovered');
  return {
    service,
    ports,
    ...(d ? { defaultNetwork: { key: d.name, subnet: d.subnet, outbound: d.outbound } } : {}),
    ...(opts.subnetPool ? { subnetPool: opts.subnetPool } : {}),
    close: async () => {
      await ports.close();
      await service.close();
      await lock.release();
    },
  };
}

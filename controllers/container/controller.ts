/**
 * `addContainerController`: wires the `ContainerReconciler` of one node to a manager's
 * shared informers, the runtime's event stream and an adoption pass at start.
 */
import type { ImageService, NetworkService, PortService, RuntimeService } from '../../runtime/cri/index.ts';
import {
  Backoff,
  Container,
  enqueueSelf,
  Image,
  keyOf,
  Network,
  parseKey,
  realClock,
  sleep,
  type ApiClient,
  type Clock,
  type Controller,
  type EventRecorder,
  type Logger,
  type Manager,
  type Request,
  type SharedInformer,
} from '../framework/index.ts';
import type { KubeObject } from '../../api/types/index.ts';
import { AgentController, runWithManager, type Feed } from './agent-controller.ts';
import { HealthProber } from './health.ts';
import { normalizeImageReference } from './image-reference.ts';
import { LABEL_NAME, LABEL_NAMESPACE, LABEL_NODE } from './labels.ts';
import { ContainerReconciler } from './reconciler.ts';
import { Volume } from '../framework/index.ts';
import type { RestartBackoffOptions } from './restart-policy.ts';

/** Name of the controller (logs, metrics, queue). */
export const CONTAINER_CONTROLLER = 'container';
/** Index of the Container informer: normalised `spec.image` → Containers. */
export const IMAGE_REF_INDEX = 'container.berth.dev/image-ref';
/** Index of the Container informer: names of the Volumes in `spec.volumeMounts` → Containers. */
export const VOLUME_REF_INDEX = 'container.berth.dev/volume-ref';

export interface ContainerControllerDeps {
  readonly client: ApiClient;
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  readonly nodeName: string;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  /** Restart back-off; default 100 ms doubling to 10 s, reset after a 10 s run. Tests shorten it. */
  readonly backoff?: RestartBackoffOptions;
  /** Drift re-check of live containers (runtime events report exits at once). Default 60 s, ± 10 %. */
  readonly resyncMs?: number;
  /** Re-check of Containers waiting for their image. Default 5 s. */
  readonly imageRetryMs?: number;
  /** Workers (keys reconciled at once). Default 16: a reconcile is mostly waiting for two API round trips. */
  readonly workers?: number;
  readonly clock?: Clock;
  /** Where this node keeps local volumes (`<dataDir>/volumes`); absent: containers with `spec.volumeMounts` wait (`VolumesUnsupported`). */
  readonly volumesRoot?: string;
  /** The node's container networks (absent: loopback-only namespaces, `spec.networks` unimplemented). */
  readonly network?: NetworkService;
  /** Network key of the node's default network (see `NetworkService`); absent: containers without `spec.networks` get none. */
  readonly defaultNetwork?: string;
  /** Publishes `spec.ports`; absent: `spec.ports` is reported unimplemented. */
  readonly ports?: PortService;
}

/**
 * Adds the node agent's Container controller for `deps.nodeName` to `manager`:
 * it reconciles the Containers with `spec.nodeName=<node>`, is woken by changes to
 * them, by Images whose tags match their `spec.image`, and by runtime events (exits
 * within ~100 ms, no polling); at start it enqueues every Container that has runtime
 * containers on this node, so orphans are removed and survivors adopted.
 *
 * The controller starts by itself once the manager's informers have synced (after
 * `manager.start()`) and is stopped by `manager.stop()` (its own `stop()` works too).
 * Throws if called twice on the same manager for the same node.
 */
export function addContainerController(manager: Manager, deps: ContainerControllerDeps): Controller {
  const selectors = { fieldSelector: `spec.nodeName=${deps.nodeName}` };
  const containers = manager.informer(Container, selectors);
  containers.addIndexer(IMAGE_REF_INDEX, (c) => [normalizeImageReference(c.spec.image)]);
  const images = manager.informer(Image);
  const volumes = deps.volumesRoot ? manager.informer(Volume) : undefined;
  if (volumes) containers.addIndexer(VOLUME_REF_INDEX, (c) => [...new Set((c.spec.volumeMounts ?? []).map((m) => m.name))]);
  const networks = deps.network ? manager.informer(Network) : undefined;
  const log = deps.logger.child({ node: deps.nodeName });
  // Healthchecks: a change of a container's health status asks for its reconcile.
  let enqueue: (key: string) => void = () => undefined;
  const health = new HealthProber({ runtime: deps.runtime, onChange: (key) => enqueue(key), ...(deps.clock ? { clock: deps.clock } : {}) });
  const reconciler = new ContainerReconciler({
    health,
    containers,
    client: deps.client,
    runtime: deps.runtime,
    images: deps.images,
    nodeName: deps.nodeName,
    recorder: deps.recorder,
    ...(deps.backoff ? { backoff: deps.backoff } : {}),
    ...(deps.resyncMs !== undefined ? { resyncMs: deps.resyncMs } : {}),
    ...(deps.imageRetryMs !== undefined ? { imageRetryMs: deps.imageRetryMs } : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(volumes ? { volumes, volumesRoot: deps.volumesRoot } : {}),
    ...(deps.network ? { network: deps.network, networks, ...(deps.defaultNetwork ? { defaultNetwork: deps.defaultNetwork } : {}) } : {}),
    ...(deps.ports ? { ports: deps.ports } : {}),
  });
  const controller = new AgentController({
    name: CONTAINER_CONTROLLER,
    reconciler,
    workers: deps.workers ?? 16,
    log,
    metrics: manager.metrics,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ownWrites: { tracker: deps.client.writes, kind: Container, informers: [containers as unknown as SharedInformer<KubeObject>], maxWaitMs: 2_000 },
    feeds: [runtimeEventFeed(deps.runtime, deps.nodeName, log, deps.clock ?? realClock)],
  });
  enqueue = (key) => {
    const i = key.indexOf('/');
    controller.enqueue({ namespace: key.slice(0, i), name: key.slice(i + 1) });
  };
  const stopController = controller.stop.bind(controller);
  controller.stop = async () => {
    health.stopAll();
    await stopController();
  };
  controller.watch(containers, enqueueSelf);
  controller.watch(images, (img) => containersUsingImage(containers, img));
  // a Container waiting for its volumes (VolumesReady=False) goes on when they are Available
  if (volumes) controller.watch(volumes, (v) => containers.byIndex(VOLUME_REF_INDEX, v.metadata.name ?? '').filter((c) => c.metadata.namespace === v.metadata.namespace).map((c) => ({ namespace: c.metadata.namespace ?? '', name: c.metadata.name ?? '' })));
  // a Container waiting for its Network (NetworkNotFound/NotReady) goes on when it is ready
  if (networks) controller.watch(networks, (net) => containers.list(net.metadata.namespace).filter((c) => c.spec.networks?.some((n) => n.name === net.metadata.name)).map((c) => ({ namespace: c.metadata.namespace ?? '', name: c.metadata.name ?? '' })));
  runWithManager(manager, controller);
  return controller;
}

/** The tags an Image object answers to: `spec.tags`, or `<name>:latest`. */
export function imageTags(img: Image): string[] {
  const tags = img.spec?.tags?.length ? img.spec.tags : [`${img.metadata.name}:latest`];
  return tags.map(normalizeImageReference);
}

/** The Containers (in the cache) whose `spec.image` is one of `img`'s tags. */
export function containersUsingImage(containers: SharedInformer<Container>, img: Image): Request[] {
  return imageTags(img).flatMap((ref) => containers.byIndex(IMAGE_REF_INDEX, ref)).map((c) => ({ namespace: c.metadata.namespace ?? '', name: c.metadata.name ?? '' }));
}

/**
 * Enqueues the owner of every runtime event of this node. Subscribes first, then lists
 * the runtime once (the adoption pass: every Container key with runtime containers
 * here, so orphans are removed and survivors adopted); re-subscribes and re-lists with
 * back-off when the stream ends.
 */
function runtimeEventFeed(runtime: RuntimeService, nodeName: string, log: Logger, clock: Clock): Feed {
  const ownerOf = (labels: Readonly<Record<string, string>>): Request | undefined => {
    const ns = labels[LABEL_NAMESPACE];
    const name = labels[LABEL_NAME];
    if (ns === undefined || !name) return undefined;
    const node = labels[LABEL_NODE];
    return node === undefined || node === nodeName ? { namespace: ns, name } : undefined;
  };
  return async (controller, signal) => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 5_000 });
    while (!signal.aborted) {
      try {
        const events = runtime.events({ signal })[Symbol.asyncIterator]();
        const keys = new Set<string>();
        for (const c of await runtime.listContainers({ labels: { [LABEL_NODE]: nodeName } }, { signal })) {
          const owner = ownerOf(c.labels);
          if (owner) keys.add(keyOf(owner.namespace, owner.name));
        }
        for (const k of keys) controller.enqueue(parseKey(k));
        log.info({ keys: keys.size }, 'runtime listed: reconciling every Container with runtime containers on this node');
        for (let r = await events.next(); !r.done; r = await events.next()) {
          backoff.reset();
          const owner = ownerOf(r.value.labels);
          if (owner) controller.enqueue(owner);
        }
      } catch (err) {
        if (!signal.aborted) log.warn({ err: (err as Error).message }, 'runtime event stream failed; re-subscribing');
      }
      if (signal.aborted) return;
      await sleep(clock, backoff.nextDelayMs(), signal);
    }
  };
}

/**
 * The normalised Compose model → berth manifests (`berth compose convert` prints
 * them; `up` applies them). Deterministic: the same file and build contexts give the
 * same objects, so applying them again changes nothing.
 *
 * Names: Networks and Volumes `<project>-<key>` (or their `name:`; external ones are
 * referenced, not made), built Images `<project>-<service>`, Containers
 * `<project>-<service>-<n>` for n = 1…replicas (or `container_name`). Every object
 * carries `berth.dev/compose-project`; Containers and Images also
 * `berth.dev/compose-service`, Networks `berth.dev/compose-network`, Volumes
 * `berth.dev/compose-volume`. Compose `labels` that are valid Kubernetes labels
 * become labels, the others annotations. Each container joins its networks with the
 * service name as an alias, as Compose does.
 */
import type { Container, ContainerSpec, Image, Network, Volume } from '../../api/types/index.ts';
import { familiarString, normalizeReference, parseReference } from '../../runtime/images/reference.ts';
import { packContext, type PackedContext } from '../client/build-context.ts';
import { toRestart } from '../client/container-spec.ts';
import { ComposeError } from './interpolate.ts';
import { dependencyOrder, scopedName, type ComposeModel, type ServiceModel } from './model.ts';

export const PROJECT_LABEL = 'berth.dev/compose-project';
export const SERVICE_LABEL = 'berth.dev/compose-service';
export const NETWORK_LABEL = 'berth.dev/compose-network';
export const VOLUME_LABEL = 'berth.dev/compose-volume';
/** Annotation on built Images: the absolute build context directory. */
export const CONTEXT_ANNOTATION = 'berth.dev/compose-context';

/** The manifests of a project and what `up` needs besides them. */
export interface ComposePlan {
  readonly project: string;
  readonly networks: readonly Network[];
  readonly volumes: readonly Volume[];
  readonly images: readonly Image[];
  /** Service name → its Containers (empty with 0 replicas). */
  readonly containers: Readonly<Record<string, readonly Container[]>>;
  /** Services in dependency order. */
  readonly order: readonly string[];
  /** Build context archives by digest, to upload before the Images are applied. */
  readonly contexts: ReadonlyMap<string, PackedContext>;
}

export interface ConvertOptions {
  readonly namespace: string;
  /** Packs a build context (default `packContext`); tests pass a fake. */
  readonly pack?: (dir: string, dockerfile: string) => Promise<PackedContext>;
}

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isLabelKey = (k: string): boolean => {
  const slash = k.lastIndexOf('/');
  const name = slash < 0 ? k : k.slice(slash + 1);
  return LABEL_NAME.test(name) && (slash < 0 || (slash <= 253 && LABEL_PREFIX.test(k.slice(0, slash))));
};
const isLabelValue = (v: string): boolean => v === '' || LABEL_NAME.test(v);

/** Splits Compose labels into Kubernetes labels and annotations (values that are not valid labels). */
export function splitLabels(labels: Readonly<Record<string, string>>): { labels: Record<string, string>; annotations: Record<string, string> } {
  const out = { labels: {} as Record<string, string>, annotations: {} as Record<string, string> };
  for (const [k, v] of Object.entries(labels)) {
    if (isLabelKey(k) && isLabelValue(v)) out.labels[k] = v;
    else out.annotations[k] = v;
  }
  return out;
}

const meta = (name: string, namespace: string, own: Record<string, string>, extra: Readonly<Record<string, string>> = {}) => {
  const { labels, annotations } = splitLabels(extra);
  return { name, namespace, labels: { ...labels, ...own }, ...(Object.keys(annotations).length ? { annotations } : {}) };
};

const canonicalTag = (ref: string, where: string): string => {
  try {
    return familiarString(parseReference(normalizeReference(ref)));
  } catch (err) {
    throw new ComposeError(`${where}: ${(err as Error).message}`);
  }
};

/** The Container names of a service. */
export function containerNames(project: string, service: string, s: Pick<ServiceModel, 'replicas' | 'container_name'>): string[] {
  if (s.container_name) return s.replicas === 0 ? [] : [s.container_name];
  return Array.from({ length: s.replicas }, (_x, i) => `${scopedName(project, service)}-${i + 1}`);
}

/** The image reference a service's Containers run, and the tag of its built Image. */
export function serviceImage(project: string, service: string, s: Pick<ServiceModel, 'image' | 'build'>): string {
  if (s.build) return canonicalTag(s.image ?? scopedName(project, service), `services.${service}.image`);
  return s.image!;
}

function toContainerSpec(model: ComposeModel, service: string, s: ServiceModel): ContainerSpec {
  const spec: ContainerSpec = { image: serviceImage(model.name, service, s), state: 'Running', ...toRestart(s.restart) };
  if (s.build) spec.imagePullPolicy = 'Never';
  else if (s.pull_policy) spec.imagePullPolicy = ({ always: 'Always', missing: 'IfNotPresent', never: 'Never' } as const)[s.pull_policy];
  if (s.entrypoint) {
    spec.command = [...s.entrypoint];
    spec.args = [...(s.command ?? [])];
  } else if (s.command) spec.args = [...s.command];
  const env = Object.entries(s.environment);
  if (env.length) spec.env = env.map(([name, value]) => ({ name, value }));
  if (s.working_dir) spec.workingDir = s.working_dir;
  if (s.user) spec.user = s.user;
  if (s.hostname) spec.hostname = s.hostname;
  if (s.tty) spec.tty = true;
  if (s.stdin_open) spec.stdin = true;
  if (s.stop_signal) spec.stopSignal = s.stop_signal.startsWith('SIG') ? s.stop_signal : `SIG${s.stop_signal}`;
  if (s.stop_grace_period_seconds !== undefined) spec.stopGracePeriodSeconds = s.stop_grace_period_seconds;
  if (s.resources) spec.resources = { ...s.resources };
  if (s.ports.length) {
    spec.ports = s.ports.map((p) => ({
      containerPort: p.target,
      ...(p.published !== undefined ? { hostPort: p.published } : {}),
      ...(p.host_ip ? { hostIP: p.host_ip } : {}),
      ...(p.protocol === 'udp' ? { protocol: 'UDP' as const } : {}),
    }));
  }
  const volumeMounts: NonNullable<ContainerSpec['volumeMounts']> = [];
  const bindMounts: NonNullable<ContainerSpec['bindMounts']> = [];
  const tmpfs: NonNullable<ContainerSpec['tmpfs']> = [];
  for (const m of s.volumes) {
    if (m.type === 'volume') volumeMounts.push({ name: model.volumes[m.source]!.name, mountPath: m.target, ...(m.read_only ? { readOnly: true } : {}), ...(m.nocopy ? { noCopy: true } : {}) });
    else if (m.type === 'bind') bindMounts.push({ hostPath: m.source, mountPath: m.target, ...(m.read_only ? { readOnly: true } : {}) });
    else tmpfs.push({ mountPath: m.target, ...(m.size !== undefined ? { sizeBytes: m.size } : {}) });
  }
  if (volumeMounts.length) spec.volumeMounts = volumeMounts;
  if (bindMounts.length) spec.bindMounts = bindMounts;
  if (tmpfs.length) spec.tmpfs = tmpfs;
  if (s.network_mode) spec.networks = [{ name: s.network_mode }];
  else {
    spec.networks = Object.entries(s.networks).map(([key, n]) => ({
      name: model.networks[key]!.name,
      aliases: [...new Set([service, ...n.aliases])],
      ...(n.ipv4_address ? { ipv4Address: n.ipv4_address } : {}),
    }));
  }
  if (s.healthcheck) {
    const h = s.healthcheck;
    spec.healthcheck = {
      exec: [...h.test],
      ...(h.interval_seconds !== undefined ? { intervalSeconds: h.interval_seconds } : {}),
      ...(h.timeout_seconds !== undefined ? { timeoutSeconds: h.timeout_seconds } : {}),
      ...(h.retries !== undefined ? { retries: h.retries } : {}),
      ...(h.start_period_seconds !== undefined ? { startPeriodSeconds: h.start_period_seconds } : {}),
    };
  }
  return spec;
}

/**
 * The manifests of `model` in `namespace` (see the module comment). Packs each build
 * context to learn its digest (nothing is uploaded). Throws `ComposeError` for names
 * that collide.
 */
export async function toManifests(model: ComposeModel, opts: ConvertOptions): Promise<ComposePlan> {
  const ns = opts.namespace;
  const project = { [PROJECT_LABEL]: model.name };
  const networks: Network[] = Object.entries(model.networks)
    .filter(([, n]) => !n.external)
    .map(([key, n]) => ({
      apiVersion: 'berth.dev/v1', kind: 'Network',
      metadata: meta(n.name, ns, { ...project, [NETWORK_LABEL]: key }, n.labels),
      spec: { driver: 'bridge', outbound: !n.internal, ...(n.subnet ? { subnet: n.subnet } : {}), ...(n.gateway ? { gateway: n.gateway } : {}) },
    }) as Network);
  const volumes: Volume[] = Object.entries(model.volumes)
    .filter(([, v]) => !v.external)
    .map(([key, v]) => ({
      apiVersion: 'berth.dev/v1', kind: 'Volume',
      metadata: meta(v.name, ns, { ...project, [VOLUME_LABEL]: key }, v.labels),
      spec: { driver: 'local', ...(Object.keys(v.driver_opts).length ? { options: { ...v.driver_opts } } : {}) },
    }) as Volume);

  const pack = opts.pack ?? packContext;
  const contexts = new Map<string, PackedContext>();
  const images: Image[] = [];
  const containers: Record<string, Container[]> = {};
  const seen = new Map<string, string>();
  const claim = (kind: string, name: string, owner: string) => {
    const k = `${kind}/${name}`;
    if (seen.has(k)) throw new ComposeError(`${owner}: the ${kind} name ${name} is also used by ${seen.get(k)}`);
    seen.set(k, owner);
  };
  for (const o of [...networks, ...volumes]) claim(o.kind, o.metadata.name!, `${o.kind === 'Network' ? 'networks' : 'volumes'}.${o.metadata.labels![o.kind === 'Network' ? NETWORK_LABEL : VOLUME_LABEL]}`);

  for (const [service, s] of Object.entries(model.services).sort(([a], [b]) => a.localeCompare(b))) {
    const own = { ...project, [SERVICE_LABEL]: service.replace(/[^A-Za-z0-9._-]/g, '-') };
    if (s.build) {
      const packed = await pack(s.build.context, s.build.dockerfile).catch((err: unknown) => {
        throw new ComposeError(`services.${service}.build.context: ${s.build!.context}: ${(err as Error).message}`);
      });
      contexts.set(packed.digest, packed);
      const name = scopedName(model.name, service);
      claim('Image', name, `services.${service}`);
      images.push({
        apiVersion: 'berth.dev/v1', kind: 'Image',
        metadata: { name, namespace: ns, labels: own, annotations: { [CONTEXT_ANNOTATION]: s.build.context } },
        spec: {
          source: {
            build: {
              context: { archive: { digest: packed.digest } },
              ...(s.build.dockerfile !== 'Dockerfile' ? { dockerfile: s.build.dockerfile } : {}),
              ...(Object.keys(s.build.args).length ? { buildArgs: { ...s.build.args } } : {}),
              ...(s.build.target ? { target: s.build.target } : {}),
              ...(s.build.no_cache ? { noCache: true } : {}),
            },
          },
          tags: [serviceImage(model.name, service, s)],
        },
      } as Image);
    }
    const spec = toContainerSpec(model, service, s);
    containers[service] = containerNames(model.name, service, s).map((name) => {
      claim('Container', name, `services.${service}`);
      return { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: meta(name, ns, own, s.labels), spec: structuredClone(spec) } as Container;
    });
  }
  return { project: model.name, networks, volumes, images, containers, order: dependencyOrder(model.services), contexts };
}

/** Every manifest of a plan, in the order `up` applies them. */
export function allManifests(plan: ComposePlan): (Network | Volume | Image | Container)[] {
  return [...plan.networks, ...plan.volumes, ...plan.images, ...plan.order.flatMap((s) => plan.containers[s] ?? [])];
}

/**
 * The mapping from a Container object to the runtime's `ContainerConfig`, and the
 * spec fields berth accepts but does not act on yet.
 */
import type { ContainerConfig, Mount, Resources } from '../../runtime/cri/index.ts';
import type { Container } from '../framework/index.ts';
import {
  LABEL_BACKOFF_STEP,
  LABEL_GENERATION,
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_NODE,
  LABEL_RESTART_COUNT,
  LABEL_SPEC_HASH,
  LABEL_UID,
  specHash,
} from './labels.ts';
import { toCpus, toMemoryBytes } from '../framework/quantity.ts';
import { subPathProblem } from '../volume/sub-path.ts';

/** A spec that cannot be run until the user edits it; `field` names the culprit. */
export class InvalidSpecError extends Error {
  override readonly name = 'InvalidSpecError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** What a runtime container carries besides the spec: its place in the restart history, and what the node resolved. */
export interface RunInfo {
  readonly nodeName: string;
  readonly restartCount: number;
  readonly backoffStep: number;
  /** The bind mounts of `spec.volumeMounts` on this node (`resolveVolumeMounts`); absent: none yet. */
  readonly volumeMounts?: readonly Mount[];
}

const HOSTNAME_MAX = 63;

/**
 * The runtime config for `c`: command, args, env, workingDir, user, hostname (default:
 * the object's name, cut to 63 characters), tty, stdin, limits, stop signal, mounts
 * (`run.volumeMounts`, `bindMounts`, `tmpfs`) and berth's labels (`labels.ts`). The name is `<namespace>_<name>_<generation>`.
 * Pure; throws `InvalidSpecError` for a limit that is not a quantity.
 */
export function toContainerConfig(c: Container, run: RunInfo): ContainerConfig {
  const spec = c.spec;
  const ns = c.metadata.namespace ?? '';
  const name = c.metadata.name ?? '';
  const generation = c.metadata.generation ?? 0;
  const resources = toResources(spec.resources);
  const mounts = toMounts(spec, run);
  return {
    name: `${ns}_${name}_${generation}`,
    image: spec.image,
    ...(spec.command ? { command: [...spec.command] } : {}),
    ...(spec.args ? { args: [...spec.args] } : {}),
    ...(spec.env ? { env: spec.env.map((e) => ({ name: e.name, value: e.value ?? '' })) } : {}),
    ...(spec.workingDir ? { workingDir: spec.workingDir } : {}),
    ...(spec.user ? { user: spec.user } : {}),
    hostname: spec.hostname || name.slice(0, HOSTNAME_MAX).replace(/[.-]+$/, ''),
    ...(spec.tty ? { tty: true } : {}),
    ...(spec.tty && spec.consoleSize ? { consoleSize: { width: spec.consoleSize.width, height: spec.consoleSize.height } } : {}),
    ...(spec.stdin ? { stdin: true } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(resources ? { resources } : {}),
    ...(spec.stopSignal ? { stopSignal: spec.stopSignal } : {}),
    labels: {
      [LABEL_NAMESPACE]: ns,
      [LABEL_NAME]: name,
      [LABEL_UID]: c.metadata.uid ?? '',
      [LABEL_GENERATION]: String(generation),
      [LABEL_SPEC_HASH]: specHash(spec),
      [LABEL_NODE]: run.nodeName,
      [LABEL_RESTART_COUNT]: String(run.restartCount),
      [LABEL_BACKOFF_STEP]: String(run.backoffStep),
    },
  };
}

/**
 * Volume mounts (resolved by the node, `run.volumeMounts`), bind mounts of host paths
 * (admitted by the API server's allow-list) and tmpfs mounts with size and mode.
 * Throws `InvalidSpecError` for a volume subPath that is absolute or has `..`.
 */
function toMounts(spec: Container['spec'], run: RunInfo): Mount[] {
  for (const [i, m] of (spec.volumeMounts ?? []).entries()) {
    const problem = m.subPath ? subPathProblem(m.subPath) : undefined;
    if (problem) throw new InvalidSpecError(`spec.volumeMounts[${i}].subPath`, problem);
  }
  return [
    ...(run.volumeMounts ?? []),
    ...(spec.bindMounts ?? []).map((b): Mount => ({ containerPath: b.mountPath, hostPath: b.hostPath, type: 'bind', ...(b.readOnly ? { readonly: true } : {}) })),
    ...(spec.tmpfs ?? []).map((t): Mount => ({
      containerPath: t.mountPath,
      type: 'tmpfs',
      ...(t.sizeBytes ? { sizeBytes: t.sizeBytes } : {}),
      ...(t.mode !== undefined ? { mode: t.mode } : {}),
    })),
  ];
}

function toResources(r: Container['spec']['resources']): Resources | undefined {
  if (!r) return undefined;
  const out: { memoryBytes?: number; cpus?: number; pids?: number } = {};
  try {
    if (r.memory !== undefined && r.memory !== null) out.memoryBytes = toMemoryBytes(r.memory);
  } catch (err) {
    throw new InvalidSpecError('spec.resources.memory', (err as Error).message);
  }
  try {
    if (r.cpus !== undefined && r.cpus !== null) out.cpus = toCpus(r.cpus);
  } catch (err) {
    throw new InvalidSpecError('spec.resources.cpus', (err as Error).message);
  }
  if (r.pids !== undefined) out.pids = r.pids;
  return Object.keys(out).length ? out : undefined;
}

/**
 * Spec fields that are accepted but not acted on yet (they arrive with issue 5), in
 * the order of the schema: `ports`, `networks`, `healthcheck`. Empty when the spec uses none of them.
 */
export function unimplementedFields(spec: Container['spec']): string[] {
  const out: string[] = [];
  if (spec.ports?.length) out.push('spec.ports');
  if (spec.networks?.length) out.push('spec.networks');
  if (spec.healthcheck) out.push('spec.healthcheck');
  return out;
}

/**
 * The `berth compose` verbs: `config` and `convert` (offline: the normalised model,
 * the manifests), `up [-d]`, `down [-v] [--rmi local|all]`, `ps [-a]`, `logs [-f]`. Each
 * resolves with the process exit code. Progress goes to stderr, as Compose prints it.
 */
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { Container as ContainerKind } from '../../controllers/framework/resource-kind.ts';
import type { Connection } from '../client/connection.ts';
import { containerRow } from '../client/containers.ts';
import { renderFormat } from '../client/format.ts';
import { copyLogs } from '../client/streams.ts';
import { down, projectContainers, up } from './apply.ts';
import { allManifests, SERVICE_LABEL, toManifests, type ComposePlan } from './convert.ts';
import { loadCompose, type LoadedCompose, type LoadOptions } from './load.ts';
import { toComposeModel, type ComposeModel } from './model.ts';

/** `-f` (repeatable: the files are merged in order) and `-p`, given before the verb. */
export interface ProjectFlags {
  readonly file?: readonly string[] | string;
  readonly projectName?: string;
}

type Out = (s: string) => void;
const progress = (line: string) => void process.stderr.write(`${line}\n`);

function loadOptions(flags: ProjectFlags): LoadOptions {
  const files = flags.file === undefined ? [] : Array.isArray(flags.file) ? flags.file : [flags.file as string];
  return { files, ...(flags.projectName ? { projectName: flags.projectName } : {}) };
}

/** Loads and normalises the project the flags name. */
export async function loadModel(flags: ProjectFlags): Promise<{ loaded: LoadedCompose; model: ComposeModel }> {
  const loaded = await loadCompose(loadOptions(flags));
  return { loaded, model: await toComposeModel(loaded) };
}

/** The project name alone (for `down`, `ps`, `logs`: the file need not be valid for `-p`). */
async function projectName(flags: ProjectFlags): Promise<string> {
  if (flags.projectName && flags.file === undefined) {
    const { toProjectName } = await import('./load.ts');
    return toProjectName(flags.projectName);
  }
  return (await loadCompose(loadOptions(flags))).name;
}

const toYamlDocs = (objs: readonly object[]): string => objs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');

/** `config`: the normalised Compose model as YAML. */
export async function config(flags: ProjectFlags, out: Out): Promise<number> {
  const { model } = await loadModel(flags);
  out(stringify({ name: model.name, services: model.services, networks: model.networks, volumes: model.volumes }, { lineWidth: 0 }));
  return 0;
}

/** `convert`: the berth manifests as multi-document YAML, for Git. */
export async function convert(flags: ProjectFlags, namespace: string, out: Out): Promise<number> {
  const { model } = await loadModel(flags);
  out(toYamlDocs(allManifests(await toManifests(model, { namespace }))));
  return 0;
}

/** `up [-d]`: applies the project; without `-d` follows the logs until Ctrl-C, which stops the containers. */
export async function composeUp(conn: Connection, flags: ProjectFlags & { detach?: boolean; waitTimeout?: string }, out: Out): Promise<number> {
  const { model } = await loadModel(flags);
  const plan: ComposePlan = await toManifests(model, { namespace: conn.namespace });
  const dependsOn = Object.fromEntries(Object.entries(model.services).map(([n, s]) => [n, s.depends_on]));
  await up(conn, plan, dependsOn, { progress, ...(flags.waitTimeout ? { timeoutMs: Number(flags.waitTimeout) * 1000 } : {}) });
  if (flags.detach) return 0;
  const names = plan.order.flatMap((s) => (plan.containers[s] ?? []).map((c) => c.metadata.name!));
  const abort = new AbortController();
  const onInterrupt = () => {
    progress('Gracefully stopping... (press Ctrl+C again to force)');
    process.off('SIGINT', onInterrupt);
    process.once('SIGINT', () => process.exit(130));
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  try {
    await followLogs(conn, names, { follow: true }, out, abort.signal);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  if (abort.signal.aborted) {
    for (const n of names) {
      await conn.client.patch(ContainerKind, conn.namespace, n, { spec: { state: 'Stopped' } }).catch(() => {});
      progress(` Container ${n}  Stopped`);
    }
    return 130;
  }
  return 0;
}

/** `down [-v] [--rmi local|all]`. */
export async function composeDown(conn: Connection, flags: ProjectFlags & { volumes?: boolean; rmi?: string }): Promise<number> {
  const rmiFlag = flags.rmi;
  if (rmiFlag !== undefined && rmiFlag !== 'local' && rmiFlag !== 'all') throw new Error(`--rmi ${rmiFlag}: must be local or all`);
  await down(conn, await projectName(flags), { volumes: flags.volumes ?? false, ...(rmiFlag ? { images: rmiFlag } : {}), progress });
  return 0;
}

const PS_HEADERS: Record<string, string> = { Name: 'NAME', Image: 'IMAGE', Command: 'COMMAND', Service: 'SERVICE', RunningFor: 'CREATED', Status: 'STATUS', Ports: 'PORTS' };

/** `ps [-a] [-q] [--format]`: the project's containers (running ones unless `-a`). */
export async function composePs(conn: Connection, flags: ProjectFlags & { all?: boolean; quiet?: boolean; format?: string }, out: Out): Promise<number> {
  const now = Date.now();
  const rows = (await projectContainers(conn, await projectName(flags)))
    .map((c): Record<string, unknown> => ({ ...containerRow(c, now), Name: c.metadata.name!, Service: c.metadata.labels?.[SERVICE_LABEL] ?? '' }))
    .filter((r) => flags.all || r.State === 'running' || r.State === 'paused' || r.State === 'restarting');
  if (flags.quiet) out(rows.map((r) => `${String(r.ID)}\n`).join(''));
  else out(renderFormat(flags.format ?? 'table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}', rows, PS_HEADERS));
  return 0;
}

/** A stream that writes whole lines to `out`, each prefixed (`web-1  | `). */
class PrefixedLines extends Writable {
  private rest = '';
  constructor(private readonly prefix: string, private readonly out: Out) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    const text = this.rest + chunk.toString('utf8');
    const lines = text.split('\n');
    this.rest = lines.pop()!;
    if (lines.length) this.out(lines.map((l) => `${this.prefix}${l}\n`).join(''));
    cb();
  }
  override _final(cb: () => void): void {
    if (this.rest) this.out(`${this.prefix}${this.rest}\n`);
    cb();
  }
}

async function followLogs(conn: Connection, names: readonly string[], opts: { follow?: boolean; tail?: number; timestamps?: boolean }, out: Out, signal?: AbortSignal): Promise<void> {
  const width = Math.max(0, ...names.map((n) => n.length));
  await Promise.all(names.map(async (n) => {
    const sink = new PrefixedLines(`${n.padEnd(width)}  | `, out);
    await copyLogs(conn, n, { follow: opts.follow ?? false, timestamps: opts.timestamps ?? false, ...(opts.tail !== undefined ? { tailLines: opts.tail } : {}) }, sink, signal);
    await new Promise<void>((r) => sink.end(r));
  }));
}

/** `logs [-f] [--tail N] [-t] [SERVICE…]`: the project's container logs, each line prefixed with its container. */
export async function composeLogs(conn: Connection, flags: ProjectFlags & { follow?: boolean; tail?: string; timestamps?: boolean }, services: readonly string[], out: Out): Promise<number> {
  const ctrs = await projectContainers(conn, await projectName(flags));
  const known = new Set(ctrs.map((c) => c.metadata.labels?.[SERVICE_LABEL]));
  for (const s of services) if (!known.has(s)) throw new Error(`no such service: ${s}`);
  const names = ctrs.filter((c) => services.length === 0 || services.includes(c.metadata.labels?.[SERVICE_LABEL] ?? '')).map((c) => c.metadata.name!);
  const tail = flags.tail === undefined || flags.tail === 'all' ? undefined : Number(flags.tail);
  await followLogs(conn, names, { follow: flags.follow ?? false, timestamps: flags.timestamps ?? false, ...(tail !== undefined ? { tail } : {}) }, out);
  return 0;
}

/**
 * `build`: Dockerfile + context → an OCI image in the image store, as
 * `docker build` makes it. See README.md for the flow; in short, each stage
 * keeps a list of layer directories, every filesystem step (RUN, COPY, ADD,
 * WORKDIR) mounts them as overlayfs lowerdirs with a fresh upper directory,
 * changes the merged tree (runc for RUN), and turns the upper directory into
 * a layer blob (`writeLayerFromDir`); config steps change the image config.
 * Every step goes through the build cache (`cache.ts`).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { CallOptions, ImageId } from '../cri/types.ts';
import type { Lease } from '../images/content-store.ts';
import { sha256Of, type Digest } from '../images/digest.ts';
import type { ImageStore } from '../images/image-store.ts';
import { writeLayerFromDir } from '../images/layer-diff.ts';
import { MEDIA_TYPE, hostPlatform, parseImageConfig, parseManifest, type Descriptor, type ImageManifest } from '../images/oci.ts';
import { normalizeReference, parseReference } from '../images/reference.ts';
import { decompress, detectCompression, extractTar } from '../images/unpack.ts';
import { mountOverlay, unmountOverlay } from '../oci/overlay.ts';
import { resolveUser } from '../oci/spec.ts';
import { GlobalArgs, StageVars } from './args.ts';
import { BuildCache, type CacheEntry, type CachedLayer } from './cache.ts';
import { hashSource, matchSources, prepareContext, type BuildContext, type PreparedContext, type SourceMatch } from './context.ts';
import { copyDestination, copyInto } from './copy.ts';
import { DockerfileError, parseDockerfile, splitStages, type Instruction, type Stage } from './dockerfile.ts';
import { RUN_MOUNT_POINTS, runStep } from './run-step.ts';
import { mkdirInRoot, resolveInRoot } from './scoped-path.ts';
import { fetchUrl } from './fetch-url.ts';
import { processWord, processWords, splitWords, type Variables } from './substitute.ts';

export interface BuildOptions extends CallOptions {
  readonly store: ImageStore;
  readonly context: BuildContext;
  /** The Dockerfile's path inside the context. Default `Dockerfile`. */
  readonly dockerfile?: string;
  /** The Dockerfile's text, instead of reading it from the context. */
  readonly dockerfileText?: string;
  /** The stage to build (by name); default the last. */
  readonly target?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** References for the result (`app:1`); may be empty. */
  readonly tags?: readonly string[];
  /** Run every step even when cached (results are still cached). */
  readonly noCache?: boolean;
  /** RUN's network: `none` (default, loopback only) or `host`; `host` also allows `RUN --network=host`. */
  readonly network?: 'none' | 'host';
  /** Called with each log line (steps, command output), in order. */
  readonly onLog?: (line: string) => void;
  /** Also append the log to this file. */
  readonly logFile?: string;
  /** runc state directory. Default `<store root>/build-runc`. */
  readonly runcRoot?: string;
  readonly runcBinary?: string;
  /** cgroup under which each RUN gets its own. Default `/berth-build`. */
  readonly cgroupParent?: string;
  /** Prefix of runc container IDs. Default `build-`. */
  readonly containerIdPrefix?: string;
}

/** What one step did. */
export interface StepResult {
  /** 1-based, over the steps of the stages built. */
  readonly index: number;
  readonly line: number;
  /** The instruction as written (joined). */
  readonly instruction: string;
  /** True when taken from the cache (always false for FROM). */
  readonly cached: boolean;
  readonly durationMs: number;
  /** The layer the step added, if any. */
  readonly layer?: Digest;
}

export interface BuildResult {
  readonly imageId: ImageId;
  readonly manifestDigest: Digest;
  readonly steps: readonly StepResult[];
  /** Steps (other than FROM) taken from the cache. */
  readonly cachedSteps: number;
  /** Every log line, as given to `onLog`. */
  readonly log: readonly string[];
}

/** A step that failed; `line` is the Dockerfile line, `exitCode` set for a failing RUN. */
export class BuildStepError extends RuntimeError {
  constructor(
    readonly step: number,
    readonly totalSteps: number,
    readonly line: number,
    readonly instruction: string,
    message: string,
    readonly exitCode?: number,
    options?: ErrorOptions,
  ) {
    super('InvalidArgument', `step ${step}/${totalSteps} (Dockerfile line ${line}) ${instruction}: ${message}`, options);
  }
}

interface LayerState extends CachedLayer {
  /** Unpacked directory usable as an overlay lowerdir. */
  readonly dir: string;
}

interface HistoryEntry {
  created: string;
  created_by: string;
  comment?: string;
  empty_layer?: boolean;
  author?: string;
}

type ConfigBody = Record<string, unknown> & {
  Env?: string[];
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: Record<string, unknown>;
  Shell?: string[];
  OnBuild?: string[] | null;
};

interface StageState {
  readonly stage: Stage;
  layers: LayerState[];
  config: ConfigBody;
  history: HistoryEntry[];
  author?: string;
  vars: StageVars;
  /** Cache key of the last step. */
  key: string;
  cmdSetInStage: boolean;
  created?: string;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** Durations as HEALTHCHECK flags take them (`30s`, `1m30s`, `500ms`) → nanoseconds. */
export function parseDurationNs(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unit[m[2]!]!;
    end = re.lastIndex;
  }
  if (s === '' || end !== s.length) throw new Error(`invalid duration ${JSON.stringify(s)}`);
  return Math.round(total);
}

/** EXPOSE words (`80`, `80/udp`, `8000-8002/tcp`) → `port/proto` keys. */
export function exposedPortKeys(word: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (!m) throw new Error(`invalid port ${JSON.stringify(word)}`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || to < from) throw new Error(`invalid port range ${JSON.stringify(word)}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const out: string[] = [];
  for (let p = from; p <= to; p++) out.push(`${p}/${proto}`);
  return out;
}

/** `KEY=VALUE …` (or the legacy `KEY value`) of ENV and LABEL, substituted. */
function parseKeyValues(ins: Instruction, vars: Variables, escape: string): [string, string][] {
  const words = splitWords(ins.args, escape);
  if (words.length > 0 && !words[0]!.includes('=')) {
    if (words.length < 2) throw new DockerfileError(ins.line, `${ins.keyword} must have two arguments`);
    const rest = ins.args.slice(ins.args.indexOf(words[0]!) + words[0]!.length).trim();
    return [[processWord(words[0]!, vars, escape), processWord(rest, vars, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new DockerfileError(ins.line, `${ins.keyword} names can not be blank and need a value: ${JSON.stringify(w)}`);
    return [processWord(w.slice(0, eq), vars, escape), processWord(w.slice(eq + 1), vars, escape)];
  });
}

const shellOr = (ins: Instruction, shell: readonly string[]): string[] => (ins.json ? [...ins.json] : [...shell, ins.args]);

function checkFlags(ins: Instruction, allowed: readonly string[]): void {
  for (const f of ins.flags.keys()) {
    if (!allowed.includes(f)) throw new DockerfileError(ins.line, `unknown flag: --${f} for ${ins.keyword}`);
  }
}

const isoNow = (): string => new Date().toISOString();

/**
 * Builds the image and records it in the store under `opts.tags`. Streams the
 * log through `onLog`. Rejects with `DockerfileError` (parse errors, with the
 * line), `BuildStepError` (a failing step: its number, line and, for RUN, the
 * exit code), `NotFound` (base image, context path), `Unavailable` (aborted).
 * Every mount, runc container and cgroup it made is gone when it settles.
 */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  const builder = new Builder(opts);
  try {
    return await builder.run();
  } finally {
    await builder.close();
  }
}

class Builder {
  private readonly log: string[] = [];
  private readonly cache: BuildCache;
  private readonly workRoot: string;
  private readonly runcRoot: string;
  private readonly cgroupParent: string;
  private readonly idPrefix: string;
  private logStream?: ReturnType<typeof createWriteStream>;
  private context?: PreparedContext;
  private lease?: Lease;
  private tmp?: string;
  private escape = '\\';
  private readonly states = new Map<number, StageState>();
  private readonly steps: StepResult[] = [];
  private totalSteps = 0;
  private stepIndex = 0;

  constructor(private readonly opts: BuildOptions) {
    this.cache = new BuildCache({ root: opts.store.root });
    this.workRoot = join(opts.store.root, 'build-tmp');
    this.runcRoot = opts.runcRoot ?? join(opts.store.root, 'build-runc');
    this.cgroupParent = opts.cgroupParent ?? '/berth-build';
    this.idPrefix = opts.containerIdPrefix ?? 'build-';
    if (opts.logFile) {
      // The log of the latest build of this file's image; a log that cannot be written never fails the build.
      mkdirSync(dirname(opts.logFile), { recursive: true });
      this.logStream = createWriteStream(opts.logFile, { flags: 'w' });
      this.logStream.on('error', () => (this.logStream = undefined));
    }
  }

  private emit(line: string): void {
    this.log.push(line);
    this.opts.onLog?.(line);
    this.logStream?.write(`${line}\n`);
  }

  async close(): Promise<void> {
    this.lease?.release();
    await this.context?.dispose().catch(() => undefined);
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true }).catch(() => undefined);
    if (this.logStream) await new Promise<void>((resolve) => this.logStream!.end(resolve));
  }

  async run(): Promise<BuildResult> {
    const { opts } = this;
    const store = await opts.store.content();
    this.lease = store.lease();
    await mkdir(this.workRoot, { recursive: true });
    this.tmp = await mkdtemp(join(this.workRoot, 'b-'));
    const tags = (opts.tags ?? []).map((t) => parseReference(t));
    this.context = await prepareContext(opts.context, {
      tmpDir: this.tmp,
      ...(opts.dockerfile && { dockerfile: opts.dockerfile }),
      ...(opts.signal && { signal: opts.signal }),
    });
    const text = opts.dockerfileText ?? (await readFile(await resolveInRoot(this.context.root, opts.dockerfile ?? 'Dockerfile'), 'utf8').catch((err: unknown) => {
      throw new RuntimeError('NotFound', `Dockerfile ${JSON.stringify(opts.dockerfile ?? 'Dockerfile')} not found in the build context`, { cause: err });
    }));
    const df = parseDockerfile(text);
    this.escape = df.escape;
    const { metaArgs, stages } = splitStages(df);
    const global = new GlobalArgs(opts.buildArgs ?? {}, this.escape);
    for (const a of metaArgs) global.declare(a.args);

    const targetIndex = opts.target === undefined ? stages.length - 1 : stages.findIndex((s) => s.name === opts.target!.toLowerCase());
    if (targetIndex < 0) throw new RuntimeError('InvalidArgument', `target stage ${JSON.stringify(opts.target)} could not be found`);
    const needed = this.neededStages(stages, targetIndex, global);
    this.totalSteps = needed.reduce((n, i) => n + 1 + stages[i]!.instructions.length, 0);

    for (const i of needed) await this.buildStage(stages[i]!, stages, global);
    for (const name of global.unconsumed()) this.emit(`[Warning] One or more build-args [${name}] were not consumed`);

    const final = this.states.get(targetIndex)!;
    const result = await this.writeImage(final, tags);
    this.emit(`Successfully built ${result.imageId.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    for (const t of opts.tags ?? []) this.emit(`Successfully tagged ${t}`);
    return { ...result, steps: this.steps, cachedSteps: this.steps.filter((s) => s.cached).length, log: this.log };
  }

  /** The stages the target depends on (FROM <stage>, COPY --from), in Dockerfile order. */
  private neededStages(stages: readonly Stage[], target: number, global: GlobalArgs): number[] {
    const need = new Set<number>();
    const visit = (i: number): void => {
      if (need.has(i)) return;
      need.add(i);
      const s = stages[i]!;
      const base = this.stageRef(stages, processWord(s.from.args.split(/\s+/)[0]!, global.visible(), this.escape), i);
      if (base !== undefined) visit(base);
      for (const ins of s.instructions) {
        const from = ins.flags.get('from');
        if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && from !== undefined) {
          const ref = this.stageRef(stages, from, i);
          if (ref !== undefined) visit(ref);
        }
      }
    };
    visit(target);
    return [...need].sort((a, b) => a - b);
  }

  /** The index of the earlier stage `name` names (by name or number), else undefined (an image). */
  private stageRef(stages: readonly Stage[], name: string, before: number): number | undefined {
    const lower = name.toLowerCase();
    const byName = stages.findIndex((s) => s.name === lower);
    if (byName >= 0 && byName < before) return byName;
    if (/^\d+$/.test(name)) {
      const n = Number(name);
      if (n < before) return n;
      throw new RuntimeError('InvalidArgument', `stage index ${n} refers to the current or a later stage`);
    }
    return undefined;
  }

  private startStep(ins: Instruction): number {
    this.stepIndex++;
    this.emit(`Step ${this.stepIndex}/${this.totalSteps} : ${ins.original}`);
    return this.stepIndex;
  }

  private fail(ins: Instruction, message: string, exitCode?: number, cause?: unknown): BuildStepError {
    return new BuildStepError(this.stepIndex, this.totalSteps, ins.line, ins.original, message, exitCode, cause === undefined ? undefined : { cause });
  }

  private async buildStage(stage: Stage, stages: readonly Stage[], global: GlobalArgs): Promise<void> {
    const started = Date.now();
    const index = this.startStep(stage.from);
    const fromIns = stage.from;
    checkFlags(fromIns, ['platform']);
    const platform = fromIns.flags.get('platform');
    if (platform !== undefined) {
      const p = processWord(platform, global.visible(), this.escape);
      const host = hostPlatform();
      if (p !== `${host.os}/${host.architecture}` && p !== host.os) {
        throw this.fail(fromIns, `platform ${JSON.stringify(p)} is not this node's (${host.os}/${host.architecture}); cross-platform builds are not supported`);
      }
    }
    const baseName = processWord(fromIns.args.split(/\s+/)[0]!, global.visible(), this.escape);
    if (baseName === '') throw new DockerfileError(fromIns.line, 'base name (FROM) should not be blank');
    const ref = this.stageRef(stages, baseName, stage.index);
    let state: StageState;
    if (ref !== undefined) {
      const base = this.states.get(ref)!;
      state = {
        stage, layers: [...base.layers], config: structuredClone(base.config), history: [...base.history],
        ...(base.author !== undefined && { author: base.author }),
        vars: new StageVars(global, base.config.Env ?? [], this.escape), key: base.key, cmdSetInStage: false,
        ...(base.created !== undefined && { created: base.created }),
      };
      this.emit(` ---> stage ${base.stage.name ?? base.stage.index}`);
    } else if (baseName.toLowerCase() === 'scratch') {
      state = { stage, layers: [], config: {}, history: [], vars: new StageVars(global, [], this.escape), key: sha256Of('scratch'), cmdSetInStage: false };
      this.emit(' ---> scratch');
    } else {
      state = await this.baseImageState(stage, fromIns, baseName, global);
    }
    this.states.set(stage.index, state);
    this.steps.push({ index, line: fromIns.line, instruction: fromIns.original, cached: false, durationMs: Date.now() - started });
    const onBuild = state.config.OnBuild;
    if (onBuild && onBuild.length > 0 && ref === undefined) {
      this.emit(`[Warning] ${baseName} has ONBUILD triggers; berth does not run them: ${onBuild.join('; ')}`);
    }
    if (ref === undefined) state.config.OnBuild = null;
    for (const ins of stage.instructions) {
      this.opts.signal?.throwIfAborted();
      await this.step(state, ins, stages);
    }
  }

  private async baseImageState(stage: Stage, ins: Instruction, name: string, global: GlobalArgs): Promise<StageState> {
    const { store } = this.opts;
    let runnable;
    try {
      runnable = await store.resolveForRun(name, this.callOpts());
    } catch (err) {
      if (!isRuntimeError(err, 'NotFound')) throw this.fail(ins, (err as Error).message, undefined, err);
      try {
        this.emit(` ---> pulling ${name}`);
        await store.pullImage(name, undefined, this.callOpts());
        runnable = await store.resolveForRun(name, this.callOpts());
      } catch (pullErr) {
        throw this.fail(ins, `base image ${JSON.stringify(name)} is not in the image store and could not be pulled: ${(pullErr as Error).message}`, undefined, pullErr);
      }
    }
    const content = await store.content();
    const record = content.refDb.images[runnable.image.id];
    if (!record) throw this.fail(ins, `base image ${name} disappeared during the build`);
    const manifest = parseManifest(await content.readBlob(record.manifestDigest), `manifest ${record.manifestDigest}`);
    const rawConfig = JSON.parse((await content.readBlob(record.id as string as Digest)).toString('utf8')) as Record<string, unknown>;
    const parsed = parseImageConfig(Buffer.from(JSON.stringify(rawConfig)), `config ${record.id}`);
    const layers: LayerState[] = manifest.layers.map((l: Descriptor, i: number) => {
      this.lease!.add(l.digest);
      return { digest: l.digest, diffId: parsed.rootfs.diff_ids[i]!, size: l.size, mediaType: l.mediaType, dir: runnable.layerDirs[i]! };
    });
    this.lease!.add(record.id);
    const config = structuredClone((rawConfig.config ?? {}) as ConfigBody);
    this.emit(` ---> ${record.id.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    return {
      stage, layers, config,
      history: Array.isArray(rawConfig.history) ? (rawConfig.history as HistoryEntry[]) : [],
      ...(typeof rawConfig.author === 'string' && { author: rawConfig.author }),
      vars: new StageVars(global, config.Env ?? [], this.escape),
      key: sha256Of(`image ${record.id}`),
      cmdSetInStage: false,
      ...(typeof rawConfig.created === 'string' && { created: rawConfig.created }),
    };
  }

  private callOpts(): CallOptions {
    return this.opts.signal ? { signal: this.opts.signal } : {};
  }

  /** One instruction after FROM. */
  private async step(state: StageState, ins: Instruction, stages: readonly Stage[]): Promise<void> {
    const started = Date.now();
    const index = this.startStep(ins);
    const vars = state.vars.substitution();
    const sub = (w: string): string => processWord(w, vars, this.escape);
    const c = state.config;
    let layerDigest: Digest | undefined;
    let cached = false;
    const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof BuildStepError || err instanceof DockerfileError || (err as Error).name === 'AbortError') throw err;
        if (isRuntimeError(err, 'Unavailable') && this.opts.signal?.aborted) throw err;
        throw this.fail(ins, (err as Error).message, undefined, err);
      }
    };

    /** A config-only step: cached for its timestamp, recorded in history. */
    const configStep = async (descriptor: string, createdBy: string, apply: () => void): Promise<void> => {
      apply();
      const r = await this.cachedConfigStep(state, descriptor);
      cached = r.cached;
      state.history.push({ created: r.createdAt, created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true });
    };

    switch (ins.keyword) {
      case 'ENV': {
        checkFlags(ins, []);
        const pairs = parseKeyValues(ins, vars, this.escape);
        await configStep(`ENV ${JSON.stringify(pairs)}`, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, () => {
          // An existing variable keeps its place, as Docker does.
          for (const [k, v] of pairs) state.vars.env.set(k, v);
          c.Env = state.vars.envList();
        });
        break;
      }
      case 'ARG': {
        checkFlags(ins, []);
        const declared = state.vars.declare(ins.args);
        const text = declared.map((d) => (d.value === undefined ? d.name : `${d.name}=${d.value}`)).join(' ');
        await configStep(`ARG ${text}`, `ARG ${text}`, () => undefined);
        break;
      }
      case 'LABEL': {
        checkFlags(ins, []);
        const pairs = parseKeyValues(ins, vars, this.escape);
        await configStep(`LABEL ${JSON.stringify(pairs)}`, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, () => {
          c.Labels = { ...(c.Labels ?? {}) };
          for (const [k, v] of pairs) c.Labels[k] = v;
        });
        break;
      }
      case 'MAINTAINER': {
        const who = sub(ins.args);
        await configStep(`MAINTAINER ${who}`, `MAINTAINER ${who}`, () => {
          state.author = who;
        });
        break;
      }
      case 'USER': {
        checkFlags(ins, []);
        const user = sub(ins.args);
        await configStep(`USER ${user}`, `USER ${user}`, () => {
          c.User = user;
        });
        break;
      }
      case 'EXPOSE': {
        checkFlags(ins, []);
        const keys = processWords(ins.args, vars, this.escape).flatMap((w) => {
          try {
            return exposedPortKeys(w);
          } catch (err) {
            throw new DockerfileError(ins.line, (err as Error).message);
          }
        });
        await configStep(`EXPOSE ${keys.join(' ')}`, `EXPOSE map[${keys.map((k) => `${k}:{}`).join(' ')}]`, () => {
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
          for (const k of keys) c.ExposedPorts[k] = {};
        });
        break;
      }
      case 'VOLUME': {
        checkFlags(ins, []);
        const paths = ins.json ? ins.json.map(sub) : processWords(ins.args, vars, this.escape);
        if (paths.some((p) => p.trim() === '')) throw new DockerfileError(ins.line, 'VOLUME specified can not be an empty string');
        await configStep(`VOLUME ${JSON.stringify(paths)}`, `VOLUME [${paths.join(' ')}]`, () => {
          c.Volumes = { ...(c.Volumes ?? {}) };
          for (const p of paths) c.Volumes[p] = {};
        });
        break;
      }
      case 'STOPSIGNAL': {
        checkFlags(ins, []);
        const sig = sub(ins.args);
        if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) throw new DockerfileError(ins.line, `invalid signal ${JSON.stringify(sig)}`);
        await configStep(`STOPSIGNAL ${sig}`, `STOPSIGNAL ${sig}`, () => {
          c.StopSignal = sig;
        });
        break;
      }
      case 'SHELL': {
        checkFlags(ins, []);
        if (!ins.json || ins.json.length === 0) throw new DockerfileError(ins.line, 'SHELL requires the arguments to be in JSON form');
        const shell = [...ins.json];
        await configStep(`SHELL ${JSON.stringify(shell)}`, `SHELL [${shell.join(' ')}]`, () => {
          c.Shell = shell;
        });
        break;
      }
      case 'CMD': {
        checkFlags(ins, []);
        const cmd = shellOr(ins, c.Shell ?? DEFAULT_SHELL);
        await configStep(`CMD ${JSON.stringify(cmd)}`, `CMD ${JSON.stringify(cmd)}`, () => {
          c.Cmd = cmd;
          state.cmdSetInStage = true;
        });
        break;
      }
      case 'ENTRYPOINT': {
        checkFlags(ins, []);
        const ep = shellOr(ins, c.Shell ?? DEFAULT_SHELL);
        await configStep(`ENTRYPOINT ${JSON.stringify(ep)}`, `ENTRYPOINT ${JSON.stringify(ep)}`, () => {
          c.Entrypoint = ep;
          // Docker: an ENTRYPOINT drops a CMD inherited from the base image.
          if (!state.cmdSetInStage) c.Cmd = null;
        });
        break;
      }
      case 'HEALTHCHECK': {
        const hc = this.healthcheck(ins, c.Shell ?? DEFAULT_SHELL);
        await configStep(`HEALTHCHECK ${JSON.stringify(hc)}`, `HEALTHCHECK ${JSON.stringify(hc)}`, () => {
          c.Healthcheck = hc;
        });
        break;
      }
      case 'ONBUILD': {
        const trigger = ins.args;
        if (/^(ONBUILD|FROM|MAINTAINER)\b/i.test(trigger)) throw new DockerfileError(ins.line, `${trigger.split(/\s+/)[0]} isn't allowed as an ONBUILD trigger`);
        await configStep(`ONBUILD ${trigger}`, `ONBUILD ${trigger}`, () => {
          c.OnBuild = [...(c.OnBuild ?? []), trigger];
        });
        break;
      }
      case 'WORKDIR': {
        checkFlags(ins, []);
        const dir = sub(ins.args);
        const abs = dir.startsWith('/') ? dir : `${(c.WorkingDir || '/').replace(/\/+$/, '')}/${dir}`;
        c.WorkingDir = abs.replace(/\/+$/, '') || '/';
        const r = await wrap(() => this.fsStep(state, `WORKDIR ${c.WorkingDir}`, async (rootfs) => {
          await mkdirInRoot(rootfs, c.WorkingDir!);
        }));
        cached = r.cached;
        layerDigest = r.layer?.digest;
        state.history.push({ created: r.createdAt, created_by: `WORKDIR ${c.WorkingDir}`, comment: HISTORY_COMMENT, ...(!r.layer && { empty_layer: true }) });
        break;
      }
      case 'RUN': {
        checkFlags(ins, ['network']);
        const net = ins.flags.get('network') ?? 'default';
        if (!['default', 'none', 'host'].includes(net)) throw new DockerfileError(ins.line, `RUN --network must be default, none or host, not ${JSON.stringify(net)}`);
        if (net === 'host' && this.opts.network !== 'host') {
          throw new DockerfileError(ins.line, 'RUN --network=host needs the build to allow host networking (network: host)');
        }
        const hostNetwork = net === 'host' || (net === 'default' && this.opts.network === 'host');
        const args = shellOr(ins, c.Shell ?? DEFAULT_SHELL);
        const runArgs = state.vars.runArgs();
        const env = [...state.vars.envList(), ...runArgs];
        const workdir = c.WorkingDir || '/';
        const user = c.User ?? '';
        const descriptor = JSON.stringify({ run: args, env, workdir, user, hostNetwork });
        let exitCode = 0;
        const r = await wrap(() => this.fsStep(state, descriptor, async (rootfs, bundleDir) => {
          await mkdirInRoot(rootfs, workdir);
          const id = `${this.idPrefix}${randomBytes(6).toString('hex')}`;
          this.emit(` ---> Running in ${id}`);
          exitCode = await runStep({
            id, bundleDir, rootfs, args, env, workingDir: workdir, user, hostNetwork,
            runcRoot: this.runcRoot, cgroupParent: this.cgroupParent,
            ...(this.opts.runcBinary && { runcBinary: this.opts.runcBinary }),
            ...(this.opts.signal && { signal: this.opts.signal }),
            onOutput: (l) => this.emit(l),
          });
          if (exitCode !== 0) {
            throw this.fail(ins, `The command '${args.join(' ')}' returned a non-zero code: ${exitCode}`, exitCode);
          }
        }, true));
        cached = r.cached;
        layerDigest = r.layer?.digest;
        const argPrefix = runArgs.length > 0 ? `|${runArgs.length} ${runArgs.join(' ')} ` : '';
        state.history.push({
          created: r.createdAt, created_by: `RUN ${argPrefix}${args.join(' ')} # buildkit`, comment: HISTORY_COMMENT, ...(!r.layer && { empty_layer: true }),
        });
        break;
      }
      case 'COPY':
      case 'ADD': {
        const r = await wrap(() => this.copyStep(state, ins, vars, stages));
        cached = r.cached;
        layerDigest = r.layer?.digest;
        state.history.push({ created: r.createdAt, created_by: `${ins.keyword} ${ins.args} # buildkit`, comment: HISTORY_COMMENT, ...(!r.layer && { empty_layer: true }) });
        break;
      }
      case 'FROM':
        throw new DockerfileError(ins.line, 'FROM inside a stage');
    }
    if (cached) this.emit(' ---> Using cache');
    if (layerDigest) this.emit(` ---> ${layerDigest.slice('sha256:'.length, 'sha256:'.length + 12)}`);
    this.steps.push({ index, line: ins.line, instruction: ins.original, cached, durationMs: Date.now() - started, ...(layerDigest && { layer: layerDigest }) });
  }

  private healthcheck(ins: Instruction, shell: readonly string[]): Record<string, unknown> {
    checkFlags(ins, ['interval', 'timeout', 'start-period', 'start-interval', 'retries']);
    const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.args);
    const kind = m?.[1]?.toUpperCase();
    if (kind === 'NONE') {
      if ((m?.[2] ?? '') !== '' || ins.flags.size > 0) throw new DockerfileError(ins.line, 'HEALTHCHECK NONE takes no arguments');
      return { Test: ['NONE'] };
    }
    if (kind !== 'CMD') throw new DockerfileError(ins.line, 'HEALTHCHECK needs CMD <command> or NONE');
    const rest = (m?.[2] ?? '').trim();
    if (rest === '') throw new DockerfileError(ins.line, 'HEALTHCHECK CMD needs a command');
    let json: string[] | undefined;
    try {
      const v: unknown = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v as string[];
    } catch {
      // shell form
    }
    void shell;
    const hc: Record<string, unknown> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
    const durations: [string, string][] = [['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval']];
    for (const [flag, key] of durations) {
      const v = ins.flags.get(flag);
      if (v === undefined) continue;
      try {
        const ns = parseDurationNs(v);
        if (ns !== 0 && ns < 1e6) throw new Error(`--${flag} cannot be less than 1ms`);
        if (ns !== 0) hc[key] = ns;
      } catch (err) {
        throw new DockerfileError(ins.line, `HEALTHCHECK --${flag}: ${(err as Error).message}`);
      }
    }
    const retries = ins.flags.get('retries');
    if (retries !== undefined) {
      if (!/^\d+$/.test(retries) || Number(retries) < 1) throw new DockerfileError(ins.line, '--retries must be at least 1');
      hc.Retries = Number(retries);
    }
    return hc;
  }

  /** Chains the key and looks it up; config steps store no layer. */
  private async cachedConfigStep(state: StageState, descriptor: string): Promise<{ cached: boolean; createdAt: string }> {
    const key = sha256Of(`${state.key}\n${descriptor}`).slice('sha256:'.length);
    state.key = key;
    const hit = this.opts.noCache ? undefined : await this.cache.get(key);
    if (hit && !hit.layer) {
      state.created = hit.createdAt;
      return { cached: true, createdAt: hit.createdAt };
    }
    const createdAt = isoNow();
    await this.cache.put(key, { createdAt });
    state.created = createdAt;
    return { cached: false, createdAt };
  }

  /**
   * A filesystem step: on a cache hit, reuses the layer; otherwise mounts the
   * stage's layers with a fresh upper dir, runs `change` on the merged tree,
   * and stores the upper dir as a layer (none when nothing changed).
   */
  private async fsStep(
    state: StageState,
    descriptor: string,
    change: (rootfs: string, bundleDir: string) => Promise<void>,
    isRun = false,
  ): Promise<{ cached: boolean; createdAt: string; layer?: LayerState }> {
    const key = sha256Of(`${state.key}\n${descriptor}`).slice('sha256:'.length);
    state.key = key;
    const hit = this.opts.noCache ? undefined : await this.cache.get(key);
    if (hit) {
      const layer = hit.layer ? await this.reuseLayer(hit.layer) : undefined;
      if (!hit.layer || layer) {
        if (layer) state.layers.push(layer);
        state.created = hit.createdAt;
        return { cached: true, createdAt: hit.createdAt, ...(layer && { layer }) };
      }
    }
    const dir = await mkdtemp(join(this.tmp!, 'step-'));
    const upper = join(dir, 'upper');
    try {
      const before = await this.withMount(dir, state.layers, async (merged) => {
        const stubs = isRun ? await missingMountPoints(merged) : undefined;
        await change(merged, dir);
        return stubs;
      });
      if (before) await removeMountStubs(upper, before, state.layers);
      const createdAt = isoNow();
      let entry: CacheEntry = { createdAt };
      let layer: LayerState | undefined;
      if ((await readdir(upper)).length > 0) {
        const store = await this.opts.store.content();
        const w = await writeLayerFromDir({ store, dir: upper, lease: this.lease!, ...this.callOpts() });
        const cachedLayer: CachedLayer = { digest: w.digest, diffId: w.diffId, size: w.size, mediaType: w.mediaType };
        entry = { createdAt, layer: cachedLayer };
        await this.cache.put(key, entry, upper);
        layer = { ...cachedLayer, dir: this.cache.layerDir(w.diffId) };
        state.layers.push(layer);
      } else {
        await this.cache.put(key, entry);
      }
      state.created = createdAt;
      return { cached: false, createdAt, ...(layer && { layer }) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** A cached layer's state, its blob re-made from the directory if garbage collected; undefined if that fails. */
  private async reuseLayer(l: CachedLayer): Promise<LayerState | undefined> {
    const store = await this.opts.store.content();
    const dir = this.cache.layerDir(l.diffId);
    this.lease!.add(l.digest);
    this.lease!.add(l.diffId);
    if (!(await store.hasBlob(l.digest))) {
      const w = await writeLayerFromDir({ store, dir, lease: this.lease!, ...this.callOpts() });
      if (w.diffId !== l.diffId) return undefined;
      return { ...l, digest: w.digest, size: w.size, dir };
    }
    return { ...l, dir };
  }

  /** Mounts `layers` (plus an empty bottom layer, so scratch works) at `<dir>/merged`, runs `fn`, unmounts. */
  private async withMount<T>(dir: string, layers: readonly LayerState[], fn: (merged: string) => Promise<T>): Promise<T> {
    await Promise.all(['upper', 'work', 'merged', 'empty'].map((d) => mkdir(join(dir, d))));
    await mountOverlay(dir, [join(dir, 'empty'), ...layers.map((l) => l.dir)]);
    try {
      return await fn(join(dir, 'merged'));
    } finally {
      await unmountOverlay(dir);
    }
  }

  private async copyStep(state: StageState, ins: Instruction, vars: Variables, stages: readonly Stage[]): Promise<{ cached: boolean; createdAt: string; layer?: LayerState }> {
    const isAdd = ins.keyword === 'ADD';
    checkFlags(ins, isAdd ? ['chown', 'chmod', 'checksum', 'keep-git-dir', 'link'] : ['from', 'chown', 'chmod', 'link', 'parents', 'exclude']);
    for (const f of ['parents', 'exclude', 'checksum', 'keep-git-dir']) {
      if (ins.flags.has(f)) throw new DockerfileError(ins.line, `${ins.keyword} --${f} is not supported by berth`);
    }
    const sub = (w: string): string => processWord(w, vars, this.escape);
    const words = ins.json ? ins.json.map(sub) : processWords(ins.args, vars, this.escape);
    if (words.length < 2) throw new DockerfileError(ins.line, `${ins.keyword} requires at least two arguments, but only one was provided. Destination could not be determined`);
    const srcPatterns = words.slice(0, -1);
    const dest = copyDestination(words[words.length - 1]!, state.config.WorkingDir || '/');
    const chown = ins.flags.has('chown') ? sub(ins.flags.get('chown')!) : undefined;
    const chmodText = ins.flags.get('chmod');
    let mode: number | undefined;
    if (chmodText !== undefined) {
      if (!/^[0-7]{3,4}$/.test(chmodText)) throw new DockerfileError(ins.line, `invalid --chmod ${JSON.stringify(chmodText)}: only octal modes are supported`);
      mode = parseInt(chmodText, 8);
    }

    // Where sources come from: the context, an earlier stage, or an image.
    const from = ins.flags.has('from') ? sub(ins.flags.get('from')!) : undefined;
    let sourceLayers: LayerState[] | undefined;
    let sourceKey = 'context';
    if (from !== undefined) {
      const ref = this.stageRef(stages, from, state.stage.index);
      if (ref !== undefined) {
        const s = this.states.get(ref)!;
        sourceLayers = s.layers;
        sourceKey = `stage ${s.key}`;
      } else {
        const img = await this.opts.store.resolveForRun(from, this.callOpts()).catch((err: unknown) => {
          throw this.fail(ins, `--from=${from}: no stage or image of that name: ${(err as Error).message}`, undefined, err);
        });
        sourceLayers = img.layerDirs.map((d) => ({ digest: '' as Digest, diffId: '' as Digest, size: 0, mediaType: '', dir: d }));
        sourceKey = `image ${img.image.id}`;
      }
    }

    const ctx = this.context!;
    const isUrl = (p: string): boolean => /^https?:\/\//i.test(p);
    const run = async (sourceRoot: string, isIgnored: (rel: string) => boolean): Promise<{ cached: boolean; createdAt: string; layer?: LayerState }> => {
      const matches: SourceMatch[] = [];
      const urls: string[] = [];
      for (const p of srcPatterns) {
        if (isAdd && isUrl(p)) urls.push(p);
        else if (isAdd && /^git@|\.git(#.*)?$/.test(p)) throw new DockerfileError(ins.line, `ADD of a git repository (${p}) is not supported`);
        else matches.push(...(await matchSources(sourceRoot, p, isIgnored)));
      }
      if (matches.length + urls.length > 1 && !dest.isDir) {
        throw new DockerfileError(ins.line, `When using ${ins.keyword} with more than one source file, the destination must be a directory and end with a /`);
      }
      const downloads: { path: string; name: string }[] = [];
      for (const u of urls) {
        this.emit(` ---> downloading ${u}`);
        downloads.push(await fetchUrl(u, this.tmp!, this.callOpts()));
      }
      const hashes = from === undefined || isAdd
        ? await Promise.all(matches.map(async (m) => `${m.rel}:${await hashSource(m, isIgnored)}`))
        : matches.map((m) => m.rel);
      const dlHashes = await Promise.all(downloads.map(async (d) => `${d.name}:${await hashSource({ rel: d.name, host: d.path })}`));
      const descriptor = JSON.stringify({ op: ins.keyword, from: sourceKey, chown, mode, dest, workdir: state.config.WorkingDir || '/', src: hashes, urls: dlHashes });
      return this.fsStep(state, descriptor, async (rootfs) => {
        const owner = chown === undefined ? (from === undefined ? { uid: 0, gid: 0 } : undefined) : await chownOwner(rootfs, chown);
        const copyOpts = { ...(owner && { owner }), ...(mode !== undefined && { mode }), isIgnored };
        const plain: SourceMatch[] = [];
        for (const m of matches) {
          if (isAdd && (await isTarArchive(m.host))) await extractInto(rootfs, m, dest, owner, this.callOpts());
          else plain.push(m);
        }
        if (plain.length > 0) await copyInto(rootfs, plain, dest, copyOpts);
        for (const d of downloads) {
          // Docker gives downloaded files mode 0600 unless --chmod.
          await copyInto(rootfs, [{ rel: d.name, host: d.path }], dest, { ...copyOpts, mode: mode ?? 0o600, owner: owner ?? { uid: 0, gid: 0 } });
        }
      });
    };

    if (sourceLayers === undefined) return run(ctx.root, ctx.isIgnored);
    const dir = await mkdtemp(join(this.tmp!, 'from-'));
    try {
      return await this.withMount(dir, sourceLayers, (merged) => run(merged, () => false));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async writeImage(state: StageState, tags: ReturnType<typeof parseReference>[]): Promise<{ imageId: ImageId; manifestDigest: Digest }> {
    const store = await this.opts.store.content();
    const host = hostPlatform();
    const config: Record<string, unknown> = {
      created: state.created ?? isoNow(),
      ...(state.author !== undefined && { author: state.author }),
      architecture: host.architecture,
      os: host.os,
      config: cleanConfig(state.config),
      rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) },
      history: state.history,
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = (await store.writeBlob(() => [configBytes], { digest: sha256Of(configBytes), lease: this.lease!, what: 'image config' })).digest;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: MEDIA_TYPE.ociConfig, digest: configDigest, size: configBytes.length },
      layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const written = await store.writeBlob(() => [manifestBytes], { digest: sha256Of(manifestBytes), lease: this.lease!, what: 'image manifest' });
    const manifestDesc: Descriptor = { mediaType: MEDIA_TYPE.ociManifest, digest: written.digest, size: manifestBytes.length };
    // A fully cached rebuild gives the image the store already has: skip the database write when nothing would change.
    const known = store.refDb.images[configDigest];
    const refKeys = (this.opts.tags ?? []).map((t) => normalizeReference(t));
    if (known?.manifestDigest === written.digest && refKeys.every((k) => (store.refDb.refs[k] as string | undefined) === configDigest)) {
      return { imageId: configDigest as string as ImageId, manifestDigest: written.digest };
    }
    const imageId = await this.opts.store.recordImage({
      manifest: manifestDesc,
      parsedManifest: manifest,
      configDigest,
      config: parseImageConfig(configBytes, 'built image config'),
      refs: tags,
      lease: this.lease!,
      ...this.callOpts(),
    });
    return { imageId, manifestDigest: written.digest };
  }
}

/** The config with empty values dropped, keys in Docker's order. */
function cleanConfig(c: ConfigBody): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const order = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];
  for (const k of [...order, ...Object.keys(c).filter((k) => !order.includes(k))]) {
    const v = c[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    if (Array.isArray(v) && v.length === 0 && k !== 'Cmd') continue;
    out[k] = v;
  }
  return out;
}

/** `--chown` value → numeric owner, names looked up in the rootfs; a user alone gives gid = uid, as Docker does. */
async function chownOwner(rootfs: string, spec: string): Promise<{ uid: number; gid: number }> {
  const read = async (p: string): Promise<string> => readFile(await resolveInRoot(rootfs, p), 'utf8').catch(() => '');
  const [u = '', g] = spec.split(':', 2);
  const resolved = resolveUser(g === undefined ? u : `${u}:${g}`, await read('/etc/passwd'), await read('/etc/group'));
  return { uid: resolved.uid, gid: g === undefined ? resolved.uid : resolved.gid };
}

/** Whether a file is a tar archive, plain or gzip (ADD extracts those). */
async function isTarArchive(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile() || st.size < 18) return false;
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    if (detectCompression(head) === 'gzip') {
      const gunzip = createReadStream(path).pipe(createGunzip());
      const chunks: Buffer[] = [];
      let n = 0;
      try {
        for await (const c of gunzip) {
          chunks.push(c as Buffer);
          n += (c as Buffer).length;
          if (n >= 512) break;
        }
      } catch {
        return false;
      } finally {
        gunzip.destroy();
      }
      const block = Buffer.concat(chunks);
      return block.length >= 512 && block.subarray(257, 262).toString('latin1') === 'ustar';
    }
    return head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

async function extractInto(rootfs: string, src: SourceMatch, dest: { path: string }, owner: { uid: number; gid: number } | undefined, opts: CallOptions): Promise<void> {
  const target = await mkdirInRoot(rootfs, dest.path);
  const what = `ADD ${basename(src.rel)}`;
  await extractTar(await decompress(createReadStream(src.host), what), target, { what, whiteouts: 'keep', ...(opts.signal && { signal: opts.signal }) });
  void owner; // Docker keeps the archive's owners when extracting, --chown does not apply.
}

/** Which of runc's mount points are missing in the rootfs, with the metadata of their parents. */
async function missingMountPoints(rootfs: string): Promise<Map<string, { mode: number; uid: number; gid: number } | undefined>> {
  const out = new Map<string, { mode: number; uid: number; gid: number } | undefined>();
  for (const p of RUN_MOUNT_POINTS) {
    const exists = await lstat(join(rootfs, p)).then(() => true, () => false);
    if (exists) continue;
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    const pst = parent === '' ? undefined : await lstat(join(rootfs, parent)).catch(() => undefined);
    out.set(p, pst ? { mode: pst.mode, uid: pst.uid, gid: pst.gid } : undefined);
  }
  return out;
}

/**
 * Removes the mount point stubs runc created in the upper dir (empty files and
 * directories that were missing before the RUN), and parent directories left
 * empty that only overlayfs' copy-up put there (same mode and owner as before).
 */
async function removeMountStubs(upper: string, missing: Map<string, { mode: number; uid: number; gid: number } | undefined>, _layers: readonly LayerState[]): Promise<void> {
  for (const [p, parentBefore] of missing) {
    const host = join(upper, p);
    const st = await lstat(host).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) await rmdir(host).catch(() => undefined);
    else if (st.isFile() && st.size === 0) await rm(host, { force: true });
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent === '') continue;
    const pHost = join(upper, parent);
    const pst = await lstat(pHost).catch(() => undefined);
    if (!pst?.isDirectory() || (await readdir(pHost)).length > 0) continue;
    const same = parentBefore === undefined || (parentBefore.mode === pst.mode && parentBefore.uid === pst.uid && parentBefore.gid === pst.gid);
    if (same) await rmdir(pHost).catch(() => undefined);
  }
}

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, ContainerConfig, ContainerId } from '../cri/types.ts';
import { removeCgroup } from '../oci/cgroups.ts';
import { conmonCreate } from '../oci/conmon.ts';
import { writeEtcFiles } from '../oci/etc-files.ts';
import { mountOverlay, readFromLayers, rootOverlayOptions, unmountOverlay } from '../oci/overlay.ts';
import { toSignalName } from '../oci/signals.ts';
import { buildSpec, cgroupsPathFor } from '../oci/spec.ts';
import { writeRecord, type ContainerRecord } from '../task/record.ts';
import { Task } from '../task/task.ts';
import { emit, toRuntimeError, type ServerContext } from './context.ts';
import { anonymousVolumePaths, copyUpMounts, prepareAnonymousVolumes, sortMounts } from './anonymous-volumes.ts';

/** Log file name inside the container directory. */
export const LOG_FILE = 'ctr.log';

/**
 * Creates a container: resolves and pins its image, prepares its overlay root
 * filesystem (mounted by runc inside the container) and an anonymous volume for each
 * image `VOLUME` no mount covers, writes its /etc files and OCI bundle, and has conmon run
 * `runc create`. Resolves with the new ID once the container is `created`.
 * Every step is undone when a later one fails.
 *
 * Rejects with `InvalidArgument` (bad config, unsupported option), `AlreadyExists`
 * (a live container has this name), `NotFound` (image), `Internal`.
 */
export async function createContainer(ctx: ServerContext, config: ContainerConfig, opts?: CallOptions): Promise<ContainerId> {
  opts?.signal?.throwIfAborted();
  validate(config);
  const nameTaken = [...ctx.tasks.values()].some(
    (t) => t.record.config.name === config.name && t.state !== 'stopped' && t.state !== 'deleted',
  );
  if (nameTaken || ctx.reservedNames.has(config.name)) {
    throw new RuntimeError('AlreadyExists', `a container named "${config.name}" already exists`);
  }
  ctx.reservedNames.add(config.name);
  try {
    return await create(ctx, config, opts);
  } finally {
    ctx.reservedNames.delete(config.name);
  }
}

async function create(ctx: ServerContext, config: ContainerConfig, opts?: CallOptions): Promise<ContainerId> {
  const t0 = performance.now();
  const runnable = await ctx.rootfs.resolveForRun(config.image, opts);
  const tResolved = performance.now();
  const imageConfig = runnable.image.config;
  const stopSignal = toSignalName(config.stopSignal || imageConfig.stopSignal || 'SIGTERM');
  const id = randomBytes(32).toString('hex') as ContainerId;
  const dir = join(ctx.paths.containers, id);
  const cgroupsPath = cgroupsPathFor(ctx.cgroupParent, id);
  const undo: (() => Promise<unknown>)[] = [];
  try {
    await mkdir(dir, { recursive: true });
    undo.push(() => rm(dir, { recursive: true, force: true }));
    await Promise.all(['upper', 'work', 'merged'].map((d) => mkdir(join(dir, d))));
    // The pin (a durable write of the image store's database) runs while conmon and runc
    // create the container; the create only succeeds once it is recorded.
    const pinning = ctx.rootfs.pin(runnable.image.id, id);
    pinning.catch(() => undefined); // awaited below; a failure rolls everything back
    undo.push(async () => {
      await pinning.catch(() => undefined);
      await ctx.rootfs.unpin(runnable.image.id, id);
    });
    // runc mounts the overlay root inside the container (no `mount` process, nothing
    // to unmount); only a root too long for one option page is mounted here.
    const rootOverlay = rootOverlayOptions(dir, runnable.layerDirs);
    const rootfsPath = join(dir, 'merged');
    if (!rootOverlay) {
      await mountOverlay(dir, runnable.layerDirs);
      undo.push(() => unmountOverlay(dir));
    }
    const [passwd = '', group = ''] = await Promise.all(
      ['passwd', 'group'].map((f) =>
        rootOverlay
          ? readFromLayers(runnable.layerDirs, `etc/${f}`).catch(() => undefined)
          : readFile(join(rootfsPath, 'etc', f), 'utf8').catch(() => ''),
      ),
    );
    const hostname = config.hostname || id.slice(0, 12);
    const etcFiles = await writeEtcFiles(dir, config, hostname);
    // The image's VOLUMEs become anonymous volumes inside `dir`: removed with the container.
    const anonymous = await prepareAnonymousVolumes(dir, anonymousVolumePaths(imageConfig.volumes, config.mounts), runnable.layerDirs);
    // and empty named volumes get what the image has at their path (Docker's copy-up)
    const filled = await copyUpMounts(dir, config.mounts ?? [], runnable.layerDirs);
    if (filled.length) ctx.log.debug({ id, paths: filled }, 'filled empty volumes from the image');
    const mounts = sortMounts([...anonymous, ...(config.mounts ?? [])]);
    const spec = buildSpec({ ...config, ...(mounts.length ? { mounts } : {}) }, imageConfig, {
      id,
      rootfsPath,
      ...(rootOverlay ? { rootOverlay } : {}),
      cgroupParent: ctx.cgroupParent,
      etcFiles,
      passwd,
      group,
      nofileHardLimit: await nofileHardLimit(),
    });
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
    opts?.signal?.throwIfAborted();
    const tBundle = performance.now();

    undo.push(() => ctx.runc.delete(id, { force: true }).catch(() => {}));
    undo.push(() => removeCgroup(cgroupsPath));
    undo.push(() => rm(join(ctx.paths.exits, id), { force: true }));
    const logPath = join(dir, LOG_FILE);
    const { pid } = await conmonCreate({
      id,
      name: config.name,
      bundle: dir,
      runcRoot: ctx.paths.runc,
      runcBinary: ctx.runc.binary,
      conmonBinary: ctx.conmonBinary,
      pidFile: join(dir, 'pidfile'),
      conmonPidFile: join(dir, 'conmon.pid'),
      logPath,
      exitDir: ctx.paths.exits,
      socketDir: ctx.paths.sockets,
      conmonLogPath: join(dir, 'conmon.log'),
      terminal: config.tty ?? false,
      stdin: config.stdin ?? false,
    });

    const tConmon = performance.now();
    await pinning;
    const tPinned = performance.now();
    const record: ContainerRecord = {
      version: 1,
      id,
      config,
      imageId: runnable.image.id,
      stopSignal,
      cgroupsPath,
      logPath,
      createdAtMs: Date.now(),
      state: 'created',
      pid,
    };
    await writeRecord(dir, record);
    const task = new Task(dir, record);
    ctx.tasks.set(id, task);
    emit(ctx, task, 'created', record.createdAtMs);
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    ctx.log.debug({ id, name: config.name, ms: { image: ms(t0, tResolved), bundle: ms(tResolved, tBundle), conmonRuncCreate: ms(tBundle, tConmon), pin: ms(tConmon, tPinned), record: ms(tPinned, performance.now()) } }, 'container created');
    return id;
  } catch (err) {
    for (const step of undo.reverse()) {
      await step().catch((e: unknown) => ctx.log.warn({ err: e, id }, 'rollback step of create failed'));
    }
    throw toRuntimeError(err, 'create container');
  }
}

function validate(config: ContainerConfig): void {
  if (!config.name) throw new RuntimeError('InvalidArgument', 'name is required');
  if (!config.image) throw new RuntimeError('InvalidArgument', 'image is required');
}

let nofileHard: number | undefined;
/** The hard RLIMIT_NOFILE of this process (/proc/self/limits); the container may not ask for more. */
async function nofileHardLimit(): Promise<number | undefined> {
  if (nofileHard === undefined) {
    const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(limits);
    nofileHard = m?.[1] ? Number(m[1]) : undefined;
  }
  return nofileHard;
}

/**
 * Runs one RUN instruction: `runc run` in the foreground on a mounted root
 * filesystem, output captured line by line, no network unless asked (a fresh
 * network namespace has only loopback). The runc container and its cgroup are
 * gone when this resolves or rejects, also on abort.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RuntimeError } from '../cri/errors.ts';
import type { ContainerConfig, KeyValue } from '../cri/types.ts';
import { removeCgroup } from '../oci/cgroups.ts';
import { writeEtcFiles } from '../oci/etc-files.ts';
import { Runc } from '../oci/runc.ts';
import { buildSpec, cgroupsPathFor } from '../oci/spec.ts';
import { resolveInRoot } from './scoped-path.ts';

export interface RunStepOptions {
  /** Container ID (also the cgroup leaf name). */
  readonly id: string;
  /** The bundle directory: config.json and /etc files are written here. */
  readonly bundleDir: string;
  /** The mounted root filesystem. */
  readonly rootfs: string;
  readonly args: readonly string[];
  /** `K=V` lines. */
  readonly env: readonly string[];
  readonly workingDir: string;
  /** `user[:group]` as USER gives it; resolved against the rootfs' /etc/passwd and /etc/group. */
  readonly user: string;
  readonly hostNetwork: boolean;
  readonly runcRoot: string;
  readonly runcBinary?: string;
  readonly cgroupParent: string;
  /** Each line of output, stdout and stderr interleaved as they come. */
  readonly onOutput: (line: string) => void;
  readonly signal?: AbortSignal;
}

let nofileHard: number | undefined;
async function nofileHardLimit(): Promise<number | undefined> {
  if (nofileHard === undefined) {
    const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
    const m = /^Max open files\s+\d+\s+(\d+)/m.exec(limits);
    nofileHard = m?.[1] ? Number(m[1]) : undefined;
  }
  return nofileHard;
}

/** Mount points runc creates in the rootfs when missing; the builder removes such stubs from the layer. */
export const RUN_MOUNT_POINTS: readonly string[] = ['proc', 'sys', 'dev', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

/**
 * Runs the command; resolves with its exit code (runc's own failures, such as
 * an executable not found, give runc's non-zero code with its message in the
 * output). Rejects `InvalidArgument` for an unknown user, `Unavailable` when aborted.
 */
export async function runStep(opts: RunStepOptions): Promise<number> {
  const read = async (p: string): Promise<string> => readFile(await resolveInRoot(opts.rootfs, p), 'utf8').catch(() => '');
  const env: KeyValue[] = opts.env.map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1) };
  });
  const config: ContainerConfig = {
    name: opts.id,
    image: '',
    command: opts.args,
    args: [],
    env,
    workingDir: opts.workingDir,
    user: opts.user,
    hostname: 'buildkitsandbox',
    ...(opts.hostNetwork && { networkNamespace: 'host' }),
  };
  const etcFiles = await writeEtcFiles(opts.bundleDir, config, 'buildkitsandbox');
  const hard = await nofileHardLimit();
  const spec = buildSpec(config, {}, {
    id: opts.id,
    rootfsPath: opts.rootfs,
    cgroupParent: opts.cgroupParent,
    etcFiles,
    passwd: await read('/etc/passwd'),
    group: await read('/etc/group'),
    ...(hard !== undefined && { nofileHardLimit: hard }),
  });
  await writeFile(join(opts.bundleDir, 'config.json'), JSON.stringify(spec));
  const runc = new Runc({ root: opts.runcRoot, ...(opts.runcBinary ? { binary: opts.runcBinary } : {}) });
  const child = runc.runForeground(opts.id, opts.bundleDir);
  const onAbort = (): void => {
    // SIGKILL the container itself: killing runc would leave it running.
    void runc.kill(opts.id, 'KILL').catch(() => undefined);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const lines = (stream: NodeJS.ReadableStream): Promise<void> =>
      new Promise((resolve) => {
        const rl = createInterface({ input: stream, crlfDelay: Infinity });
        rl.on('line', (l) => opts.onOutput(l));
        rl.on('close', resolve);
      });
    const [code] = await Promise.all([
      new Promise<number>((resolve, reject) => {
        child.on('error', (e) => reject(new RuntimeError('Internal', `runc: ${e.message}`, { cause: e })));
        child.on('close', (c, sig) => resolve(c ?? 128 + (sig === 'SIGKILL' ? 9 : 15)));
      }),
      lines(child.stdout!),
      lines(child.stderr!),
    ]);
    if (opts.signal?.aborted) throw new RuntimeError('Unavailable', 'build cancelled', { cause: opts.signal.reason });
    return code;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await runc.delete(opts.id, { force: true }).catch(() => undefined);
    await removeCgroup(cgroupsPathFor(opts.cgroupParent, opts.id));
  }
}

import { spawnSync } from 'node:child_process';

/**
 * containerd's RequiresRoot: why tests of the real runtime cannot run here (not root,
 * runc or conmon missing), or undefined when they can.
 */
export function realRuntimeMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const bin of ['runc', 'conmon']) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (r.status !== 0) return `\`${bin} --version\` failed: ${r.error?.message ?? r.stderr}`;
  }
  return undefined;
}

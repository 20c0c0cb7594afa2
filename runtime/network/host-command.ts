import { spawn } from 'node:child_process';
import { RuntimeError } from '../cri/errors.ts';

/** What a command printed. */
export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `file args` (an `ip`, `nft` or `sysctl` of the host) with `input` on stdin and
 * resolves with its output; a non-zero exit rejects with `RuntimeError('Internal')`
 * naming the command and its stderr.
 */
export function runCommand(file: string, args: readonly string[], input?: string): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new RuntimeError('Internal', `${file}: ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) resolve({ stdout, stderr });
      else {
        const shown = input ? `${file} ${args.join(' ')} <<< ${JSON.stringify(input.slice(0, 400))}` : `${file} ${args.join(' ')}`;
        reject(new RuntimeError('Internal', `${shown} exited with ${code}: ${stderr.trim()}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Runs `ip -batch -` with one command per line (without the leading `ip`); `netns` runs them inside that namespace. */
export async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (!lines.length) return;
  await runCommand('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], `${lines.join('\n')}\n`);
}

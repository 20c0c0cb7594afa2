/**
 * Where `berth server` keeps its state, and the files in it that clients look for.
 * Kept free of imports beyond node:os and node:path: every CLI command reads it.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The default `--data-dir`: `/var/lib/berth` as root, else `$XDG_DATA_HOME/berth` (`~/.local/share/berth`). */
export function defaultServerDataDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  return uid === 0 ? '/var/lib/berth' : join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'berth');
}

/** Where `berth server` writes the admin kubeconfig: `dataDir/kubeconfig.yaml`. */
export const adminKubeconfigPath = (dataDir: string): string => join(dataDir, 'kubeconfig.yaml');

/** Where `berth server` serves its API on a Unix socket for this machine: `dataDir/api.sock`. */
export const localSocketPath = (dataDir: string): string => join(dataDir, 'api.sock');

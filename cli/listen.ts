/** `--listen` addresses, and local Unix sockets. */
import { chmod, rm } from 'node:fs/promises';
import type { Server } from 'node:net';

/** Parses `host:port` or `[v6]:port` (an empty host is 127.0.0.1); errors name `flag`. */
export function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`${flag} must be host:port, got ${JSON.stringify(listen)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`${flag} port out of range: ${port}`);
  return { host: m[1] || '127.0.0.1', port };
}

/** The longest path a Unix socket address holds on Linux (`sun_path` is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Listens on the Unix socket `path` (mode 0600: only its owner may connect), replacing
 * a stale socket file a crashed process left. Resolves with false, listening on
 * nothing, when the path is too long for a socket address.
 */
export async function listenUnix(server: Server, path: string): Promise<boolean> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) return false;
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return true;
}

/** `--listen` addresses. */

/** Parses `host:port` or `[v6]:port` (an empty host is 127.0.0.1); errors name `flag`. */
export function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`${flag} must be host:port, got ${JSON.stringify(listen)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`${flag} port out of range: ${port}`);
  return { host: m[1] || '127.0.0.1', port };
}

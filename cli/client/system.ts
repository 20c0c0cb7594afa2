/**
 * `berth version` and `berth info`: the client's version, the server's (`/version`),
 * and what the Node objects say about each machine (runtime, OS, capacity).
 */
import type { Node } from '../../api/types/index.ts';
import { Node as NodeKind } from '../../controllers/framework/resource-kind.ts';
import { Container as ContainerKind, Image as ImageKind } from '../../controllers/framework/resource-kind.ts';
import { BERTH_VERSION } from '../version.ts';
import { readBody, type Connection } from './connection.ts';

/** `version`: client and server blocks as Docker prints them. */
export async function version(conn: Connection, out: (s: string) => void): Promise<number> {
  out(`Client:\n Version:     ${BERTH_VERSION}\n Node.js:     ${process.version}\n OS/Arch:     ${process.platform}/${process.arch}\n Context:     ${conn.context}\n\n`);
  const v = JSON.parse(await readBody(await conn.request('GET', '/version'))) as { gitVersion?: string; platform?: string; goVersion?: string };
  out(`Server:\n Address:     ${conn.server}\n API:         ${v.gitVersion ?? 'unknown'}\n Platform:    ${v.platform ?? 'unknown'}\n`);
  return 0;
}

const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';

/** `info`: server, counts of containers by phase and images, and each node's facts. */
export async function info(conn: Connection, out: (s: string) => void): Promise<number> {
  const v = JSON.parse(await readBody(await conn.request('GET', '/version'))) as { gitVersion?: string };
  const [nodes, containers, images] = await Promise.all([
    conn.client.list(NodeKind),
    conn.client.list(ContainerKind, { namespace: conn.namespace }),
    conn.client.list(ImageKind, { namespace: conn.namespace }),
  ]);
  const count = (p: string) => containers.items.filter((c) => c.status?.phase === p).length;
  const lines = [
    'Client:',
    ` Version: ${BERTH_VERSION}`,
    ` Context: ${conn.context}`,
    ` Namespace: ${conn.namespace}`,
    '',
    'Server:',
    ` Address: ${conn.server}`,
    ` Server Version: ${v.gitVersion ?? 'unknown'}`,
    ` Containers: ${containers.items.length}`,
    `  Running: ${count('Running')}`,
    `  Paused: ${count('Paused')}`,
    `  Stopped: ${count('Exited')}`,
    ` Images: ${images.items.length}`,
    ` Nodes: ${nodes.items.length}`,
  ];
  for (const n of nodes.items) {
    const s = n.status ?? {};
    lines.push(`  ${n.metadata.name}:`);
    lines.push(`   Role: ${n.spec?.role ?? 'worker'}  Availability: ${n.spec?.availability ?? 'Active'}  Ready: ${ready(n)}`);
    if (s.runtime) lines.push(`   Runtime: ${s.runtime.name ?? '?'} ${s.runtime.version ?? ''}`.trimEnd());
    if (s.nodeInfo) lines.push(`   Operating System: ${s.nodeInfo.os ?? '?'}  Architecture: ${s.nodeInfo.architecture ?? '?'}  Kernel Version: ${s.nodeInfo.kernelVersion ?? '?'}`);
    if (s.capacity) lines.push(`   Capacity: ${Object.entries(s.capacity).map(([k, x]) => `${k}=${x}`).join(' ')}`);
  }
  out(`${lines.join('\n')}\n`);
  return 0;
}

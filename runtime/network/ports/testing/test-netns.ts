/**
 * A network namespace standing in for a container in port-publishing tests and the
 * `ports` benchmark: `ip netns add bt9-<random>`, a veth pair `bt9v<random>` ↔ `eth0`
 * on a free 10.209.N.0/24 (host end .1, namespace .2), and a Node server inside.
 * Root only. `remove()` kills the server and deletes the namespace and the veth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { runCommand, ipBatch } from '../../host-command.ts';

/** Ports the server in the namespace listens on. */
export const TEST_SERVER_PORTS = {
  /** TCP: writes `hello from <netns>\n` and closes. */
  greeting: 8080,
  /** UDP: answers each datagram with `echo:<datagram>`. */
  udpEcho: 8081,
  /** TCP: reads a decimal byte count and a newline, sends that many bytes and closes. */
  source: 8082,
} as const;

const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const name = process.argv[1];
net.createServer((s) => { s.on('error', () => {}); s.end('hello from ' + name + '\\n'); }).listen(${TEST_SERVER_PORTS.greeting}, '0.0.0.0');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send('echo:' + m, r.port, r.address));
u.bind(${TEST_SERVER_PORTS.udpEcho}, '0.0.0.0');
const chunk = Buffer.alloc(1 << 16, 120);
net.createServer((s) => {
  s.on('error', () => {});
  s.setNoDelay(true);
  let buf = '';
  s.on('data', function onData(d) {
    buf += d; const nl = buf.indexOf('\\n'); if (nl < 0) return;
    s.off('data', onData);
    let left = Number(buf.slice(0, nl));
    const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump); } s.end(); };
    pump();
  });
}).listen(${TEST_SERVER_PORTS.source}, '0.0.0.0', () => setTimeout(() => console.log('ready'), 50));
`;

export interface TestNetns {
  readonly name: string;
  /** Host end of the veth pair. */
  readonly hostVeth: string;
  /** Address of the host end. */
  readonly hostIp: string;
  /** Address of `eth0` in the namespace (the "container address"). */
  readonly ip: string;
  /** PID of the server process (an `ip netns exec` that became `node`). */
  readonly serverPid: number;
  /** Kills the server and removes the namespace and veth. Idempotent. */
  remove(): Promise<void>;
}

async function freeSubnetIndex(): Promise<number> {
  const { stdout } = await runCommand('ip', ['-4', '-o', 'addr']);
  for (let i = 0; i < 50; i++) {
    const n = 1 + Math.floor(Math.random() * 250);
    if (!stdout.includes(`10.209.${n}.`)) return n;
  }
  throw new Error('no free 10.209.N.0/24 subnet');
}

/** Makes the namespace, veth, addresses and server; removes what it made if a step fails. */
export async function createTestNetns(): Promise<TestNetns> {
  const id = randomBytes(3).toString('hex');
  const name = `bt9-${id}`;
  const hostVeth = `bt9v${id}`;
  const n = await freeSubnetIndex();
  const hostIp = `10.209.${n}.1`;
  const ip = `10.209.${n}.2`;
  let server: ChildProcess | undefined;
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> =>
    (removed ??= (async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((r) => server!.once('exit', r));
        server.kill('SIGKILL');
        await exited;
      }
      await runCommand('ip', ['link', 'del', hostVeth]).catch(() => undefined);
      await runCommand('ip', ['netns', 'del', name]).catch(() => undefined);
    })());
  try {
    await runCommand('ip', ['netns', 'add', name]);
    await ipBatch([`link add ${hostVeth} type veth peer name eth0 netns ${name}`, `addr add ${hostIp}/24 dev ${hostVeth}`, `link set ${hostVeth} up`]);
    await ipBatch(['link set lo up', `addr add ${ip}/24 dev eth0`, 'link set eth0 up', `route add default via ${hostIp}`], name);
    server = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', SERVER, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      server!.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready')) resolve();
      });
      server!.once('exit', (code) => reject(new Error(`server in ${name} exited with ${code}`)));
    });
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, hostVeth, hostIp, ip, serverPid: server!.pid!, remove };
}

/**
 * A host port held by this process: a listening TCP socket or a bound UDP socket on
 * `hostIP:hostPort`. With nftables forwarding it only reserves the port (DNAT sends the
 * traffic on before it reaches the socket, and no other process can bind the port and
 * be silently shadowed); with proxy forwarding it also relays traffic to a target.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { PortProtocol } from '../../cri/port-service.ts';

/** Where a proxy relays to. */
export interface ProxyTarget {
  readonly ip: string;
  readonly port: number;
}

/** An open host port. */
export interface HostPort {
  /** The bound port (the one the kernel picked when 0 was asked for). */
  readonly hostPort: number;
  /** Relays new connections/datagrams to `target` from now on; undefined only reserves the port. */
  setTarget(target: ProxyTarget | undefined): void;
  /** Closes the socket and every relayed connection. Idempotent. */
  close(): Promise<void>;
}

/** A UDP client's flow is forgotten after this long without datagrams in either direction. */
const UDP_IDLE_MS = 30_000;

/**
 * Binds `hostIP:hostPort/protocol` (0 picks a free port) exclusively and resolves with
 * the open port; rejects with the socket's errno error (`EADDRINUSE` when taken,
 * `EADDRNOTAVAIL` for an address that is not local).
 */
export function openHostPort(hostIP: string, hostPort: number, protocol: PortProtocol, target?: ProxyTarget): Promise<HostPort> {
  return protocol === 'UDP' ? openUdp(hostIP, hostPort, target) : openTcp(hostIP, hostPort, target);
}

function openTcp(hostIP: string, hostPort: number, initial: ProxyTarget | undefined): Promise<HostPort> {
  let target = initial;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const t = target;
    if (!t) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: t.ip, port: t.port, allowHalfOpen: true, noDelay: true });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: hostIP, port: hostPort, exclusive: true }, () => {
      server.off('error', reject);
      server.on('error', () => {});
      let closed: Promise<void> | undefined;
      resolve({
        hostPort: (server.address() as net.AddressInfo).port,
        setTarget: (t) => (target = t),
        close: () =>
          (closed ??= new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          })),
      });
    });
  });
}

function openUdp(hostIP: string, hostPort: number, initial: ProxyTarget | undefined): Promise<HostPort> {
  let target = initial;
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const flows = new Map<string, { upstream: dgram.Socket; timer: NodeJS.Timeout }>();
  const endFlow = (id: string): void => {
    const f = flows.get(id);
    if (!f) return;
    flows.delete(id);
    clearTimeout(f.timer);
    f.upstream.close();
  };
  socket.on('message', (msg, rinfo) => {
    const t = target;
    if (!t) return;
    const id = `${rinfo.address}:${rinfo.port}`;
    let flow = flows.get(id);
    if (!flow) {
      const upstream = dgram.createSocket('udp4');
      upstream.on('error', () => endFlow(id));
      upstream.on('message', (reply) => {
        const f = flows.get(id);
        if (f) f.timer.refresh();
        socket.send(reply, rinfo.port, rinfo.address);
      });
      upstream.connect(t.port, t.ip);
      flow = { upstream, timer: setTimeout(() => endFlow(id), UDP_IDLE_MS).unref() };
      flows.set(id, flow);
    }
    flow.timer.refresh();
    const up = flow.upstream;
    // Datagrams sent before `connect` completes need the address; after, they must not have it.
    try {
      up.send(msg);
    } catch {
      up.once('connect', () => up.send(msg));
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: hostIP, port: hostPort, exclusive: true }, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      let closed: Promise<void> | undefined;
      resolve({
        hostPort: socket.address().port,
        setTarget: (t) => {
          target = t;
          for (const id of [...flows.keys()]) endFlow(id);
        },
        close: () =>
          (closed ??= new Promise<void>((done) => {
            for (const id of [...flows.keys()]) endFlow(id);
            socket.close(() => done());
          })),
      });
    });
  });
}

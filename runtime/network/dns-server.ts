import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;
const RCODE_REFUSED = 5;

export interface DnsServerOptions {
  /** Address to listen on (a bridge's gateway address; 127.0.0.1 in tests). */
  readonly address: string;
  /** Default 53; 0 picks a free port. */
  readonly port?: number;
  /**
   * The IPv4 addresses of `name` (lower case, no trailing dot) as seen by the client at
   * `sourceIp`, or undefined when the name is not one of the network's (then the query
   * is forwarded, or refused).
   */
  readonly lookup: (name: string, sourceIp: string) => readonly string[] | undefined;
  /** Nameservers (IPv4, port 53) other names are forwarded to; empty or absent: other names are refused. */
  readonly upstreams?: readonly string[];
  /** TTL of answers. Default 5 s: short, so a name follows a replaced container quickly. */
  readonly ttlSeconds?: number;
  /** How long to wait for an upstream. Default 2 s. */
  readonly forwardTimeoutMs?: number;
}

/** A question of a DNS query. */
export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  /** Offset just past the question section. */
  readonly end: number;
}

/**
 * A tiny DNS server over UDP for one container network, as Docker's embedded DNS and
 * Podman's aardvark-dns: it answers A queries for the names `lookup` knows (other
 * record types of a known name get an empty answer, so resolvers fall back to A),
 * forwards other names to `upstreams`, and refuses them when there are none.
 */
export class DnsServer {
  private socket: Socket | undefined;
  private upstreams: readonly string[];

  constructor(private readonly opts: DnsServerOptions) {
    this.upstreams = opts.upstreams ?? [];
  }

  /** The port it listens on (after `start`). */
  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  /** Changes where unknown names go; empty refuses them. */
  setUpstreams(upstreams: readonly string[]): void {
    this.upstreams = upstreams;
  }

  /** Binds the socket. Rejects when the address cannot be bound. */
  async start(): Promise<void> {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port ?? 53, this.opts.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => {});
    socket.on('message', (msg, rinfo) => void this.answer(socket, msg, rinfo.address, rinfo.port));
    this.socket = socket;
  }

  /** Stops listening. Idempotent. */
  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async answer(socket: Socket, msg: Buffer, address: string, port: number): Promise<void> {
    let reply: Buffer | undefined;
    try {
      reply = await this.replyTo(msg, address);
    } catch {
      reply = msg.length >= 12 ? errorReply(msg, RCODE_SERVFAIL) : undefined;
    }
    if (reply && this.socket === socket) socket.send(reply, port, address);
  }

  private async replyTo(msg: Buffer, sourceIp: string): Promise<Buffer | undefined> {
    if (msg.length < 12) return undefined;
    const flags = msg.readUInt16BE(2);
    if (flags & 0x8000) return undefined; // a response: ignore
    const opcode = (flags >> 11) & 0xf;
    if (opcode !== 0) return errorReply(msg, RCODE_NOTIMP);
    if (msg.readUInt16BE(4) !== 1) return errorReply(msg, RCODE_FORMERR);
    const q = parseQuestion(msg, 12);
    if (!q) return errorReply(msg, RCODE_FORMERR);
    const ips = this.opts.lookup(q.name, sourceIp);
    if (ips !== undefined) return answerReply(msg, q, q.type === TYPE_A && q.class === CLASS_IN ? ips : [], this.opts.ttlSeconds ?? 5);
    if (!this.upstreams.length) return errorReply(msg, RCODE_REFUSED, q.end);
    return (await this.forward(msg)) ?? errorReply(msg, RCODE_SERVFAIL, q.end);
  }

  private async forward(msg: Buffer): Promise<Buffer | undefined> {
    for (const upstream of this.upstreams) {
      if (isIP(upstream) !== 4) continue;
      const reply = await forwardOnce(msg, upstream, this.opts.forwardTimeoutMs ?? 2_000);
      if (reply) return reply;
    }
    return undefined;
  }
}

function forwardOnce(msg: Buffer, upstream: string, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (r: Buffer | undefined) => {
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('message', (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === msg.readUInt16BE(0)) done(reply);
    });
    s.send(msg, 53, upstream);
  });
}

/** Parses the question at `offset` (no compression pointers allowed there); undefined when malformed. */
export function parseQuestion(msg: Buffer, offset: number): DnsQuestion | undefined {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    if (i >= msg.length) return undefined;
    const len = msg[i]!;
    if (len === 0) break;
    if (len > 63 || i + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  if (i + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i + 1), class: msg.readUInt16BE(i + 3), end: i + 5 };
}

/** Encodes a DNS query for `name` (tests and health checks). */
export function encodeQuery(id: number, name: string, type = TYPE_A): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(CLASS_IN, 3);
  return Buffer.concat([header, ...parts, tail]);
}

/** Decodes the rcode and A answers of a reply (tests). */
export function decodeReply(msg: Buffer): { id: number; rcode: number; addresses: string[] } {
  const id = msg.readUInt16BE(0);
  const rcode = msg.readUInt16BE(2) & 0xf;
  const q = parseQuestion(msg, 12);
  const addresses: string[] = [];
  let i = q?.end ?? msg.length;
  for (let n = msg.readUInt16BE(6); n > 0 && i < msg.length; n--) {
    i += (msg[i]! & 0xc0) === 0xc0 ? 2 : skipName(msg, i) - i;
    const type = msg.readUInt16BE(i);
    const rdlen = msg.readUInt16BE(i + 8);
    if (type === TYPE_A && rdlen === 4) addresses.push([...msg.subarray(i + 10, i + 14)].join('.'));
    i += 10 + rdlen;
  }
  return { id, rcode, addresses };
}

function skipName(msg: Buffer, i: number): number {
  while (i < msg.length && msg[i] !== 0) i += 1 + msg[i]!;
  return i + 1;
}

function answerReply(query: Buffer, q: DnsQuestion, ips: readonly string[], ttlSeconds: number): Buffer {
  const header = Buffer.from(query.subarray(0, 12));
  // QR, opcode 0, AA, RD copied, RA; NXDOMAIN never: the name exists (maybe without this type)
  header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ips.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const answers = ips.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(ttlSeconds, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((p, k) => rr.writeUInt8(Number(p), 12 + k));
    return rr;
  });
  return Buffer.concat([header, query.subarray(12, q.end), ...answers]);
}

function errorReply(query: Buffer, rcode: number, questionEnd?: number): Buffer {
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  header.writeUInt16BE(questionEnd ? 1 : 0, 4);
  header.writeUInt16BE(0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  return questionEnd ? Buffer.concat([header, query.subarray(12, questionEnd)]) : header;
}

/** Response codes, for callers and tests. */
export const DNS_RCODE = { NOERROR: 0, FORMERR: RCODE_FORMERR, SERVFAIL: RCODE_SERVFAIL, NXDOMAIN: RCODE_NXDOMAIN, NOTIMP: RCODE_NOTIMP, REFUSED: RCODE_REFUSED } as const;

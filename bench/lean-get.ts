/**
 * A lean HTTP/1.1 GET client for load generation: one keep-alive TLS connection,
 * requests written as bytes, responses parsed only as far as the status line,
 * `Content-Length` or chunked framing. Node's `https` client costs several times the
 * server's own CPU per request (headers objects, streams, agents); on two cores the
 * load generator then takes the CPU the server needs, and the latency measured is
 * the generator's. `wrk` and Go's client are lean in the same way.
 */
import tls from 'node:tls';
import type { ApiEndpoint } from './api-client.ts';

interface Pending {
  readonly resolve: (status: number) => void;
  readonly reject: (err: Error) => void;
}

/** One connection; one request in flight at a time (a closed-loop client). */
export class LeanGetConnection {
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;
  private readonly head: string;

  private constructor(private readonly socket: tls.TLSSocket, endpoint: ApiEndpoint) {
    const u = new URL(endpoint.url);
    this.head = `Host: ${u.host}\r\nAuthorization: Bearer ${endpoint.token}\r\nAccept: application/json\r\nUser-Agent: berth-bench\r\n\r\n`;
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.parse();
    });
    const fail = (err: Error) => {
      const p = this.pending;
      this.pending = undefined;
      p?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Opens a TLS connection trusting the endpoint's CA. */
  static open(endpoint: ApiEndpoint): Promise<LeanGetConnection> {
    const u = new URL(endpoint.url);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca: endpoint.caPem, servername: u.hostname === '127.0.0.1' ? undefined : u.hostname, ALPNProtocols: ['http/1.1'] }, () => {
        socket.setNoDelay(true);
        resolve(new LeanGetConnection(socket, endpoint));
      });
      socket.once('error', reject);
    });
  }

  /** GETs `path` and resolves with the status once the whole body has arrived. */
  get(path: string): Promise<number> {
    if (this.pending) return Promise.reject(new Error('one request at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\n${this.head}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Completes the pending request once `buf` holds a whole response. */
  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.pending) return;
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let total: number;
    if (length) {
      total = end + 4 + Number(length[1]);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const t = chunkedEnd(this.buf, end + 4);
      if (t < 0) return;
      total = t;
    } else {
      this.pending.reject(new Error(`response without length: ${head.split('\r\n')[0]}`));
      this.pending = undefined;
      return;
    }
    if (this.buf.length < total) return;
    this.buf = this.buf.subarray(total);
    const p = this.pending;
    this.pending = undefined;
    p.resolve(status);
  }
}

/** The offset just past a complete chunked body starting at `from`, or -1 when incomplete. */
function chunkedEnd(buf: Buffer, from: number): number {
  let pos = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return -1;
    const size = parseInt(buf.toString('latin1', pos, eol), 16);
    pos = eol + 2 + size + 2;
    if (pos > buf.length) return -1;
    if (size === 0) return pos;
  }
}

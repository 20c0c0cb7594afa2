/**
 * Kubernetes' remote-command streams (exec, attach) as kubectl speaks them: a WebSocket
 * with the `v5.channel.k8s.io` (or `v4`) sub-protocol, each frame one byte of channel
 * then the payload — 0 stdin, 1 stdout, 2 stderr, 3 the final `Status`, 4 terminal
 * size (`{"Width":…,"Height":…}`), 255 "close this stream" (v5: how stdin's end is
 * told). Spoken here with `ws` over the CLI's own connection (the local socket when
 * there is one) rather than through `@kubernetes/client-node`, whose loading alone cost
 * every `berth exec` ~150 ms.
 */
import type { Readable, Writable } from 'node:stream';
import type { WriteStream } from 'node:tty';
import type WebSocket from 'ws';
import type { Connection } from './connection.ts';

/** The channels of the protocol. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

/** The protocols offered, the server's choice first. */
export const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** The final Status of a session, as the server sends it on channel 3. */
export interface ExecStatus {
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { readonly causes?: readonly { readonly reason?: string; readonly message?: string }[] };
}

export interface ChannelIo {
  readonly stdout?: Writable | null;
  readonly stderr?: Writable | null;
  /** Sent on channel 0; its end closes the remote stdin (v5) or the session (v4). */
  readonly stdin?: Readable | null;
  /** A terminal whose size is sent at once and on every change (`SIGWINCH`). */
  readonly terminal?: WriteStream | null;
}

export interface ChannelSession {
  /** Settles when the session ends: with the server's final Status, undefined when it sent none. */
  readonly ended: Promise<ExecStatus | undefined>;
  /** Ends the session from this side. */
  close(): void;
}

/**
 * Opens the stream at `path` (`…/exec?…`, `…/attach?…`) and relays `io` until the server
 * ends it. Rejects when the server refuses it (`ApiStatusError` with its Status).
 */
export async function openChannelSession(conn: Connection, path: string, io: ChannelIo): Promise<ChannelSession> {
  const ws = await conn.websocket(path, CHANNEL_PROTOCOLS);
  let status: ExecStatus | undefined;
  const ended = new Promise<ExecStatus | undefined>((resolve) => ws.once('close', () => resolve(status)));
  ws.on('error', () => ws.terminate());
  ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (!isBinary || buf.length === 0) return;
    const payload = buf.subarray(1);
    if (buf[0] === Channel.stdout) io.stdout?.write(payload);
    else if (buf[0] === Channel.stderr) io.stderr?.write(payload);
    else if (buf[0] === Channel.status) {
      try {
        status = JSON.parse(payload.toString('utf8')) as ExecStatus;
      } catch {
        status = { status: 'Failure', message: `an unreadable status: ${payload.toString('utf8').slice(0, 200)}` };
      }
      ws.close(1000);
    }
  });
  const send = (channel: number, payload: Buffer): void => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), payload]));
  };
  const cleanups: (() => void)[] = [];
  const { stdin, terminal } = io;
  if (stdin) {
    const onData = (d: Buffer | string) => send(Channel.stdin, Buffer.isBuffer(d) ? d : Buffer.from(d));
    const onEnd = () => (ws.protocol === 'v5.channel.k8s.io' ? send(Channel.close, Buffer.from([Channel.stdin])) : ws.close(1000));
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    cleanups.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
    });
  }
  if (terminal) {
    const resize = () => {
      if (terminal.columns && terminal.rows) send(Channel.resize, Buffer.from(JSON.stringify({ Width: terminal.columns, Height: terminal.rows })));
    };
    resize();
    terminal.on('resize', resize);
    cleanups.push(() => terminal.off('resize', resize));
  }
  void ended.then(() => cleanups.forEach((c) => c()));
  return { ended, close: () => ws.close(1000) };
}

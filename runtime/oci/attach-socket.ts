/**
 * conmon's attach socket and terminal control fifo, reached from Node.
 *
 * conmon serves, in each container's (or exec session's) bundle directory:
 * - `attach`: a unix SOCK_SEQPACKET socket. Each packet conmon sends is one chunk
 *   of output whose first byte names the stream (measured with conmon 2.1.6:
 *   2 stdout, 3 stderr; a TTY's output is all 2). Each packet a client sends is
 *   written to the process' stdin (the pty master with a TTY). A client's
 *   `shutdown(SHUT_WR)` closes that stdin unless conmon runs with `--leave-stdin-open`.
 * - `ctl`: a fifo; `1 HEIGHT WIDTH\n` sets the terminal size (TIOCSWINSZ on the
 *   pty master, so the process gets SIGWINCH).
 *
 * Node cannot open SOCK_SEQPACKET sockets (connecting a stream socket gives
 * EPROTOTYPE), so a short Perl program bridges the socket to pipes: perl-base is
 * Essential in Debian (always installed) and its core `Socket` module has
 * SOCK_SEQPACKET. No native code, no npm package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { RuntimeError } from '../cri/errors.ts';

export const DEFAULT_PERL = '/usr/bin/perl';

/**
 * The bridge: connects to `attach` in the directory given as its argument (relative,
 * so the 108-byte limit of socket paths never applies), reports `ok` or the failure
 * on fd 3, then copies stdin to the socket (8 KiB packets; EOF becomes SHUT_WR) and
 * packets to stdout (stream 2) or stderr (stream 3) until conmon closes the socket.
 */
const BRIDGE = String.raw`
use strict; use warnings; use Socket; use IO::Select;
open(my $st, '>&=', 3) or exit 3;
select((select($st), $| = 1)[0]);
my $dir = shift @ARGV;
chdir $dir or do { print $st "cannot enter $dir: $!\n"; exit 2 };
socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or do { print $st "socket: $!\n"; exit 2 };
connect($s, pack_sockaddr_un('attach')) or do { print $st "cannot connect to $dir/attach: $!\n"; exit 2 };
print $st "ok\n"; close $st;
$SIG{PIPE} = 'IGNORE';
binmode STDIN; binmode STDOUT; binmode STDERR;
my $sel = IO::Select->new($s, \*STDIN);
sub put { my ($fh, $d) = @_; while (length $d) { my $n = syswrite($fh, $d); exit 0 unless defined $n; substr($d, 0, $n) = '' } }
while (1) {
  for my $fh ($sel->can_read) {
    if ($fh == $s) {
      my $buf = '';
      defined(recv($s, $buf, 65536, 0)) or exit 0;
      exit 0 if $buf eq '';
      put(ord($buf) == 3 ? \*STDERR : \*STDOUT, substr($buf, 1));
    } else {
      my $n = sysread(STDIN, my $buf, 8192);
      if (!$n) { shutdown($s, 1); $sel->remove(\*STDIN); next }
      send($s, $buf, 0) or exit 0;
    }
  }
}
`;

/** One client connection to a conmon attach socket. */
export interface AttachConnection {
  /** Bytes written here reach the process' stdin; `end()` closes it (see `--leave-stdin-open`). */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** The process' stderr (never used with a TTY). */
  readonly stderr: Readable;
  /** Resolves when conmon closed the connection (the process ended) or `close()` was called. */
  readonly closed: Promise<void>;
  /** Disconnects; the process keeps running. Idempotent. */
  close(): void;
}

export interface AttachConnectOptions {
  /** Directory holding conmon's `attach` socket: the bundle, or its symlink `<socket-dir-path>/<cuuid>`. */
  readonly dir: string;
  readonly perlBinary?: string;
  /** Gives up connecting after this long (default 5 s). */
  readonly timeoutMs?: number;
}

/**
 * Connects to conmon's attach socket in `dir` and resolves once connected: output
 * conmon sends from then on arrives on `stdout`/`stderr`; earlier output is only in
 * the log. Rejects with `Unavailable` when the socket is missing or refuses
 * (conmon is gone), `Internal` when the bridge cannot start.
 */
export function connectAttachSocket(opts: AttachConnectOptions): Promise<AttachConnection> {
  const child = spawn(opts.perlBinary ?? DEFAULT_PERL, ['-e', BRIDGE, '--', opts.dir], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const status = child.stdio[3] as Readable;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.stdin!.on('error', () => {}); // EPIPE once conmon has gone
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => fail(new RuntimeError('Unavailable', `cannot connect to the attach socket in ${opts.dir} within ${opts.timeoutMs ?? 5_000} ms`)), opts.timeoutMs ?? 5_000);
    function fail(err: RuntimeError): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    }
    child.on('error', (e) => fail(new RuntimeError('Internal', `cannot start the attach bridge (${opts.perlBinary ?? DEFAULT_PERL}): ${e.message}`, { cause: e })));
    status.on('error', () => {});
    status.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (!text.includes('\n')) return;
      if (text.startsWith('ok\n')) {
        clearTimeout(timer);
        resolve(toConnection(child, closed));
      } else fail(new RuntimeError('Unavailable', text.trim()));
    });
    status.on('end', () => {
      if (!text.includes('\n')) fail(new RuntimeError('Internal', 'the attach bridge exited before connecting'));
    });
  });
}

function toConnection(child: ChildProcess, closed: Promise<void>): AttachConnection {
  return {
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr: child.stderr!,
    closed,
    close: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Sets the terminal size of the TTY conmon holds for the bundle `dir` (its `ctl`
 * fifo). Resolves without effect when conmon is gone (nobody reads the fifo).
 */
export async function resizeTerminal(dir: string, cols: number, rows: number): Promise<void> {
  if (!(Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0 && cols <= 0xffff && rows <= 0xffff)) {
    throw new RuntimeError('InvalidArgument', `invalid terminal size ${cols}x${rows}`);
  }
  let fh;
  try {
    // O_NONBLOCK: opening a fifo for writing with no reader fails (ENXIO) instead of blocking
    fh = await open(join(dir, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    if (!fh) return;
    await fh.write(`1 ${rows} ${cols}\n`);
  } finally {
    await fh?.close();
  }
}

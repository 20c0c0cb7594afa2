/**
 * The berth server as a benchmark runs it: a child process of its own, so that the
 * load generator does not share the server's event loop.
 *
 * Run (as `server-process.ts` does, from its bundle): node [--expose-gc] dist/bench-server-child.mjs DATA_DIR
 *
 * Starts `startServer` on 127.0.0.1 port 0 with a silent logger (`BENCH_LOG_LEVEL=info`
 * logs as `berth server` does by default, to stderr), writes the CA to
 * `DATA_DIR/bench-ca.pem` and prints one JSON line on stdout:
 * `{ "url", "token", "caPath", "pid" }`. Then reads commands, one per line, on stdin:
 * `gc` runs a full garbage collection (needs `--expose-gc`) and answers `{"gc":true}`;
 * `mem` answers `process.memoryUsage()` (bytes); `heapsnapshot DIR` writes a V8 heap
 * snapshot into DIR and answers `{"heapSnapshot": PATH}`; `stop` closes the server and exits 0. SIGTERM does the same as `stop`, and so does
 * stdin ending, so the server never outlives the benchmark runner.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import v8 from 'node:v8';
import { startServer } from '../cli/server.ts';
import { createLogger } from '../cli/logger.ts';
import { tuneV8ForDaemon } from '../cli/v8-tuning.ts';

tuneV8ForDaemon(); // as `berth server` does
const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: server-child.ts DATA_DIR\n');
  process.exit(2);
}

// The API server alone: no node agent (it would run the benchmark's containers) and no
// control-plane controllers (the scheduler would add its own writes to every create).
const apiOnly: Record<string, unknown> = { runtime: 'none', controllers: false };
const server = await startServer({ dataDir, listen: '127.0.0.1:0', logger: createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' }), ...apiOnly });
const caPath = path.join(dataDir, 'bench-ca.pem');
fs.writeFileSync(caPath, server.caPem);
process.stdout.write(`${JSON.stringify({ url: server.url, token: server.token, caPath, pid: process.pid })}\n`);

let stopping: Promise<void> | undefined;
const stop = (): Promise<void> =>
  (stopping ??= server.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`server-child: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  ));

process.once('SIGTERM', () => void stop());
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'stop') void stop();
  else if (cmd === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    process.stdout.write(`${JSON.stringify({ gc: gc !== undefined })}\n`);
  } else if (cmd.startsWith('heapsnapshot ')) {
    const file = v8.writeHeapSnapshot(path.join(cmd.slice('heapsnapshot '.length), `server-${process.pid}.heapsnapshot`));
    process.stdout.write(`${JSON.stringify({ heapSnapshot: file })}\n`);
  } else if (cmd === 'mem') {
    process.stdout.write(`${JSON.stringify(process.memoryUsage())}\n`);
  }
});
lines.on('close', () => void stop());

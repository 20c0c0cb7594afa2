import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { WriteStream } from 'node:tty';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { ExecStreams } from '../../runtime/cri/types.ts';
import { startStreamsFixture, type StreamsFixture } from '../../test/harness/streams-fixture.ts';
import { writeKubeconfig } from '../kubeconfig.ts';
import { openChannelSession } from './channel-session.ts';
import { connect, type Connection } from './connection.ts';

let fx: StreamsFixture;
let dir: string;
let conn: Connection;

beforeAll(async () => {
  fx = await startStreamsFixture();
  dir = await mkdtemp(join(tmpdir(), 'berth-channel-test-'));
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  await writeKubeconfig(kubeconfig, { server: fx.url, caPem: fx.pki.caCertPem, token: fx.pki.adminToken });
  conn = connect({ kubeconfig });
});

afterAll(async () => {
  conn?.close();
  await fx?.close();
  await rm(dir, { recursive: true, force: true });
});

const execPath = (name: string, command: string[], streams: string) =>
  `/apis/berth.dev/v1/namespaces/default/containers/${name}/exec?${streams}&${command.map((c) => `command=${encodeURIComponent(c)}`).join('&')}`;

/** Collects what a writable receives. */
function sink(): PassThrough & { text(): string } {
  const chunks: Buffer[] = [];
  const s = new PassThrough();
  s.on('data', (d: Buffer) => chunks.push(d));
  return Object.assign(s, { text: () => Buffer.concat(chunks).toString('utf8') });
}

describe('openChannelSession (the exec/attach channel protocol over ws)', () => {
  it('relays stdout and stderr apart and ends with the final Status: Success, or the exit code', async () => {
    await fx.containerOn('ch-out', 'node-1');
    const stdout = sink();
    const stderr = sink();
    const ok = await openChannelSession(conn, execPath('ch-out', ['sh', '-c', 'echo out; echo err >&2'], 'stdout=true&stderr=true'), { stdout, stderr });
    expect(await ok.ended).toEqual({ metadata: {}, status: 'Success' });
    expect([stdout.text(), stderr.text()]).toEqual(['out\n', 'err\n']);
    const failed = await openChannelSession(conn, execPath('ch-out', ['sh', '-c', 'exit 3'], 'stdout=true'), { stdout: sink() });
    expect(await failed.ended).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  });

  it('sends stdin and closes it when it ends (v5), so that the command sees its end', async () => {
    await fx.containerOn('ch-in', 'node-1');
    const stdout = sink();
    const session = await openChannelSession(conn, execPath('ch-in', ['cat'], 'stdin=true&stdout=true'), { stdout, stdin: Readable.from(['one\n', 'two\n']) });
    expect(await session.ended).toMatchObject({ status: 'Success' });
    expect(stdout.text()).toBe('one\ntwo\n');
  });

  it("sends the terminal's size at the start and on each change", async () => {
    await fx.containerOn('ch-tty', 'node-1');
    const resizes: [number, number][] = [];
    const realExec = fx.runtime.exec.bind(fx.runtime);
    fx.runtime.exec = async (id, req, opts): Promise<ExecStreams> => {
      const streams = await realExec(id, req, opts);
      return { ...streams, exit: streams.exit, resize: (w, h) => void resizes.push([w, h]) };
    };
    onTestFinished(() => void (fx.runtime.exec = realExec));
    const terminal = Object.assign(new EventEmitter(), { columns: 120, rows: 40 }) as unknown as WriteStream;
    const stdin = new PassThrough();
    const session = await openChannelSession(conn, execPath('ch-tty', ['cat'], 'stdin=true&stdout=true&tty=true'), { stdout: sink(), stdin, terminal });
    await expect.poll(() => resizes).toEqual([[120, 40]]);
    Object.assign(terminal, { columns: 100, rows: 30 }).emit('resize');
    await expect.poll(() => resizes).toEqual([[120, 40], [100, 30]]);
    stdin.end();
    expect(await session.ended).toMatchObject({ status: 'Success' });
    expect(terminal.listenerCount('resize')).toBe(0);
  });

  it("rejects with the server's Status when it refuses the stream", async () => {
    await expect(openChannelSession(conn, execPath('ch-missing', ['true'], 'stdout=true'), {})).rejects.toMatchObject({ code: 404, reason: 'NotFound' });
    await fx.containerOn('ch-bad', 'node-1');
    await expect(openChannelSession(conn, execPath('ch-bad', ['pwd'], 'stdout=true&workingDir=rel'), {})).rejects.toMatchObject({ code: 400, message: expect.stringContaining('workingDir must be an absolute path') });
  });
});

/**
 * Interop with a real registry client: Debian's skopeo pushes to and pulls from
 * berth's registry over HTTPS, trusting the server's CA, logging in with the bearer-token
 * flow (`--creds x:<admin token>`).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../test/fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../test/harness/control-plane.ts';

const run = promisify(execFile);
const hasSkopeo = await run('skopeo', ['--version']).then(() => true, () => false);

let cp: ControlPlane;
let dir: string;
let certDir: string;
let host: string;
let first: BusyboxImage;

async function skopeo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('skopeo', ['--insecure-policy', ...args], {
      timeout: 120_000, env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
const creds = () => `x:${cp.server.token}`;
const metric = async (pattern: RegExp): Promise<number> => {
  const m = pattern.exec((await cp.request('GET', '/metrics')).text);
  return m ? Number(m[1]) : 0;
};

describe.skipIf(!hasSkopeo)('skopeo against the built-in registry', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-registry-skopeo-'));
    cp = await startControlPlane({ storage: 'memory' });
    host = `127.0.0.1:${cp.server.port}`;
    certDir = join(dir, 'certs');
    await mkdir(certDir);
    await writeFile(join(certDir, 'ca.crt'), cp.server.caPem);
    first = await buildBusyboxImage(join(dir, 'one'), { tag: '1' });
  }, 60_000);
  afterAll(async () => {
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pushes an OCI layout into the registry and pulls it back with the same manifest digest', async () => {
    const tokens = /berth_registry_requests_total\{method="GET",route="token",code="200"\} (\d+)/;
    const push = await skopeo(['copy', '--dest-creds', creds(), '--dest-cert-dir', certDir, `oci:${first.layoutDir}:1`, `docker://${host}/team/busybox:1`]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    // skopeo logged in through the token endpoint, as with Docker Hub
    expect(await metric(tokens)).toBeGreaterThan(0);

    const inspect = await skopeo(['inspect', '--raw', '--creds', creds(), '--cert-dir', certDir, `docker://${host}/team/busybox:1`]);
    expect(inspect.code).toBe(0);
    const raw = Buffer.from(inspect.stdout);
    expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(raw).digest('hex')}`).toBe(first.manifestDigest);
    const info = await skopeo(['inspect', '--creds', creds(), '--cert-dir', certDir, `docker://${host}/team/busybox:1`]);
    expect(JSON.parse(info.stdout).Digest).toBe(first.manifestDigest);

    const out = join(dir, 'out');
    const pull = await skopeo(['copy', '--src-creds', creds(), '--src-cert-dir', certDir, `docker://${host}/team/busybox:1`, `oci:${out}:1`]);
    expect(pull.code).toBe(0);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(first.manifestDigest);
    expect(await readFile(join(out, 'blobs', 'sha256', first.layerDigest.slice(7)))).toEqual(
      await readFile(join(first.layoutDir, 'blobs', 'sha256', first.layerDigest.slice(7))));
  });

  it('lists the tags', async () => {
    const r = await skopeo(['list-tags', '--creds', creds(), '--cert-dir', certDir, `docker://${host}/team/busybox`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ Repository: `${host}/team/busybox`, Tags: ['1'] });
  });

  it('pushes an image that shares the layer without uploading the layer again', async () => {
    const second = await buildBusyboxImage(join(dir, 'two'), { tag: '2', config: { Labels: { second: 'yes' } } });
    expect(second.layerDigest).toBe(first.layerDigest);
    const layerSize = (await readFile(join(first.layoutDir, 'blobs', 'sha256', first.layerDigest.slice(7)))).length;
    const received = /berth_registry_received_bytes_total\{route="upload"\} (\d+)/;
    const mounts = /berth_registry_requests_total\{method="POST",route="upload",code="201"\} (\d+)/;
    const heads = /berth_registry_requests_total\{method="HEAD",route="blob",code="200"\} (\d+)/;
    const before = { received: await metric(received), mounts: await metric(mounts), heads: await metric(heads) };

    // same repository: the existence check (HEAD) finds the layer
    const same = await skopeo(['copy', '--dest-creds', creds(), '--dest-cert-dir', certDir, `oci:${second.layoutDir}:2`, `docker://${host}/team/busybox:2`]);
    expect(same.code).toBe(0);
    // another repository: skopeo mounts the layer from team/busybox (its blob-info cache knows it is there)
    const other = await skopeo(['copy', '--dest-creds', creds(), '--dest-cert-dir', certDir, `oci:${second.layoutDir}:2`, `docker://${host}/team/other:2`]);
    expect(other.code).toBe(0);

    const after = { received: await metric(received), mounts: await metric(mounts), heads: await metric(heads) };
    expect(after.received - before.received).toBeLessThan(layerSize);
    expect(after.heads).toBeGreaterThan(before.heads);
    expect(after.mounts).toBeGreaterThan(before.mounts);
    const tags = await skopeo(['list-tags', '--creds', creds(), '--cert-dir', certDir, `docker://${host}/team/busybox`]);
    expect(JSON.parse(tags.stdout).Tags).toEqual(['1', '2']);
    const inspect = await skopeo(['inspect', '--creds', creds(), '--cert-dir', certDir, `docker://${host}/team/other:2`]);
    expect(JSON.parse(inspect.stdout).Digest).toBe(second.manifestDigest);
  });

  it('is refused without credentials and with a wrong password, after the bearer challenge', async () => {
    const anonymous = await skopeo(['inspect', '--cert-dir', certDir, `docker://${host}/team/busybox:1`]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized|authentication required/i);
    const wrong = await skopeo(['inspect', '--creds', 'x:wrong', '--cert-dir', certDir, `docker://${host}/team/busybox:1`]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/401|unauthorized/i);
    const r = await cp.request('GET', '/v2/', { token: null });
    expect(r.headers['www-authenticate']).toBe(`Bearer realm="https://${host}/v2/token",service="berth"`);
  });
});

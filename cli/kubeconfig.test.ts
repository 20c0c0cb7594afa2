import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { parse } from 'yaml';
import { describe, expect, it, onTestFinished } from 'vitest';
import { bearerAuth } from '../api/server/auth.ts';
import { LOCAL_SOCKET_EXTENSION } from './client/kubeconfig-access.ts';
import { adminKubeconfigPath, localSocketPath } from './data-dir.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { ensurePki } from './pki.ts';

const execFileAsync = promisify(execFile);

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-kubeconfig-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

async function kubectlAvailable(): Promise<boolean> {
  try {
    await execFileAsync('kubectl', ['version', '--client']);
    return true;
  } catch {
    return false;
  }
}
const hasKubectl = await kubectlAvailable();

/** Runs kubectl with its cache and home inside `dir`; resolves to exit code and output. */
async function kubectl(dir: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('kubectl', [...args, `--cache-dir=${join(dir, 'cache')}`], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('writeKubeconfig', () => {
  it('writes one cluster, user and context, current, with mode 0600', async () => {
    const path = join(await tempDir(), 'nested', 'kubeconfig.yaml');
    await writeKubeconfig(path, { server: 'https://127.0.0.1:7443', caPem: CA_PEM, token: 't0ken' });

    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(parse(await readFile(path, 'utf8'))).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      preferences: {},
      clusters: [
        {
          name: 'berth',
          cluster: {
            server: 'https://127.0.0.1:7443',
            'certificate-authority-data': Buffer.from(CA_PEM).toString('base64'),
          },
        },
      ],
      users: [{ name: 'berth', user: { token: 't0ken' } }],
      contexts: [{ name: 'berth', context: { cluster: 'berth', user: 'berth', namespace: 'default' } }],
      'current-context': 'berth',
    });
  });

  it('uses the given name and namespace and replaces an existing file', async () => {
    const path = join(await tempDir(), 'kc.yaml');
    await writeKubeconfig(path, { server: 'https://a:1', caPem: CA_PEM, token: 'old' });
    await writeKubeconfig(path, { server: 'https://b:2', caPem: CA_PEM, token: 'new', name: 'lab', namespace: 'team-a' });

    const doc = parse(await readFile(path, 'utf8'));
    expect(doc['current-context']).toBe('lab');
    expect(doc.contexts).toEqual([{ name: 'lab', context: { cluster: 'lab', user: 'lab', namespace: 'team-a' } }]);
    expect(doc.users).toEqual([{ name: 'lab', user: { token: 'new' } }]);
    expect(doc.clusters[0].cluster.server).toBe('https://b:2');
  });

  it.each([
    { name: 'a server that is not a URL', server: '127.0.0.1:7443', token: 't' },
    { name: 'a non-http server URL', server: 'unix:///run/berth.sock', token: 't' },
    { name: 'an empty token', server: 'https://127.0.0.1:7443', token: '' },
  ])('rejects $name', async ({ server, token }) => {
    const path = join(await tempDir(), 'kc.yaml');
    await expect(writeKubeconfig(path, { server, caPem: CA_PEM, token })).rejects.toThrow(TypeError);
  });

  it('puts the admin kubeconfig at DATA_DIR/kubeconfig.yaml and the local socket at DATA_DIR/api.sock', () => {
    expect(adminKubeconfigPath('/var/lib/berth')).toBe('/var/lib/berth/kubeconfig.yaml');
    expect(localSocketPath('/var/lib/berth')).toBe('/var/lib/berth/api.sock');
  });

  it('writes JSON (which YAML readers read too) and names the local socket in a cluster extension', async () => {
    const path = join(await tempDir(), 'kubeconfig.yaml');
    await writeKubeconfig(path, { server: 'https://127.0.0.1:7443', caPem: CA_PEM, token: 't', localSocket: '/var/lib/berth/api.sock' });
    const text = await readFile(path, 'utf8');
    const doc = JSON.parse(text);
    expect(parse(text)).toEqual(doc);
    expect(doc.clusters[0].cluster.extensions).toEqual([{ name: LOCAL_SOCKET_EXTENSION, extension: { path: '/var/lib/berth/api.sock' } }]);
  });

  describe('read by kubectl', () => {
    it('gives the token and CA back through kubectl config view', async (ctx) => {
      ctx.skip(!hasKubectl, 'kubectl is not on PATH');
      const dir = await tempDir();
      const path = join(dir, 'kubeconfig.yaml');
      await writeKubeconfig(path, { server: 'https://127.0.0.1:7443', caPem: CA_PEM, token: 'secret-token' });

      const token = await kubectl(dir, ['--kubeconfig', path, 'config', 'view', '--raw', '-o', 'jsonpath={.users[0].user.token}']);
      expect(token).toMatchObject({ code: 0, stdout: 'secret-token' });
      const ca = await kubectl(dir, [
        '--kubeconfig',
        path,
        'config',
        'view',
        '--raw',
        '-o',
        'jsonpath={.clusters[0].cluster.certificate-authority-data}',
      ]);
      expect(Buffer.from(ca.stdout, 'base64').toString('utf8')).toBe(CA_PEM);
      const ns = await kubectl(dir, ['--kubeconfig', path, 'config', 'view', '--minify', '-o', 'jsonpath={..namespace}']);
      expect(ns.stdout).toBe('default');
    });

    it('keeps the local-socket extension readable (kubectl ignores what it does not know)', async (ctx) => {
      ctx.skip(!hasKubectl, 'kubectl is not on PATH');
      const dir = await tempDir();
      const path = join(dir, 'kubeconfig.yaml');
      await writeKubeconfig(path, { server: 'https://127.0.0.1:7443', caPem: CA_PEM, token: 't', localSocket: join(dir, 'api.sock') });
      const ext = await kubectl(dir, ['--kubeconfig', path, 'config', 'view', '-o', 'jsonpath={.clusters[0].cluster.extensions[0].extension.path}']);
      expect(ext).toMatchObject({ code: 0, stdout: join(dir, 'api.sock') });
    });

    it('lets kubectl reach an HTTPS server with the generated PKI, verifying TLS and sending the token', async (ctx) => {
      ctx.skip(!hasKubectl, 'kubectl is not on PATH');
      const dir = await tempDir();
      const pki = await ensurePki(dir, { hosts: [] });
      const app = express();
      app.use(bearerAuth({ tokens: new Map([[pki.adminToken, { user: 'admin', groups: ['system:masters'] }]]) }));
      app.get('/probe', (_req, res) => {
        res.json({ user: res.locals.user.name });
      });
      const server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      onTestFinished(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      );
      const server_ = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

      const good = adminKubeconfigPath(dir);
      await writeKubeconfig(good, { server: server_, caPem: pki.caCertPem, token: pki.adminToken });
      const ok = await kubectl(dir, ['--kubeconfig', good, 'get', '--raw', '/probe']);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toEqual({ user: 'admin' });

      const badToken = join(dir, 'bad-token.yaml');
      await writeKubeconfig(badToken, { server: server_, caPem: pki.caCertPem, token: 'not-the-token' });
      const denied = await kubectl(dir, ['--kubeconfig', badToken, 'get', '--raw', '/probe']);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/Unauthorized/);

      const otherCa = (await ensurePki(join(dir, 'other'), { hosts: [] })).caCertPem;
      const badCa = join(dir, 'bad-ca.yaml');
      await writeKubeconfig(badCa, { server: server_, caPem: otherCa, token: pki.adminToken });
      const untrusted = await kubectl(dir, ['--kubeconfig', badCa, 'get', '--raw', '/probe']);
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.stderr).toMatch(/certificate signed by unknown authority|x509/);
    });
  });
});

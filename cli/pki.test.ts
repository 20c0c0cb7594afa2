import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ensurePki, writeFileAtomic } from './pki.ts';

const DAY_MS = 86_400_000;

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pki-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** The SANs of a certificate as a sorted list like `DNS:localhost`, `IP:127.0.0.1`. */
function sans(pem: string): string[] {
  return (new X509Certificate(pem).subjectAltName ?? '')
    .split(', ')
    .map((s) => s.replace('IP Address:', 'IP:'))
    .sort();
}

describe('ensurePki', () => {
  it('creates a CA, a serving certificate and a token with private files 0600 in a 0700 dir', async () => {
    const dataDir = await tempDataDir();
    const pki = await ensurePki(dataDir, { hosts: [] });

    expect(pki.generated).toEqual({ ca: true, servingCert: true, adminToken: true });
    expect(await mode(join(dataDir, 'pki'))).toBe(0o700);
    expect(await mode(pki.keyPath)).toBe(0o600);
    expect(await mode(pki.tokenPath)).toBe(0o600);
    expect(await mode(join(dataDir, 'pki', 'ca.key'))).toBe(0o600);
    expect(await mode(pki.caPath)).toBe(0o644);
    expect(await mode(pki.certPath)).toBe(0o644);
    expect(await readFile(pki.caPath, 'utf8')).toBe(pki.caCertPem);
    expect(await readFile(pki.certPath, 'utf8')).toBe(pki.serverCertPem);
    expect(await readFile(pki.keyPath, 'utf8')).toBe(pki.serverKeyPem);
    expect((await readFile(pki.tokenPath, 'utf8')).trim()).toBe(pki.adminToken);
    expect(Buffer.from(pki.adminToken, 'base64url')).toHaveLength(32);
    expect(pki.adminToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('issues a CA valid 10 years and a serving cert valid 1 year for serverAuth that verifies against it', async () => {
    const pki = await ensurePki(await tempDataDir(), { hosts: [] });
    const ca = new X509Certificate(pki.caCertPem);
    const cert = new X509Certificate(pki.serverCertPem);

    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // extended key usage: serverAuth
    const days = (x: X509Certificate): number => (Date.parse(x.validTo) - Date.now()) / DAY_MS;
    expect(days(ca)).toBeGreaterThan(3649);
    expect(days(ca)).toBeLessThan(3651);
    expect(days(cert)).toBeGreaterThan(364);
    expect(days(cert)).toBeLessThan(366);
  });

  it.each([
    { name: 'defaults only', hosts: [], want: ['DNS:localhost', 'IP:0:0:0:0:0:0:0:1', 'IP:127.0.0.1'] },
    {
      name: 'names as DNS SANs and addresses as IP SANs',
      hosts: ['berth.example.test', '10.1.2.3', '[fe80::1]', '*.apps.example.test'],
      want: [
        'DNS:*.apps.example.test',
        'DNS:berth.example.test',
        'DNS:localhost',
        'IP:0:0:0:0:0:0:0:1',
        'IP:10.1.2.3',
        'IP:127.0.0.1',
        'IP:FE80:0:0:0:0:0:0:1',
      ],
    },
    { name: 'duplicates once', hosts: ['LOCALHOST', '127.0.0.1', '0:0::1'], want: ['DNS:localhost', 'IP:0:0:0:0:0:0:0:1', 'IP:127.0.0.1'] },
  ])('puts $name in the serving certificate', async ({ hosts, want }) => {
    const pki = await ensurePki(await tempDataDir(), { hosts });
    expect(sans(pki.serverCertPem)).toEqual(want);
  });

  it.each(['', 'has space', 'under_score.example', '-lead.example', 'http://x'])(
    'rejects the invalid host %j',
    async (host) => {
      await expect(ensurePki(await tempDataDir(), { hosts: [host] })).rejects.toThrow(TypeError);
    },
  );

  it('reuses every file on a second start', async () => {
    const dataDir = await tempDataDir();
    const first = await ensurePki(dataDir, { hosts: ['berth.example.test'] });
    const second = await ensurePki(dataDir, { hosts: ['berth.example.test'] });

    expect(second.generated).toEqual({ ca: false, servingCert: false, adminToken: false });
    const { generated: _a, ...firstRest } = first;
    const { generated: _b, ...secondRest } = second;
    expect(secondRest).toEqual(firstRest);
  });

  it('regenerates only the serving certificate when a new SAN is requested', async () => {
    const dataDir = await tempDataDir();
    const first = await ensurePki(dataDir, { hosts: [] });
    const second = await ensurePki(dataDir, { hosts: ['192.0.2.7', 'new.example.test'] });

    expect(second.generated).toEqual({ ca: false, servingCert: true, adminToken: false });
    expect(second.caCertPem).toBe(first.caCertPem);
    expect(second.adminToken).toBe(first.adminToken);
    expect(second.serverCertPem).not.toBe(first.serverCertPem);
    expect(second.serverKeyPem).not.toBe(first.serverKeyPem);
    expect(sans(second.serverCertPem)).toEqual(expect.arrayContaining(['IP:192.0.2.7', 'DNS:new.example.test']));
    expect(new X509Certificate(second.serverCertPem).checkIssued(new X509Certificate(first.caCertPem))).toBe(true);
    expect(await readFile(second.certPath, 'utf8')).toBe(second.serverCertPem);

    // dropping a host later keeps the certificate that has it
    const third = await ensurePki(dataDir, { hosts: ['new.example.test'] });
    expect(third.generated.servingCert).toBe(false);
  });

  it('regenerates the serving certificate when it expires within 30 days, keeping the CA', async () => {
    const dataDir = await tempDataDir();
    const longAgo = new Date(Date.now() - 340 * DAY_MS); // the 1-year cert then ends in ~25 days
    const old = await ensurePki(dataDir, { hosts: [], now: () => longAgo });
    const renewed = await ensurePki(dataDir, { hosts: [] });

    expect(renewed.generated).toEqual({ ca: false, servingCert: true, adminToken: false });
    expect(renewed.caCertPem).toBe(old.caCertPem);
    expect(Date.parse(new X509Certificate(renewed.serverCertPem).validTo)).toBeGreaterThan(Date.now() + 364 * DAY_MS);
  });

  it('regenerates the serving certificate when its key file no longer matches it', async () => {
    const dataDir = await tempDataDir();
    const a = await ensurePki(dataDir, { hosts: [] });
    const other = await ensurePki(await tempDataDir(), { hosts: [] });
    await writeFile(a.keyPath, other.serverKeyPem);

    const b = await ensurePki(dataDir, { hosts: [] });
    expect(b.generated).toEqual({ ca: false, servingCert: true, adminToken: false });
    expect(new X509Certificate(b.serverCertPem).checkPrivateKey(createPrivateKey(b.serverKeyPem))).toBe(true);
  });

  it('makes a new CA and serving certificate when the CA key is missing, keeping the token', async () => {
    const dataDir = await tempDataDir();
    const a = await ensurePki(dataDir, { hosts: [] });
    await rm(join(dataDir, 'pki', 'ca.key'));

    const b = await ensurePki(dataDir, { hosts: [] });
    expect(b.generated).toEqual({ ca: true, servingCert: true, adminToken: false });
    expect(b.caCertPem).not.toBe(a.caCertPem);
    expect(new X509Certificate(b.serverCertPem).checkIssued(new X509Certificate(b.caCertPem))).toBe(true);
    expect(b.adminToken).toBe(a.adminToken);
  });

  it('rejects, naming the file, a certificate that cannot be parsed', async () => {
    const dataDir = await tempDataDir();
    const a = await ensurePki(dataDir, { hosts: [] });
    await writeFile(a.caPath, 'not a certificate');
    await expect(ensurePki(dataDir, { hosts: [] })).rejects.toThrow(a.caPath);
  });

  it('tightens modes of existing files it reuses', async () => {
    const dataDir = await tempDataDir();
    const a = await ensurePki(dataDir, { hosts: [] });
    await chmod(a.tokenPath, 0o644);
    await chmod(join(dataDir, 'pki'), 0o755);
    await ensurePki(dataDir, { hosts: [] });
    expect(await mode(a.tokenPath)).toBe(0o600);
    expect(await mode(join(dataDir, 'pki'))).toBe(0o700);
  });

  describe('an HTTPS server with the serving certificate', () => {
    async function serve(dataDir: string): Promise<{ port: number; pki: Awaited<ReturnType<typeof ensurePki>> }> {
      const pki = await ensurePki(dataDir, { hosts: ['berth.example.test'] });
      const server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (_req, res) => {
        res.end('ok');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      onTestFinished(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      );
      return { port: (server.address() as AddressInfo).port, pki };
    }

    function get(port: number, opts: { ca?: string; servername?: string }): Promise<string> {
      return new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/', ca: opts.ca, servername: opts.servername, agent: false },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve(body));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    }

    it.each([
      { name: 'the IP address 127.0.0.1', servername: undefined },
      { name: 'the name localhost', servername: 'localhost' },
      { name: 'an extra host name', servername: 'berth.example.test' },
    ])('is trusted by a client that trusts the CA and dials $name', async ({ servername }) => {
      const { port, pki } = await serve(await tempDataDir());
      const opts = servername ? { ca: pki.caCertPem, servername } : { ca: pki.caCertPem };
      await expect(get(port, opts)).resolves.toBe('ok');
    });

    it('is rejected for a name it does not carry', async () => {
      const { port, pki } = await serve(await tempDataDir());
      await expect(get(port, { ca: pki.caCertPem, servername: 'other.example.test' })).rejects.toMatchObject({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
    });

    it('is rejected by a client that does not trust the CA', async () => {
      const { port } = await serve(await tempDataDir());
      await expect(get(port, {})).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    });
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file with the given mode and leaves no temporary file', async () => {
    const dir = await tempDataDir();
    const path = join(dir, 'f');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new', 0o600);
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await mode(path)).toBe(0o600);
    expect(await readdir(dir)).toEqual(['f']);
  });
});

/**
 * Debian's CNCF distribution registry (`/usr/bin/docker-registry`) on a
 * loopback port, for interop tests and benchmarks: a config written here
 * (never the packaged one, which listens on all interfaces), filesystem
 * storage in a temporary directory, and optionally htpasswd basic auth, token
 * auth or TLS. `stop()` kills the process by PID and removes the directory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

/** True when the registry binary is installed. */
export const hasDockerRegistry = (): boolean => existsSync(REGISTRY_BINARY);

export interface RegistryProcessOptions {
  /** A loopback port given to you (5101–5109 for these tests). */
  readonly port: number;
  /** htpasswd basic auth with this one user. */
  readonly basicAuth?: { readonly username: string; readonly password: string };
  /** Token auth: the registry trusts tokens signed by the key of `rootCertPem`. */
  readonly tokenAuth?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertPem: string };
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
}

export interface RegistryProcess {
  /** `127.0.0.1:<port>`: the domain of references to it. */
  readonly domain: string;
  readonly pid: number;
  /** What the registry logged (stderr), for failure messages. */
  log(): string;
  /** Kills the process (SIGTERM, then SIGKILL) and removes its storage. Idempotent. */
  stop(): Promise<void>;
}

/**
 * A bcrypt htpasswd line (`user:$2b$…`), made with the C library's crypt(3)
 * through perl, since neither `htpasswd` (apache2-utils) nor a Node bcrypt
 * package is installed here; Debian's libxcrypt implements `$2b$`.
 */
export function htpasswdLine(username: string, password: string): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = [...randomBytes(22)].map((b) => alphabet[b % 64]).join('');
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], { encoding: 'utf8' });
  if (!hash.startsWith('$2b$05$')) throw new Error(`crypt(3) did not make a bcrypt hash (got ${JSON.stringify(hash.slice(0, 10))})`);
  return `${username}:${hash}`;
}

/** Starts the registry and waits until `/v2/` answers. */
export async function startRegistry(opts: RegistryProcessOptions): Promise<RegistryProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-dist-registry-'));
  let child: ChildProcess | undefined;
  let stderr = '';
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (child!.exitCode === null && child!.signalCode === null) process.kill(child!.pid!, 'SIGKILL');
      }, 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const lines = [
      'version: 0.1',
      'log: { level: warn, accesslog: { disabled: true } }',
      'storage:',
      `  filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} }`,
      '  delete: { enabled: true }',
      '  redirect: { disable: true }',
      'http:',
      `  addr: 127.0.0.1:${opts.port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
    ];
    if (opts.tls) {
      writeFileSync(join(dir, 'cert.pem'), opts.tls.certPem);
      writeFileSync(join(dir, 'key.pem'), opts.tls.keyPem);
      lines.push(`  tls: { certificate: ${JSON.stringify(join(dir, 'cert.pem'))}, key: ${JSON.stringify(join(dir, 'key.pem'))} }`);
    }
    if (opts.basicAuth) {
      writeFileSync(join(dir, 'htpasswd'), `${htpasswdLine(opts.basicAuth.username, opts.basicAuth.password)}\n`);
      lines.push('auth:', `  htpasswd: { realm: berth-test, path: ${JSON.stringify(join(dir, 'htpasswd'))} }`);
    } else if (opts.tokenAuth) {
      const t = opts.tokenAuth;
      writeFileSync(join(dir, 'token-root.pem'), t.rootCertPem);
      lines.push('auth:', '  token:',
        `    realm: ${JSON.stringify(t.realm)}`, `    service: ${JSON.stringify(t.service)}`, `    issuer: ${JSON.stringify(t.issuer)}`,
        `    rootcertbundle: ${JSON.stringify(join(dir, 'token-root.pem'))}`);
    }
    writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
    if (await answers(`127.0.0.1:${opts.port}`, false)) throw new Error(`port 127.0.0.1:${opts.port} is already in use`);
    child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-8000);
    });
    const domain = `127.0.0.1:${opts.port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr}`);
      if (await answers(domain, opts.tls !== undefined)) break;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${domain} within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { domain, pid: child.pid!, log: () => stderr, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function answers(domain: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? https : http).get(`${tls ? 'https' : 'http'}://${domain}/v2/`, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

/** A self-signed certificate and key (PEM) for `127.0.0.1`, made with openssl. */
export function selfSignedCertificate(dir: string, commonName = '127.0.0.1'): { certPem: string; keyPem: string } {
  const key = join(dir, `${commonName}-key.pem`);
  const cert = join(dir, `${commonName}-cert.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=digitalSignature,keyCertSign',
  ], { stdio: 'ignore' });
  return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

/** `skopeo` without blocking the event loop: for registries whose token service runs in this process. */
export async function skopeoAsync(args: readonly string[], opts: { readonly timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await promisify(execFile)('skopeo', [...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
  return stdout;
}

/** Runs skopeo with TLS verification off (the test registries are plain HTTP or self-signed); returns stdout. */
export function skopeo(args: readonly string[], opts: { readonly timeoutMs?: number } = {}): string {
  return execFileSync('skopeo', [...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

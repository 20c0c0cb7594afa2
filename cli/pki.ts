/**
 * The server's own PKI: a CA, a serving certificate signed by it, and the admin
 * bearer token, kept under `DATA_DIR/pki/` and made at first start.
 */
import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

export { writeFileAtomic };

const generateKeyPairAsync = promisify(generateKeyPair);

/** SANs every serving certificate carries, besides `EnsurePkiOptions.hosts`. */
export const DEFAULT_SERVING_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/** A serving certificate is replaced when it expires within this many days. */
export const SERVING_CERT_RENEW_BEFORE_DAYS = 30;

const CA_VALIDITY_DAYS = 3650;
const SERVING_CERT_VALIDITY_DAYS = 365;
const RSA_BITS = 2048;
const DAY_MS = 86_400_000;
/** Backdate notBefore so a client whose clock lags a little still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 3_600_000;

const FILE_NAMES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  adminToken: 'admin.token',
} as const;

/** The PEM material and paths `ensurePki` resolves to. */
export interface Pki {
  /** The CA certificate: what clients trust (kubeconfig `certificate-authority-data`). */
  readonly caCertPem: string;
  /** The serving certificate, signed by the CA. */
  readonly serverCertPem: string;
  /** The serving certificate's private key (PKCS#8 PEM). */
  readonly serverKeyPem: string;
  /** The admin bearer token: 32 random bytes, base64url. */
  readonly adminToken: string;
  readonly caPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly tokenPath: string;
  /** What this call made afresh (false: reused from disk). */
  readonly generated: { readonly ca: boolean; readonly servingCert: boolean; readonly adminToken: boolean };
}

export interface EnsurePkiOptions {
  /**
   * Extra subject alternative names for the serving certificate: IP addresses
   * (v4 or v6, brackets allowed) become IP SANs, anything else a DNS SAN (a
   * leading `*.` wildcard is allowed). `localhost`, `127.0.0.1` and `::1` are always included.
   */
  readonly hosts: readonly string[];
  /** The clock; tests move it to exercise expiry. */
  readonly now?: () => Date;
}

/**
 * Makes sure `dataDir/pki/` holds a CA, a serving certificate and an admin token,
 * and returns them.
 *
 * First call: creates the directory (mode 0700), a self-signed RSA-2048 CA valid
 * for 10 years, a serving certificate valid for 1 year (serverAuth, SANs as in
 * `EnsurePkiOptions.hosts`) and the token. Private keys and the token are mode
 * 0600, certificates 0644. Later calls reuse everything and replace only the
 * serving certificate and its key when it lacks a requested SAN, expires within
 * 30 days, does not match its key, or was not issued by the CA. The CA is
 * replaced only when a CA file is missing, its key does not match, or it has
 * expired — which invalidates every kubeconfig written before.
 *
 * Each file is written atomically (temporary file, fsync, rename), so a crash
 * leaves old or new files, never partial ones. Rejects with a `TypeError` for an
 * invalid entry in `hosts` and with an `Error` naming the file when an existing
 * certificate or key cannot be parsed (it is never silently overwritten).
 * Not safe to call concurrently on the same `dataDir` from two processes.
 */
export async function ensurePki(dataDir: string, opts: EnsurePkiOptions): Promise<Pki> {
  const now = opts.now ?? (() => new Date());
  const wanted = normalizeHosts([...DEFAULT_SERVING_HOSTS, ...opts.hosts]);
  const dir = join(dataDir, 'pki');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = (k: keyof typeof FILE_NAMES): string => join(dir, FILE_NAMES[k]);

  let caCertPem = await readOptional(path('caCert'));
  let caKeyPem = await readOptional(path('caKey'));
  let ca = caCertPem && caKeyPem ? parsePair(caCertPem, caKeyPem, path('caCert'), path('caKey')) : undefined;
  const caUsable = ca !== undefined && ca.keyMatches && ca.cert.ca && Date.parse(ca.cert.validTo) > now().getTime();
  let generatedCa = false;
  if (!caUsable) {
    const made = await makeCa(now());
    await writeFileAtomic(path('caKey'), made.keyPem, 0o600);
    await writeFileAtomic(path('caCert'), made.certPem, 0o644);
    caCertPem = made.certPem;
    caKeyPem = made.keyPem;
    ca = parsePair(caCertPem, caKeyPem, path('caCert'), path('caKey'));
    generatedCa = true;
  } else {
    await chmod(path('caKey'), 0o600);
  }
  const caCert = ca!.cert;

  let serverCertPem = await readOptional(path('serverCert'));
  let serverKeyPem = await readOptional(path('serverKey'));
  const serving =
    serverCertPem && serverKeyPem
      ? parsePair(serverCertPem, serverKeyPem, path('serverCert'), path('serverKey'))
      : undefined;
  const servingUsable =
    !generatedCa &&
    serving !== undefined &&
    serving.keyMatches &&
    serving.cert.checkIssued(caCert) &&
    serving.cert.verify(caCert.publicKey) &&
    Date.parse(serving.cert.validTo) > now().getTime() + SERVING_CERT_RENEW_BEFORE_DAYS * DAY_MS &&
    coversHosts(serving.cert, wanted);
  let generatedServing = false;
  if (!servingUsable) {
    const made = await makeServingCert(caCertPem!, caKeyPem!, wanted, now());
    await writeFileAtomic(path('serverKey'), made.keyPem, 0o600);
    await writeFileAtomic(path('serverCert'), made.certPem, 0o644);
    serverCertPem = made.certPem;
    serverKeyPem = made.keyPem;
    generatedServing = true;
  } else {
    await chmod(path('serverKey'), 0o600);
  }

  let adminToken = (await readOptional(path('adminToken')))?.trim();
  let generatedToken = false;
  if (!adminToken) {
    adminToken = randomBytes(32).toString('base64url');
    await writeFileAtomic(path('adminToken'), `${adminToken}\n`, 0o600);
    generatedToken = true;
  } else {
    await chmod(path('adminToken'), 0o600);
  }

  return {
    caCertPem: caCertPem!,
    serverCertPem: serverCertPem!,
    serverKeyPem: serverKeyPem!,
    adminToken,
    caPath: path('caCert'),
    certPath: path('serverCert'),
    keyPath: path('serverKey'),
    tokenPath: path('adminToken'),
    generated: { ca: generatedCa, servingCert: generatedServing, adminToken: generatedToken },
  };
}

interface ParsedPair {
  readonly cert: X509Certificate;
  readonly keyMatches: boolean;
}

function parsePair(certPem: string, keyPem: string, certPath: string, keyPath: string): ParsedPair {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`cannot parse certificate ${certPath}; move it away to have a new one made`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`cannot parse private key ${keyPath}; move it away to have a new one made`, { cause: err });
  }
  return { cert, keyMatches: cert.checkPrivateKey(key) };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

interface Hosts {
  readonly dns: readonly string[];
  /** Canonical text form (`::1`, not `0:0:...:1`). */
  readonly ips: readonly string[];
}

const DNS_NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

function normalizeHosts(hosts: readonly string[]): Hosts {
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const raw of hosts) {
    const h = raw.trim().replace(/^\[(.*)\]$/, '$1');
    if (isIP(h)) ips.add(canonicalIp(h));
    else if (h.length <= 253 && DNS_NAME.test(h.toLowerCase())) dns.add(h.toLowerCase().replace(/\.$/, ''));
    else throw new TypeError(`invalid host for the serving certificate: ${JSON.stringify(raw)} (want an IP address or a DNS name)`);
  }
  return { dns: [...dns], ips: [...ips] };
}

function canonicalIp(ip: string): string {
  if (isIP(ip) === 4) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Whether `cert` has every name in `hosts` as a SAN (extra SANs are fine). */
function coversHosts(cert: X509Certificate, hosts: Hosts): boolean {
  const have = new Set<string>();
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) have.add(`dns:${entry.slice(4).toLowerCase()}`);
    else if (entry.startsWith('IP Address:')) have.add(`ip:${canonicalIp(entry.slice(11))}`);
  }
  return hosts.dns.every((d) => have.has(`dns:${d}`)) && hosts.ips.every((i) => have.has(`ip:${i}`));
}

interface Made {
  readonly certPem: string;
  readonly keyPem: string;
}

async function newRsaKey(): Promise<{ keyPem: string; publicKey: forge.pki.rsa.PublicKey }> {
  // Node's native keygen: forge's pure-JS RSA is seconds slower and blocks the loop.
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: RSA_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { keyPem: privateKey, publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey };
}

/** A tag *type*, although @types/node-forge declares `valueTagClass` as a tag class. */
const UTF8_STRING = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // a positive INTEGER
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

async function makeCa(now: Date): Promise<Made> {
  const { keyPem, publicKey } = await newRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, now, CA_VALIDITY_DAYS);
  // UTF8String: Go's x509 rejects '@' in forge's default PrintableString
  const subject = [
    { name: 'commonName', value: `berth-ca@${Math.floor(now.getTime() / 1000)}`, valueTagClass: UTF8_STRING },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

async function makeServingCert(caCertPem: string, caKeyPem: string, hosts: Hosts, now: Date): Promise<Made> {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const { keyPem, publicKey } = await newRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, now, SERVING_CERT_VALIDITY_DAYS);
  cert.setSubject([{ name: 'commonName', value: 'berth-apiserver', valueTagClass: UTF8_STRING }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...hosts.dns.map((value) => ({ type: 2, value })), ...hosts.ips.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(caKeyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

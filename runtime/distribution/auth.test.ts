/**
 * Authentication and transport security against real registries: Debian's
 * `docker-registry` with htpasswd basic auth (127.0.0.1:5102), with token auth
 * trusting the test token service (5103), and over HTTPS with a self-signed
 * certificate (5104).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildBusyboxImage, type BusyboxImage } from '../../test/fixtures/busybox-image.ts';
import { isRuntimeError } from '../cri/errors.ts';
import type { AuthConfig, RegistryConfig } from '../cri/types.ts';
import { parseDockerConfig } from '../cri/docker-config.ts';
import { ImageStore } from '../images/image-store.ts';
import { mergeScopes, parseWwwAuthenticate } from './auth.ts';
import { hasDockerRegistry, selfSignedCertificate, skopeo, skopeoAsync, startRegistry, type RegistryProcess } from './testing/registry-process.ts';
import { startTokenServer, type TokenServer } from './testing/token-server.ts';

const canRun = hasDockerRegistry() && existsSync('/usr/bin/skopeo') && existsSync('/bin/busybox') && existsSync('/usr/bin/openssl');
const USER = 'berth';
const PASSWORD = 's3cret pass';
const REFRESH = 'refresh-token-1';
const INSECURE: RegistryConfig = { insecureRegistries: ['127.0.0.1'] };

describe('parseWwwAuthenticate', () => {
  it.each([
    { name: 'a bearer challenge with quoted parameters', header: 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      want: [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }] },
    { name: 'a basic challenge', header: 'Basic realm="berth-test"', want: [{ scheme: 'basic', params: { realm: 'berth-test' } }] },
    { name: 'two challenges and an escaped quote', header: 'Basic realm="a \\"b\\"", Bearer realm=https://x/t, error="invalid_token"',
      want: [{ scheme: 'basic', params: { realm: 'a "b"' } }, { scheme: 'bearer', params: { realm: 'https://x/t', error: 'invalid_token' } }] },
    { name: 'a scope with several actions', header: 'Bearer realm="r",scope="repository:a/b:pull,push repository:c:pull"',
      want: [{ scheme: 'bearer', params: { realm: 'r', scope: 'repository:a/b:pull,push repository:c:pull' } }] },
  ])('parses $name', ({ header, want }) => {
    expect(parseWwwAuthenticate(header)).toEqual(want);
  });
});

describe('mergeScopes', () => {
  it.each([
    { name: 'merges the actions of one repository', scopes: ['repository:a:pull,push', 'repository:b:pull', 'repository:a:pull'], want: ['repository:a:pull,push', 'repository:b:pull'] },
    { name: 'adds actions a later scope names', scopes: ['repository:a:pull', 'repository:a:push'], want: ['repository:a:pull,push'] },
    { name: 'keeps other resource types apart', scopes: ['registry:catalog:*', 'repository:a:pull'], want: ['registry:catalog:*', 'repository:a:pull'] },
  ])('$name', ({ scopes, want }) => {
    expect(mergeScopes(scopes)).toEqual(want);
  });
});

let work: string;
let busybox: BusyboxImage;

function newStore(registry: RegistryConfig = INSECURE): ImageStore {
  const root = mkdtempSync(join(tmpdir(), 'berth-dist-auth-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return new ImageStore({ root, registry });
}

const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => new Error('expected a rejection'), (e: unknown) => e as Error);

describe.skipIf(!canRun)('registry authentication', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-dist-auth-work-'));
    busybox = await buildBusyboxImage(join(work, 'bb'));
  }, 60_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('htpasswd basic auth', () => {
    let registry: RegistryProcess;
    beforeAll(async () => {
      registry = await startRegistry({ port: 5102, basicAuth: { username: USER, password: PASSWORD } });
      skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `oci:${busybox.layoutDir}:latest`, `docker://${registry.domain}/private/busybox:1`]);
    }, 60_000);
    afterAll(() => registry?.stop());

    it('pulls and pushes with the username and password', async () => {
      const store = newStore();
      const ref = `${registry.domain}/private/busybox:1`;
      expect(await store.pullImage(ref, { username: USER, password: PASSWORD })).toBe(busybox.configDigest);
      expect(await store.pushImage(ref, `${registry.domain}/private/copy:2`, { auth: { username: USER, password: PASSWORD } })).toBe(busybox.manifestDigest);
      const seen = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${registry.domain}/private/copy:2`])) as { Digest: string };
      expect(seen.Digest).toBe(busybox.manifestDigest);
    });

    it('uses the credentials of the registry configuration (a Docker config file) when a pull or push names none', async () => {
      const dockerConfig = JSON.stringify({ auths: { [`http://${registry.domain}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } });
      const credentials = parseDockerConfig(dockerConfig, 'config.json');
      expect(credentials).toEqual({ [registry.domain]: { username: USER, password: PASSWORD } });
      const root = mkdtempSync(join(tmpdir(), 'berth-dist-auth-cfg-'));
      onTestFinished(() => rmSync(root, { recursive: true, force: true }));
      const store = new ImageStore({ root, registry: { ...INSECURE, credentials } });
      const ref = `${registry.domain}/private/busybox:1`;
      expect(await store.pullImage(ref)).toBe(busybox.configDigest);
      expect(await store.pushImage(ref, `${registry.domain}/private/from-config:1`)).toBe(busybox.manifestDigest);
    });

    it.each([
      { name: 'without credentials', auth: undefined },
      { name: 'with a wrong password', auth: { username: USER, password: 'wrong' } },
    ])('rejects a pull $name as unauthorized, naming the reference', async ({ auth }) => {
      const ref = `${registry.domain}/private/busybox:1`;
      const err = await failure(newStore().pullImage(ref, auth));
      expect(isRuntimeError(err, 'FailedPrecondition')).toBe(true);
      expect(err.message).toContain(`pull ${ref}: unauthorized`);
    });

    it('checks a login as docker login does: accepted with the password, FailedPrecondition with a wrong one or none', async () => {
      const store = newStore();
      await store.checkRegistryLogin(registry.domain, { username: USER, password: PASSWORD });
      for (const auth of [{ username: USER, password: 'wrong' }, {}]) {
        const err = await failure(store.checkRegistryLogin(registry.domain, auth));
        expect(isRuntimeError(err, 'FailedPrecondition'), err.message).toBe(true);
        expect(err.message).toContain(`login to ${registry.domain}: unauthorized`);
      }
    });
  });

  describe('bearer tokens from the WWW-Authenticate realm', () => {
    let registry: RegistryProcess;
    let tokens: TokenServer;
    beforeAll(async () => {
      const { certPem, keyPem } = selfSignedCertificate(work, 'berth-token-signer');
      tokens = await startTokenServer({ service: 'berth-registry', issuer: 'berth-test-issuer', certPem, keyPem, username: USER, password: PASSWORD, refreshToken: REFRESH });
      registry = await startRegistry({ port: 5103, tokenAuth: { realm: tokens.realm, service: 'berth-registry', issuer: 'berth-test-issuer', rootCertPem: certPem } });
      await skopeoAsync(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `oci:${busybox.layoutDir}:latest`, `docker://${registry.domain}/team/busybox:1`]);
    }, 60_000);
    afterAll(async () => {
      await registry?.stop();
      await tokens?.close();
    });

    it.each([
      { name: 'username and password (GET with basic auth)', auth: { username: USER, password: PASSWORD } as AuthConfig, method: 'GET', account: USER },
      { name: 'an identity token (OAuth2 refresh token POST)', auth: { identityToken: REFRESH } as AuthConfig, method: 'POST', account: undefined },
    ])('pulls and pushes with $name, asking for the service and scopes', async ({ auth, method, account }) => {
      tokens.requests.length = 0;
      const store = newStore();
      const ref = `${registry.domain}/team/busybox:1`;
      expect(await store.pullImage(ref, auth)).toBe(busybox.configDigest);
      expect(tokens.requests[0]).toMatchObject({ method, service: 'berth-registry', scopes: ['repository:team/busybox:pull'], status: 200, ...(account && { account }) });
      // One token per scope set: the blobs reuse the manifest's.
      expect(tokens.requests).toHaveLength(1);
      await store.pushImage(ref, `${registry.domain}/team/copy:1`, { auth });
      expect(tokens.requests.at(-1)).toMatchObject({ scopes: ['repository:team/copy:pull,push', 'repository:team/busybox:pull'], status: 200 });
      const seen = JSON.parse(await skopeoAsync(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${registry.domain}/team/copy:1`])) as { Digest: string };
      expect(seen.Digest).toBe(busybox.manifestDigest);
    });

    it('rejects a pull when the token service refuses the credentials, naming the reference', async () => {
      const ref = `${registry.domain}/team/busybox:1`;
      const err = await failure(newStore().pullImage(ref, { username: USER, password: 'wrong' }));
      expect(isRuntimeError(err, 'FailedPrecondition')).toBe(true);
      expect(err.message).toContain(`pull ${ref}: registry ${registry.domain}: unauthorized`);
    });

    it('checks a login through the token service: accepted with the password, FailedPrecondition with a wrong one', async () => {
      const store = newStore();
      await store.checkRegistryLogin(registry.domain, { username: USER, password: PASSWORD });
      const err = await failure(store.checkRegistryLogin(registry.domain, { username: USER, password: 'wrong' }));
      expect(isRuntimeError(err, 'FailedPrecondition'), err.message).toBe(true);
      expect(err.message).toContain(`login to ${registry.domain}: registry ${registry.domain}: unauthorized`);
    });
  });

  describe('HTTPS', () => {
    let registry: RegistryProcess;
    let certPem: string;
    beforeAll(async () => {
      const pair = selfSignedCertificate(work);
      certPem = pair.certPem;
      registry = await startRegistry({ port: 5104, tls: pair });
      skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${busybox.layoutDir}:latest`, `docker://${registry.domain}/tls/busybox:1`]);
    }, 60_000);
    afterAll(() => registry?.stop());

    it('pulls over HTTPS when the registry certificate is in the configured CA bundle', async () => {
      expect(await newStore({ caBundlePem: certPem }).pullImage(`${registry.domain}/tls/busybox:1`)).toBe(busybox.configDigest);
    });

    it('rejects a registry whose certificate no trusted CA signed as Unavailable, naming the reference', async () => {
      const ref = `${registry.domain}/tls/busybox:1`;
      const err = await failure(newStore({}).pullImage(ref));
      expect(isRuntimeError(err, 'Unavailable')).toBe(true);
      expect(err.message).toMatch(/^pull 127\.0\.0\.1:5104\/tls\/busybox:1: cannot reach registry 127\.0\.0\.1:5104: .*self[- ]signed/i);
    });

    it('checks a login over HTTPS with the configured CAs; an untrusted certificate or a bad host is refused before any request', async () => {
      await newStore({ caBundlePem: certPem }).checkRegistryLogin(registry.domain, {}); // no auth asked: accepted, as docker login
      expect(isRuntimeError(await failure(newStore({}).checkRegistryLogin(registry.domain, {})), 'Unavailable')).toBe(true);
      for (const host of ['http://x', 'a/b', 'x y', '']) {
        const err = await failure(newStore({}).checkRegistryLogin(host, {}));
        expect(isRuntimeError(err, 'InvalidArgument'), `${host}: ${err.message}`).toBe(true);
      }
    });
  });
});

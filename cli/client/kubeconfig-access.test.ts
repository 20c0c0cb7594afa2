import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeconfigAccess, LOCAL_SOCKET_EXTENSION } from './kubeconfig-access.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-kubeconfig-access-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

const applied = async (a: KubeconfigAccess): Promise<https.RequestOptions> => {
  const o: https.RequestOptions = {};
  await a.applyToHTTPSOptions(o);
  return o;
};

describe('KubeconfigAccess', () => {
  it('merges a $KUBECONFIG list as kubectl: the first name and the first current-context win, missing files skipped', async () => {
    const first = file('a/config', `
current-context: one
contexts: [{name: one, context: {cluster: c, user: u, namespace: team}}]
clusters: [{name: c, cluster: {server: 'https://first:6443', certificate-authority: ca.pem}}]
users: [{name: u, user: {token: first-token}}]
`);
    file('a/ca.pem', 'CA-BYTES');
    const second = file('b/config', `
current-context: two
contexts: [{name: two, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: 'https://second:6443'}}]
users: [{name: u, user: {token: second-token}}]
`);
    const a = KubeconfigAccess.load({ kind: 'env', path: `${join(dir, 'missing')}:${first}:${second}` });
    expect([a.context, a.namespace, a.getCurrentCluster().server]).toEqual(['one', 'team', 'https://first:6443']);
    const o = await applied(a);
    expect(o.headers).toEqual({ authorization: 'Bearer first-token' });
    expect(String(o.ca)).toBe('CA-BYTES'); // relative to the file that named it
    const two = KubeconfigAccess.load({ kind: 'env', path: `${first}:${second}` }, 'two');
    expect(two.getCurrentCluster().server).toBe('https://first:6443'); // cluster "c" of the first file
  });

  it('reads inline certificates, a token file, basic auth and insecure-skip-tls-verify', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    file('c/token', 'from-file\n');
    const p = file('c/config', `
current-context: x
contexts: [{name: x, context: {cluster: c, user: cert}}, {name: y, context: {cluster: c, user: tf}}, {name: z, context: {cluster: c, user: basic}}]
clusters: [{name: c, cluster: {server: 'https://h:1', insecure-skip-tls-verify: true, tls-server-name: api.local}}]
users:
- {name: cert, user: {client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}}}
- {name: tf, user: {tokenFile: token}}
- {name: basic, user: {username: ann, password: pw}}
`);
    const x = await applied(KubeconfigAccess.load({ kind: 'file', path: p }));
    expect([String(x.cert), String(x.key), x.rejectUnauthorized, x.servername, x.headers]).toEqual(['CERT', 'KEY', false, 'api.local', undefined]);
    expect((await applied(KubeconfigAccess.load({ kind: 'file', path: p }, 'y'))).headers).toEqual({ authorization: 'Bearer from-file' });
    expect((await applied(KubeconfigAccess.load({ kind: 'file', path: p }, 'z'))).auth).toBe('ann:pw');
  });

  it('hands users with an exec or auth-provider plugin to client-node, and says what is missing in one line', () => {
    const p = file('d/config', `
current-context: e
contexts: [{name: e, context: {cluster: c, user: plug}}, {name: noserver, context: {cluster: none, user: plug}}]
clusters: [{name: c, cluster: {server: 'https://h:1'}}]
users: [{name: plug, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token}}}]
`);
    expect(KubeconfigAccess.load({ kind: 'file', path: p }).needsClientNode).toBe(true);
    expect(() => KubeconfigAccess.load({ kind: 'file', path: p }, 'nope')).toThrow('context "nope" not found in the kubeconfig (e, noserver)');
    expect(() => KubeconfigAccess.load({ kind: 'file', path: p }, 'noserver')).toThrow(/cluster "none" has no server/);
    expect(() => KubeconfigAccess.load({ kind: 'file', path: file('e/config', 'clusters: [\n') })).toThrow(/not a kubeconfig/);
  });

  it('reads a JSON kubeconfig (as berth server writes it) and says so when it is malformed', () => {
    const doc = { 'current-context': 'j', contexts: [{ name: 'j', context: { cluster: 'c', user: 'u' } }], clusters: [{ name: 'c', cluster: { server: 'https://h:1' } }], users: [{ name: 'u', user: { token: 't' } }] };
    expect(KubeconfigAccess.load({ kind: 'file', path: file('j/config', JSON.stringify(doc, null, 2)) }).getCurrentCluster().server).toBe('https://h:1');
    expect(() => KubeconfigAccess.load({ kind: 'file', path: file('j/bad', '{"clusters": [') })).toThrow(/j\/bad: not a kubeconfig/);
  });

  describe('the local socket a cluster extension names', () => {
    const socketDir = mkdtempSync(join(tmpdir(), 'bks-'));
    const socket = join(socketDir, 'api.sock');
    const server = net.createServer();
    beforeAll(() => new Promise<void>((resolve) => server.listen(socket, resolve)));
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(socketDir, { recursive: true, force: true });
    });
    const load = (name: string, server: string, path: string) =>
      KubeconfigAccess.load({
        kind: 'file',
        path: file(`s/${name}`, JSON.stringify({
          'current-context': 'x',
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          clusters: [{ name: 'c', cluster: { server, extensions: [{ name: LOCAL_SOCKET_EXTENSION, extension: { path } }] } }],
          users: [{ name: 'u', user: { token: 't' } }],
        })),
      });

    it('is used when the server is on loopback and the socket exists here', () => {
      expect(load('ok', 'https://127.0.0.1:7443', socket).localSocketPath()).toBe(socket);
      expect(load('localhost', 'https://localhost:7443', socket).localSocketPath()).toBe(socket);
      expect(load('v6', 'https://[::1]:7443', socket).localSocketPath()).toBe(socket);
    });

    it('is not used for a server elsewhere, a missing socket or a file that is not a socket', () => {
      expect(load('remote', 'https://10.0.0.5:7443', socket).localSocketPath()).toBeUndefined();
      expect(load('missing', 'https://127.0.0.1:7443', join(socketDir, 'gone.sock')).localSocketPath()).toBeUndefined();
      expect(load('plain', 'https://127.0.0.1:7443', file('s/not-a-socket', '')).localSocketPath()).toBeUndefined();
      expect(KubeconfigAccess.load({ kind: 'file', path: file('s/none', 'current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n') }).localSocketPath()).toBeUndefined();
    });
  });
});

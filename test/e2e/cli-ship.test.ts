/**
 * The `berth` CLI's ship and host verbs end to end, as a Docker user runs them:
 * `node bin/berth.js --kubeconfig … VERB …` as a child process against an in-process
 * berth server (runc, conmon, a container network) and Debian's docker-registry with
 * htpasswd auth on 127.0.0.1:5173. Covers `login`/`logout`, `tag` + `push` (refused before
 * login, then checked with skopeo), `pull` (progress lines), `commit`, `save -o`, `port`, `attach`, bind mounts
 * (`-v /host:/path`, `--mount type=bind`, and a refused path) and `--network none|host`:
 * the rows of docs/docker-to-berth.md that name this file. Containers are named `h13-…`;
 * host names use the test network `bt13`, subnets 10.213.N.0/24, host port 5174.
 *
 * Skipped unless running as root with runc, conmon, kubectl, nft, docker-registry and skopeo.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { skopeo, startRegistry, type RegistryProcess } from '../../runtime/distribution/testing/registry-process.ts';
import type { ControlPlane } from '../harness/control-plane.ts';
import {
  BERTH_BIN, deleteAllContainers, httpGet, narrator, realContainersMissing, run, startWithBusybox, stopAndSweep, sweepTestNetwork, testNetwork, type ToolResult,
} from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const CTRS = `${NS}/containers`;
const IMGS = `${NS}/images`;
const SECRETS = '/api/v1/namespaces/default/secrets';
const REGISTRY_PORT = 5173;
const HOST_PORT = 5174;
const USER = 'h13user';
const PASSWORD = 'h13-pass-word';

const missing = realContainersMissing()
  ?? (spawnSync('nft', ['--version']).status !== 0 ? 'nft is missing' : undefined)
  ?? (!existsSync('/usr/bin/docker-registry') ? 'docker-registry not installed' : !existsSync('/usr/bin/skopeo') ? 'skopeo not installed' : undefined);

const { names: NAMES, subnet } = testNetwork('bt13', 213);

if (missing) {
  describe('berth CLI ship and host verbs end to end', () => {
    it.skip(`SKIPPED: ${missing}`, () => {});
  });
} else {
  describe('berth CLI ship and host verbs end to end (runc, conmon, docker-registry)', () => {
    let root: string;
    let bindDir: string;
    let cp: ControlPlane | undefined;
    let registry: RegistryProcess | undefined;
    const ids = new Set<string>();
    const log = narrator('h13');

    /** `berth --kubeconfig K ARGS…`; never rejects. */
    const berth = (args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp!.server.kubeconfigPath, ...args], { timeoutMs: 90_000, ...opts });
    const ok = (r: ToolResult, what: string) => expect(r.code, `${what}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);

    beforeAll(async () => {
      let reg: RegistryProcess | undefined;
      const started = await startWithBusybox('h13', {}, async (dir) => {
        bindDir = join(dir, 'bind');
        await mkdir(bindDir);
        await writeFile(join(bindDir, 'f'), 'from the host\n');
        registry = reg = await startRegistry({ port: REGISTRY_PORT, basicAuth: { username: USER, password: PASSWORD } }); // its data under dir too
        return {
          allowedBindMountPaths: [bindDir],
          registry: { insecureRegistries: [reg.domain] },
          network: { ...NAMES, defaultNetwork: { name: 'bt13-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(3) },
        };
      });
      ({ root, cp } = started);
      log(`berth server at ${started.cp.url}, busybox imported, registry (htpasswd) at ${reg!.domain}`);
    }, 90_000);

    afterEach(async () => {
      if (cp) await deleteAllContainers(cp, ids, 30_000);
    });

    afterAll(async () => {
      if (cp) await deleteAllContainers(cp, ids, 30_000).catch((err: unknown) => console.error('deleting containers failed', err));
      await stopAndSweep(cp, root, ids);
      await registry?.stop();
      sweepTestNetwork(NAMES);
    }, 90_000);

    it('logs in, pushes to a registry that needs auth, pulls back with progress lines, and logs out (login, tag, push, rmi, pull, images, logout)', async () => {
      const ref = `${registry!.domain}/h13/busybox:1`;
      const secretName = `berth-login-127.0.0.1-${REGISTRY_PORT}`;

      log('the registry refuses anonymous requests');
      const anon = await httpGet(REGISTRY_PORT, '/v2/');
      expect(anon).not.toBeInstanceOf(Error);
      expect((anon as { status: number }).status).toBe(401);

      log('tag; push before login: refused, and the target is not left on the Image');
      ok(await berth(['tag', 'busybox', ref]), 'tag');
      const early = await berth(['push', ref], { timeoutMs: 120_000 });
      expect(early.code, early.stderr).toBe(1);
      expect(early.stderr).toMatch(/Error response from daemon: image busybox: .*(unauthorized|401|authentication required)/i);
      expect((await cp!.request('GET', `${IMGS}/busybox`)).body.spec.push ?? []).toEqual([]);

      log('login with a wrong password: refused by the registry (checked by the node, as docker login), nothing stored');
      const bad = await berth(['login', '-u', USER, '-p', 'not-the-password', registry!.domain]);
      expect(bad.code, bad.stdout).toBe(1);
      expect(bad.stderr).toMatch(new RegExp(`^Error response from daemon: login to ${registry!.domain.replaceAll('.', '\\.')}: unauthorized`));
      expect((await cp!.request('GET', `${SECRETS}/${secretName}`)).status).toBe(404);

      log('login --password-stdin stores a dockerconfigjson Secret');
      const li = await berth(['login', '-u', USER, '--password-stdin', registry!.domain], { stdin: `${PASSWORD}\n` });
      ok(li, 'login');
      expect(li.stdout).toMatch(/^Login Succeeded \(credentials checked by node \S+, stored in Secret /);
      const secret = await cp!.request('GET', `${SECRETS}/${secretName}`);
      expect(secret.status).toBe(200);
      expect(secret.body.type).toBe('kubernetes.io/dockerconfigjson');
      const config = JSON.parse(Buffer.from(secret.body.data['.dockerconfigjson'], 'base64').toString('utf8'));
      expect(config.auths[registry!.domain]).toMatchObject({ username: USER, password: PASSWORD, auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') });
      log('login -p again replaces it');
      ok(await berth(['login', '-u', USER, '-p', PASSWORD, registry!.domain]), 'login -p');
      expect((await cp!.request('GET', `${SECRETS}/${secretName}`)).status).toBe(200);

      log('push');
      const pushed = await berth(['push', ref], { timeoutMs: 120_000 });
      ok(pushed, 'push');
      const m = /^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)\n$/.exec(pushed.stdout);
      expect(m, pushed.stdout).not.toBeNull();
      expect(m![1]).toBe(ref);
      const digest = m![2]!;
      log('skopeo sees the manifest with that digest');
      const inspected = JSON.parse(skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${ref}`]));
      expect(inspected.Digest).toBe(digest);
      expect(inspected.Os).toBe('linux');

      log('untag locally, pull back: progress lines on stderr (not a TTY), the image is listed');
      const untag = await berth(['rmi', ref]);
      ok(untag, 'rmi');
      expect(untag.stdout).toBe(`Untagged: ${ref}\n`);
      const pulled = await berth(['pull', ref], { timeoutMs: 120_000 });
      ok(pulled, 'pull');
      expect(pulled.stdout).toBe(`Digest: ${digest}\nStatus: Downloaded image for ${ref}\n${ref}\n`);
      const progress = pulled.stderr.split('\n').filter(Boolean);
      expect(progress.length, pulled.stderr).toBeGreaterThan(0);
      for (const line of progress) expect(line).toMatch(/^(Pending|Pulling|Ready)(: .*)?$/);
      expect(pulled.stderr).not.toContain('\r');
      expect(progress.at(-1)).toMatch(/^Ready/);
      const pulledImage = (await cp!.request('GET', `${IMGS}/127.0.0.1-5173-h13-busybox-1`)).body;
      expect(pulledImage.spec.source.pull).toEqual({ reference: ref, credentialsSecret: secretName });
      const listed = await berth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
      ok(listed, 'images');
      expect(listed.stdout.split('\n')).toContain(`${registry!.domain}/h13/busybox:1 ${pulledImage.status.id.replace(/^sha256:/, '').slice(0, 12)}`);
      const ran = await berth(['run', '--rm', '--name', 'h13-pulled', ref, 'echo', 'ran the pulled image']);
      ok(ran, 'run the pulled image');
      expect(ran.stdout).toBe('ran the pulled image\n');
      log('run of an image that is not here pulls it with the login Secret (imagePullSecrets), as docker run does');
      ok(await berth(['rmi', ref]), 'rmi before run');
      const runPulls = await berth(['run', '--rm', '--name', 'h13-run-pulls', ref, 'echo', 'pulled by run'], { timeoutMs: 120_000 });
      ok(runPulls, 'run pulls with the login');
      expect(runPulls.stdout).toBe('pulled by run\n');

      log('logout deletes the Secret; a pull without it is refused by the registry');
      const lo = await berth(['logout', registry!.domain]);
      ok(lo, 'logout');
      expect(lo.stdout).toBe(`Removing login credentials for ${registry!.domain}\n`);
      expect((await cp!.request('GET', `${SECRETS}/${secretName}`)).status).toBe(404);
      expect((await berth(['logout', registry!.domain])).stdout).toBe(`Not logged in to ${registry!.domain}\n`);
      const refused = await berth(['pull', ref], { timeoutMs: 120_000 });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/Error response from daemon: .*(unauthorized|401|authentication required)/i);
    }, 240_000);

    it('pulls again after a failed pull once the registry has the image', async () => {
      const ref = `${registry!.domain}/h13/later:1`;
      ok(await berth(['login', '-u', USER, '-p', PASSWORD, registry!.domain]), 'login');
      log('pull of a tag the registry does not have: fails');
      const missing = await berth(['pull', ref], { timeoutMs: 120_000 });
      expect(missing.code, missing.stderr).toBe(1);
      expect(missing.stderr).toMatch(/Error response from daemon: image 127\.0\.0\.1-\d+-h13-later-1: .*(not found|unknown|404)/i);
      // (cli/client/images.test.ts checks that a pull of a Failed Image makes it anew; here the
      // controller's own retries may get there first.)
      log('the tag appears in the registry (skopeo copies it there); pull again: pulled');
      const creds = `${USER}:${PASSWORD}`;
      skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', creds, '--dest-creds', creds, `docker://${registry!.domain}/h13/busybox:1`, `docker://${ref}`]);
      const again = await berth(['pull', ref], { timeoutMs: 120_000 });
      ok(again, 'pull again');
      expect(again.stdout).toMatch(new RegExp(`^Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded image for ${ref.replace(/\./g, '\\.')}\n`));
      const pulled = (await cp!.request('GET', `${IMGS}/127.0.0.1-${REGISTRY_PORT}-h13-later-1`)).body;
      expect(pulled.status.phase).toBe('Ready');
      ok(await berth(['logout', registry!.domain]), 'logout');
    }, 240_000);

    it('commits a container, runs the new image and saves it as a docker-archive (commit, run, save -o)', async () => {
      log('a container writes a file');
      const d = await berth(['run', '-d', '--name', 'h13-writer', 'busybox', 'sh', '-c', 'echo committed content > /note.txt; while true; do sleep 1; done']);
      ok(d, 'run -d');
      ids.add(d.stdout.trim());
      await vi.waitFor(async () => expect((await berth(['exec', 'h13-writer', 'cat', '/note.txt'])).stdout).toBe('committed content\n'), { timeout: 30_000, interval: 200 });

      log('commit');
      const c = await berth(['commit', '-m', 'h13 note', 'h13-writer', 'h13/snap:1'], { timeoutMs: 120_000 });
      ok(c, 'commit');
      expect(c.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      const snap = (await cp!.request('GET', `${IMGS}/h13-snap-1`)).body;
      expect(snap.status.id).toBe(c.stdout.trim());
      expect(snap.spec.source.commit).toMatchObject({ container: 'h13-writer', message: 'h13 note' });
      const ran = await berth(['run', '--rm', '--name', 'h13-snap', 'h13/snap:1', 'cat', '/note.txt']);
      ok(ran, 'run the commit');
      expect(ran.stdout).toBe('committed content\n');

      log('save -o');
      const tarFile = join(root, 'snap.tar');
      const s = await berth(['save', '-o', tarFile, 'h13/snap:1']);
      ok(s, 'save');
      expect(s.stdout).toBe('');
      const manifest = await run('tar', ['-xOf', tarFile, 'manifest.json']);
      ok(manifest, 'tar -xOf manifest.json');
      const entries = JSON.parse(manifest.stdout) as { Config: string; RepoTags: string[]; Layers: string[] }[];
      expect(entries).toHaveLength(1);
      expect(entries[0]!.RepoTags.map((t) => t.replace(/^docker\.io\//, ''))).toContain('h13/snap:1');
      const members = (await run('tar', ['-tf', tarFile])).stdout.split('\n');
      for (const f of [entries[0]!.Config, ...entries[0]!.Layers]) expect(members).toContain(f);
      expect(entries[0]!.Layers.length).toBe(2); // busybox's layer and the commit's
      expect(`sha256:${entries[0]!.Config.replace(/^blobs\/sha256\//, '').replace(/\.json$/, '')}`).toBe(snap.status.id);

      log('tag waits until the new tag resolves: run it right away');
      ok(await berth(['tag', 'h13/snap:1', 'h13/snap:2']), 'tag');
      const ran2 = await berth(['run', '--rm', '--name', 'h13-snap2', 'h13/snap:2', 'cat', '/note.txt']);
      ok(ran2, 'run the new tag');
      expect(ran2.stdout).toBe('committed content\n');
    }, 180_000);

    it('publishes a port and lists it, and attaches to a container printing lines (run -p, port, attach)', async () => {
      log(`run -d -p 127.0.0.1:${HOST_PORT}:8080 … httpd`);
      const web = await berth(['run', '-d', '--name', 'h13-web', '-p', `127.0.0.1:${HOST_PORT}:8080`, 'busybox',
        'sh', '-c', 'mkdir -p /www && echo served by h13 > /www/index.html && exec httpd -f -p 8080 -h /www']);
      ok(web, 'run -d -p');
      ids.add(web.stdout.trim());
      const p = await berth(['port', 'h13-web']);
      ok(p, 'port');
      expect(p.stdout).toBe(`8080/tcp -> 127.0.0.1:${HOST_PORT}\n`);
      expect((await berth(['port', 'h13-web', '8080/tcp'])).stdout).toBe(`127.0.0.1:${HOST_PORT}\n`);
      const none = await berth(['port', 'h13-web', '9999']);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("No public port '9999' published for h13-web");
      await vi.waitFor(async () => expect(await httpGet(HOST_PORT, '/index.html')).toEqual({ status: 200, body: 'served by h13\n' }), { timeout: 30_000, interval: 100 });
      expect((await berth(['ps', '--format', '{{.Ports}}'])).stdout).toContain(`127.0.0.1:${HOST_PORT}->8080/tcp`);

      log(`a port range: -p 127.0.0.1:${HOST_PORT + 1}-${HOST_PORT + 2}:8081-8082, one httpd on each`);
      const range = await berth(['run', '-d', '--name', 'h13-range', '-p', `127.0.0.1:${HOST_PORT + 1}-${HOST_PORT + 2}:8081-8082`, 'busybox',
        'sh', '-c', 'mkdir -p /a /b && echo a > /a/index.html && echo b > /b/index.html && httpd -p 8081 -h /a && exec httpd -f -p 8082 -h /b']);
      ok(range, 'run -d -p range');
      ids.add(range.stdout.trim());
      expect((await berth(['port', 'h13-range'])).stdout).toBe(`8081/tcp -> 127.0.0.1:${HOST_PORT + 1}\n8082/tcp -> 127.0.0.1:${HOST_PORT + 2}\n`);
      await vi.waitFor(async () => {
        expect(await httpGet(HOST_PORT + 1, '/index.html')).toEqual({ status: 200, body: 'a\n' });
        expect(await httpGet(HOST_PORT + 2, '/index.html')).toEqual({ status: 200, body: 'b\n' });
      }, { timeout: 30_000, interval: 100 });
      const badRange = await berth(['run', '-d', '-p', '8000-8010:80', 'busybox', 'true']);
      expect(badRange.code).toBe(125);
      expect(badRange.stderr).toContain('-p 8000-8010:80: a host port range for one container port is not supported: name one host port');

      log('attach to a container printing lines: its later output, then its exit code');
      const ticker = await berth(['run', '-d', '--name', 'h13-ticker', 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 60 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done; exit 5']);
      ok(ticker, 'run -d ticker');
      ids.add(ticker.stdout.trim());
      const a = await berth(['attach', 'h13-ticker'], { timeoutMs: 30_000 });
      expect(a.code, a.stderr).toBe(5);
      const ticks = a.stdout.split('\n').filter(Boolean);
      expect(ticks.length, a.stdout).toBeGreaterThan(3);
      expect(ticks.at(-1)).toBe('tick 59');
      for (const [i, line] of ticks.entries()) expect(line).toBe(`tick ${60 - ticks.length + i}`); // consecutive, none doubled
      const late = await berth(['attach', 'h13-ticker']);
      expect(late.code).toBe(1);
      expect(late.stderr).toContain('You cannot attach to a stopped container');
    }, 120_000);

    it('bind-mounts an allowed host directory and refuses another (-v /host:/path, --mount type=bind)', async () => {
      log(`-v ${bindDir}:/data`);
      const r = await berth(['run', '--rm', '--name', 'h13-bind', '-v', `${bindDir}:/data`, 'busybox', 'sh', '-c', 'cat /data/f; echo from the container > /data/g']);
      ok(r, 'run -v');
      expect(r.stdout).toBe('from the host\n');
      expect(spawnSync('cat', [join(bindDir, 'g')], { encoding: 'utf8' }).stdout).toBe('from the container\n');

      log('--mount type=bind,readonly');
      const ro = await berth(['run', '--rm', '--name', 'h13-bind-ro', '--mount', `type=bind,source=${bindDir},target=/data,readonly`, 'busybox', 'sh', '-c', 'cat /data/f; echo x > /data/h']);
      expect(ro.code).not.toBe(0);
      // the container's stdout and stderr land on the CLI's, as with docker run
      expect(ro.stdout).toBe('from the host\n');
      expect(ro.stderr).toContain("can't create /data/h: Read-only file system");
      expect(existsSync(join(bindDir, 'h'))).toBe(false);

      log('a path the server does not allow: 125 and a clear error, nothing created');
      const refused = await berth(['run', '--rm', '--name', 'h13-escape', '-v', '/etc:/host-etc', 'busybox', 'cat', '/host-etc/hostname']);
      expect(refused.code).toBe(125);
      expect(refused.stderr).toMatch(/spec\.bindMounts\[0\]\.hostPath.*"\/etc".*not under a path the server allows/);
      expect(refused.stdout).toBe('');
      expect((await cp!.request('GET', `${CTRS}/h13-escape`)).status).toBe(404);
    }, 120_000);

    it('runs with no network and with the host network (--network none, --network host)', async () => {
      const hostNetNs = readlinkSync('/proc/self/ns/net');
      const script = 'readlink /proc/self/ns/net; ip -o link | cut -d: -f2 | tr -d " "';

      log('default: a network namespace of its own with eth0');
      const dflt = await berth(['run', '--rm', '--name', 'h13-net-default', 'busybox', 'sh', '-c', script]);
      ok(dflt, 'run (default network)');
      const [dNs, ...dLinks] = dflt.stdout.trim().split('\n');
      expect(dNs).not.toBe(hostNetNs);
      expect(dLinks.map((l) => l.replace(/@.*$/, ''))).toEqual(expect.arrayContaining(['lo', 'eth0']));

      log('--network none: only lo');
      const none = await berth(['run', '--rm', '--name', 'h13-net-none', '--network', 'none', 'busybox', 'sh', '-c', script]);
      ok(none, 'run --network none');
      const [nNs, ...nLinks] = none.stdout.trim().split('\n');
      expect(nNs).not.toBe(hostNetNs);
      expect(nLinks).toEqual(['lo']);

      log('--network host: the host\'s namespace');
      const host = await berth(['run', '--rm', '--name', 'h13-net-host', '--network', 'host', 'busybox', 'sh', '-c', script]);
      ok(host, 'run --network host');
      const [hNs, ...hLinks] = host.stdout.trim().split('\n');
      expect(hNs).toBe(hostNetNs);
      expect(hLinks).toContain(`${NAMES.bridgePrefix}d`); // the test's default bridge, a host device
    }, 120_000);
  });
}

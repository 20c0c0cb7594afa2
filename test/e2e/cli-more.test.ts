/**
 * The rest of the `berth` CLI end to end (issue 6, H12): `volume` and `network` verbs
 * (with `network connect`/`disconnect` recreating the container), `system prune`,
 * `apply`/`get`/`describe`/`diff`/`wait --for`/`apply --prune`/`delete -f`, `events`
 * while a container starts, `cp` both ways, `top`, `stats`, `history`, `save`+`load`
 * and shell completion — `node bin/berth.js --kubeconfig … VERB …` as a child process
 * against an in-process berth server with runc and its own networks. Names are
 * `h12-…`; networks use bt12* devices, nft tables bt12_* and subnets 10.212.N.0/24.
 *
 * Skipped unless running as root with runc, conmon, kubectl and nft.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildBusyboxImage } from '../fixtures/busybox-image.ts';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';
import { BERTH_BIN, narrator, realContainersMissing, run, sweepDataDir, sweepTestNetwork, testNetwork, type ToolResult } from './helpers.ts';

const NS = '/apis/berth.dev/v1/namespaces/default';
const missing = realContainersMissing() ?? (spawnSync('nft', ['--version']).status === 0 ? undefined : 'nft is missing');

const { names: NAMES, subnet } = testNetwork('bt12', 212);
const sweepHost = () => sweepTestNetwork(NAMES);

if (missing) {
  describe('berth CLI, more verbs, end to end', () => {
    it.skip(`SKIPPED: needs root with runc, conmon, kubectl and nft (${missing})`, () => {});
  });
} else {
  describe('berth CLI, more verbs, end to end (runc, conmon, nftables)', () => {
    let root: string;
    let cp: ControlPlane;
    const ids = new Set<string>();
    const log = narrator('h12');

    const berth = (args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ToolResult> =>
      run(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, ...args], { timeoutMs: 90_000, ...opts });
    const ok = async (args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> => {
      const res = await berth(args, opts);
      expect(res.code, `berth ${args.join(' ')}: ${res.stderr}`).toBe(0);
      return res.stdout;
    };
    const runDetached = async (name: string, ...args: string[]): Promise<string> => {
      const id = (await ok(['run', '-d', '--name', name, ...args])).trim();
      ids.add(id);
      return id;
    };

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'berth-e2e-h12-'));
      const fixture = await buildBusyboxImage(join(root, 'fixture'));
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = root;
      try {
        cp = await startControlPlane({
          runtime: 'runc', controllers: true, nodeName: 'h12',
          network: { ...NAMES, defaultNetwork: { name: 'bt12-default', bridge: `${NAMES.bridgePrefix}d`, subnet: subnet(0) }, subnetPool: subnet(5) },
        });
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      const img = await cp.request('POST', `${NS}/images`, {
        body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: 'busybox' }, spec: { source: { import: { path: fixture.layoutDir } }, tags: ['busybox:latest'] } },
      });
      expect(img.status).toBe(201);
      await vi.waitFor(async () => expect((await cp.request('GET', `${NS}/images/busybox`)).body.status?.phase).toBe('Ready'), { timeout: 30_000, interval: 100 });
      log(`berth server with runc at ${cp.url}`);
    }, 90_000);

    const deleteAll = async (plural: string) => {
      const list = await cp.request('GET', `${NS}/${plural}`);
      for (const o of list.body.items ?? []) {
        if (o.status?.containerID) ids.add(o.status.containerID);
        await cp.request('DELETE', `${NS}/${plural}/${o.metadata.name}`);
      }
      await vi.waitFor(async () => expect((await cp.request('GET', `${NS}/${plural}`)).body.items).toEqual([]), { timeout: 30_000, interval: 100 });
    };

    afterEach(async () => {
      await deleteAll('containers');
      await deleteAll('networks');
      await deleteAll('volumes');
    }, 90_000);

    afterAll(async () => {
      if (cp) {
        await cp.server.close().catch((err: unknown) => console.error('stopping the control plane failed', err));
        if (cp.dataDir) await sweepDataDir(cp.dataDir, ids);
        await cp.stop().catch((err: unknown) => console.error('stopping the control plane failed', err));
      }
      if (root) await sweepDataDir(root, ids);
      sweepHost();
    }, 90_000);

    it('creates, lists, inspects and removes volumes and networks; connect and disconnect recreate the container; prune removes what is unused', async () => {
      log('volume create / ls / inspect');
      expect(await ok(['volume', 'create', '--label', 'team=h12', 'h12-data'])).toBe('h12-data\n');
      expect(await ok(['volume', 'create', 'h12-spare'])).toBe('h12-spare\n');
      const vls = await ok(['volume', 'ls']);
      expect(vls).toMatch(/^DRIVER +VOLUME NAME\nlocal +h12-data\nlocal +h12-spare\n$/);
      expect(await ok(['volume', 'ls', '-q', '--filter', 'label=team=h12'])).toBe('h12-data\n');
      expect(JSON.parse(await ok(['volume', 'inspect', 'h12-data']))).toMatchObject([{ kind: 'Volume', metadata: { name: 'h12-data', labels: { team: 'h12' } } }]);

      log('network create / ls / inspect');
      const netId = (await ok(['network', 'create', '--subnet', subnet(1), 'h12-front'])).trim();
      expect(netId).toMatch(/^[0-9a-f]{32}$/);
      await ok(['network', 'create', '--subnet', subnet(2), '--internal', 'h12-back']);
      const nls = await ok(['network', 'ls']);
      expect(nls).toMatch(new RegExp(`^NETWORK ID +NAME +DRIVER +SCOPE\n(${netId.slice(0, 12)} +h12-front|[0-9a-f]{12} +h12-back) +bridge +local\n`));
      expect(nls.trimEnd().split('\n')).toHaveLength(3);
      expect(await ok(['network', 'inspect', '-f', '{{.spec.subnet}} {{.spec.outbound}}', 'h12-back'])).toBe(`${subnet(2)} false\n`);

      log('run on h12-front with the volume; connect to h12-back; disconnect');
      await runDetached('h12-net', '--network', 'h12-front', '-v', 'h12-data:/data', 'busybox', 'sleep', '3600');
      const before = (await cp.request('GET', `${NS}/containers/h12-net`)).body.status.containerID;
      expect(await ok(['network', 'connect', '--alias', 'db', 'h12-back', 'h12-net'])).toBe('');
      const connected = (await cp.request('GET', `${NS}/containers/h12-net`)).body;
      ids.add(connected.status.containerID);
      expect(connected.spec.networks).toEqual([{ name: 'h12-front' }, { name: 'h12-back', aliases: ['db'] }]);
      expect(connected.status.phase).toBe('Running');
      expect(connected.status.containerID).not.toBe(before);
      expect(await ok(['exec', 'h12-net', 'sh', '-c', 'ip -4 -o addr | grep -c "10\\.212\\."'])).toBe('2\n');
      const again = await berth(['network', 'connect', 'h12-back', 'h12-net']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/already exists in network h12-back/);
      await ok(['network', 'disconnect', 'h12-back', 'h12-net']);
      expect((await cp.request('GET', `${NS}/containers/h12-net`)).body.spec.networks).toEqual([{ name: 'h12-front' }]);

      log('rm refuses what is in use');
      const vrm = await berth(['volume', 'rm', 'h12-data']);
      expect(vrm.code).toBe(1);
      expect(vrm.stderr).toMatch(/volume is in use - \[h12-net\]/);
      const nrm = await berth(['network', 'rm', 'h12-front']);
      expect(nrm.code).toBe(1);
      expect(nrm.stderr).toMatch(/has active endpoints \(h12-net\)/);
      expect(await ok(['network', 'rm', 'h12-back'])).toBe('h12-back\n');

      log('volume prune, then system prune -f --volumes after the container stopped');
      expect(await ok(['volume', 'prune', '-f'])).toBe('Deleted Volumes:\nh12-spare\n\nTotal reclaimed space: 0B\n');
      await ok(['stop', '-t', '0', 'h12-net']);
      const pruned = await ok(['system', 'prune', '-f', '--volumes']);
      expect(pruned).toMatch(/^Deleted Containers:\n[0-9a-f]{64}\n\nDeleted Networks:\nh12-front\n\nDeleted Volumes:\nh12-data\n\nTotal reclaimed space: /);
      expect((await cp.request('GET', `${NS}/containers`)).body.items).toEqual([]);
      expect((await cp.request('GET', `${NS}/networks`)).body.items).toEqual([]);
      expect((await cp.request('GET', `${NS}/volumes`)).body.items).toEqual([]);
      expect((await cp.request('GET', `${NS}/images/busybox`)).status).toBe(200);
    }, 240_000);

    it('applies a directory of manifests, gets, describes, diffs, waits, prunes by label and deletes (apply, get, describe, diff, wait --for, apply --prune, delete -f)', async () => {
      const dir = join(root, 'h12-manifests');
      await mkdir(dir, { recursive: true });
      const ctr = (name: string, cmd: string) => `apiVersion: berth.dev/v1\nkind: Container\nmetadata:\n  name: ${name}\n  labels: {app: h12}\nspec:\n  image: busybox\n  command: [sh, -c, '${cmd}']\n  stopGracePeriodSeconds: 0\n`;
      await writeFile(join(dir, 'a.yaml'), `${ctr('h12-a', 'sleep 3600')}---\napiVersion: berth.dev/v1\nkind: Volume\nmetadata:\n  name: h12-vol\n  labels: {app: h12}\n`);
      await writeFile(join(dir, 'b.yaml'), ctr('h12-b', 'sleep 3600'));

      log('apply -f DIR');
      expect(await ok(['apply', '-f', dir])).toBe('container.berth.dev/h12-a created\nvolume.berth.dev/h12-vol created\ncontainer.berth.dev/h12-b created\n');
      expect(await ok(['apply', '-f', dir])).toBe('container.berth.dev/h12-a unchanged\nvolume.berth.dev/h12-vol unchanged\ncontainer.berth.dev/h12-b unchanged\n');
      const managed = (await cp.request('GET', `${NS}/containers/h12-a`)).body.metadata.managedFields;
      expect(managed.some((m: { manager: string; operation: string }) => m.manager === 'berth' && m.operation === 'Apply')).toBe(true);

      log('wait --for, get, describe');
      expect(await ok(['wait', '--for', 'jsonpath={.status.phase}=Running', '--timeout', '60s', 'ctr/h12-a', 'containers/h12-b'])).toBe('container.berth.dev/h12-a condition met\ncontainer.berth.dev/h12-b condition met\n');
      const table = await ok(['get', 'containers']);
      expect(table.split('\n')[0]).toMatch(/^NAME +/);
      expect(table).toMatch(/\nh12-a +/);
      expect(table).toMatch(/\nh12-b +/);
      expect(await ok(['get', 'ctr,volumes', '-o', 'name', '-l', 'app=h12'])).toBe('container.berth.dev/h12-a\ncontainer.berth.dev/h12-b\nvolume.berth.dev/h12-vol\n');
      const y = await ok(['get', 'container', 'h12-a', '-o', 'yaml']);
      expect(y).toMatch(/^apiVersion: berth.dev\/v1\nkind: Container\n/);
      const d = await ok(['describe', 'container', 'h12-a']);
      expect(d).toMatch(/^Name: +h12-a\nNamespace: +default\nLabels: +app=h12\n/);
      expect(d).toMatch(/\nStatus:\n {2}phase: Running\n|\nStatus:\n[\s\S]*phase: Running/);
      const nf = await berth(['get', 'container', 'h12-none']);
      expect(nf.code).toBe(1);
      expect(nf.stderr).toMatch(/NotFound.*"h12-none" not found/);

      log('diff: none, then an edit');
      expect((await berth(['diff', '-f', dir])).code).toBe(0);
      await writeFile(join(dir, 'b.yaml'), ctr('h12-b', 'sleep 7200'));
      const df = await berth(['diff', '-f', join(dir, 'b.yaml')]);
      expect(df.code, df.stderr).toBe(1);
      expect(df.stdout).toMatch(/^-.*sleep 3600/m);
      expect(df.stdout).toMatch(/^\+.*sleep 7200/m);
      expect((await cp.request('GET', `${NS}/containers/h12-b`)).body.spec.command).toEqual(['sh', '-c', 'sleep 3600']);

      log('apply --prune -l app=h12 with a.yaml gone; stdin');
      const bText = await readFile(join(dir, 'b.yaml'), 'utf8');
      expect(await ok(['apply', '--prune', '-l', 'app=h12', '-f', '-'], { stdin: bText })).toBe('container.berth.dev/h12-b configured\ncontainer.berth.dev/h12-a pruned\nvolume.berth.dev/h12-vol pruned\n');
      await vi.waitFor(async () => expect((await cp.request('GET', `${NS}/containers/h12-a`)).status).toBe(404), { timeout: 30_000, interval: 200 });

      log('delete -f');
      expect(await ok(['delete', '-f', join(dir, 'b.yaml')])).toBe('container.berth.dev "h12-b" deleted\n');
      expect((await cp.request('GET', `${NS}/containers/h12-b`)).status).toBe(404);
      expect((await berth(['delete', 'container', 'h12-b'])).code).toBe(1);
      expect(await ok(['delete', 'container', 'h12-b', '--ignore-not-found'])).toBe('');
    }, 240_000);

    it('restarts a failing container at most N times with --restart on-failure:N, then leaves it Exited (run --restart)', async () => {
      await runDetached('h12-retry', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3');
      await vi.waitFor(async () => {
        const c = (await cp.request('GET', `${NS}/containers/h12-retry`)).body;
        expect(c.spec).toMatchObject({ restartPolicy: 'OnFailure', restartMaxRetries: 2 });
        expect(c.status).toMatchObject({ phase: 'Exited', exitCode: 3, restartCount: 2, reason: 'Error' });
      }, { timeout: 30_000, interval: 200 });
      expect(await ok(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).toMatch(/^h12-retry Exited \(3\) /m);
    }, 60_000);

    it('streams events while a container starts and dies (events)', async () => {
      const child = spawn(process.execPath, [BERTH_BIN, '--kubeconfig', cp.server.kubeconfigPath, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      let errText = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (errText += d));
      try {
        log('the stream is open once a volume created after it started shows');
        let probe = 0;
        await vi.waitFor(async () => {
          await ok(['volume', 'create', `h12-probe-${++probe}`]);
          expect(errText).toBe('');
          expect(text).toMatch(/^\S+Z volume create h12-probe-\d+ \(driver=local\)$/m);
        }, { timeout: 30_000, interval: 1_000 });
        log('run -d while events runs');
        const id = await runDetached('h12-ev', 'busybox', 'sh', '-c', 'sleep 1; exit 3');
        await vi.waitFor(() => {
          expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ container create ${id} \\(image=busybox, name=h12-ev\\)$`, 'm'));
          expect(text).toMatch(new RegExp(`^\\S+Z container start ${id} \\(image=busybox, name=h12-ev\\)$`, 'm'));
          expect(text).toMatch(new RegExp(`^\\S+Z container die ${id} \\(exitCode=3, image=busybox, name=h12-ev\\)$`, 'm'));
        }, { timeout: 30_000, interval: 200 });
      } finally {
        child.kill('SIGTERM');
      }
      log('events --since replays');
      const past = await berth(['events', '--since', '5m', '--until', '0s', '--filter', 'container=h12-ev', '--filter', 'event=die']);
      expect(past.code, past.stderr).toBe(0);
      expect(past.stdout).toMatch(/ container die [0-9a-f]{64} \(exitCode=3, image=busybox, name=h12-ev\)\n$/);
    }, 120_000);

    it('copies files both ways and shows processes, usage, history; save and load; completes names (cp, top, stats, history, load, completion)', async () => {
      await runDetached('h12-cp', 'busybox', 'sleep', '3600');
      const local = join(root, 'h12-cp');
      await mkdir(join(local, 'tree', 'sub'), { recursive: true });
      await writeFile(join(local, 'hello.txt'), 'hello from the host\n');
      await writeFile(join(local, 'tree', 'sub', 'deep.txt'), 'deep\n');

      log('cp host → container: a file renamed, a directory into a directory');
      expect(await ok(['cp', join(local, 'hello.txt'), 'h12-cp:/tmp/greeting'])).toBe('');
      expect(await ok(['exec', 'h12-cp', 'cat', '/tmp/greeting'])).toBe('hello from the host\n');
      await ok(['cp', join(local, 'tree'), 'h12-cp:/tmp']);
      expect(await ok(['exec', 'h12-cp', 'cat', '/tmp/tree/sub/deep.txt'])).toBe('deep\n');

      log('cp container → host');
      await ok(['exec', 'h12-cp', 'sh', '-c', 'mkdir -p /srv/out && echo made inside > /srv/out/made.txt']);
      await ok(['cp', 'h12-cp:/srv/out', join(local, 'back')]);
      expect(await readFile(join(local, 'back', 'made.txt'), 'utf8')).toBe('made inside\n');
      await ok(['cp', 'h12-cp:/tmp/greeting', local]);
      expect(await readFile(join(local, 'greeting'), 'utf8')).toBe('hello from the host\n');
      const missingSrc = await berth(['cp', 'h12-cp:/no/such', local]);
      expect(missingSrc.code).toBe(1);
      expect(missingSrc.stderr).toMatch(/no\/such|No such file/i);

      log('top, stats --no-stream');
      expect(await ok(['top', 'h12-cp'])).toMatch(/^PID +USER +(TIME +)?COMMAND\n1 +root +(\S+ +)?sleep 3600\n/);
      const st = await ok(['stats', '--no-stream', 'h12-cp']);
      expect(st).toMatch(/^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS\n[0-9a-f]{12} +h12-cp +\d+\.\d\d% +[\d.]+[KMG]?i?B \/ [\d.]+[KMG]iB +\d+\.\d\d% +\S+ \/ \S+ +0B \/ 0B +[1-9]\d*\n$/);

      log('stats of a container without a shell: the node reads the counters, nothing runs inside');
      await runDetached('h16-nosh', 'busybox', 'sleep', '3600');
      await ok(['exec', 'h16-nosh', 'rm', '-f', '/bin/sh', '/bin/ash', '/bin/hush']);
      const noShell = await berth(['exec', 'h16-nosh', 'sh', '-c', 'true']);
      expect(noShell.code).not.toBe(0);
      expect(await ok(['stats', '--no-stream', 'h16-nosh'])).toMatch(/^CONTAINER ID +NAME +CPU % .*\n[0-9a-f]{12} +h16-nosh +\d+\.\d\d% +[\d.]+[KMG]?i?B \/ [\d.]+[KMG]iB +\d+\.\d\d% +\S+ \/ \S+ +\S+ \/ \S+ +1\n$/);
      expect(await ok(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'h16-nosh'])).toBe('h16-nosh 1\n');

      log('history, save + load');
      expect(await ok(['history', 'busybox'])).toMatch(/^IMAGE +CREATED +CREATED BY +SIZE +COMMENT\n[0-9a-f]{12} +.+ ago +berth test fixture: busybox-static +[\d.]+[kM]B\n$/);
      const tar = join(local, 'busybox.tar');
      await ok(['save', '-o', tar, 'busybox']);
      expect(await ok(['load', '-i', tar], { timeoutMs: 120_000 })).toBe('Loaded image: busybox:latest\n');
      expect((await cp.request('GET', `${NS}/images/busybox-latest`)).body.status.phase).toBe('Ready');
      await cp.request('DELETE', `${NS}/images/busybox-latest`);
      // an OCI image layout directory, as podman load takes (this one names no full reference: untagged)
      const fromDir = await ok(['load', '-i', join(root, 'fixture', 'busybox-oci')], { timeoutMs: 120_000 });
      expect(fromDir).toMatch(/^Loaded image ID: sha256:[0-9a-f]{64}\n$/);
      const loaded = ((await cp.request('GET', `${NS}/images`)).body.items as { metadata: { name: string }; status?: { id?: string } }[]).find((i) => i.metadata.name.startsWith('load-'));
      expect(`Loaded image ID: ${loaded?.status?.id}\n`).toBe(fromDir);
      await cp.request('DELETE', `${NS}/images/${loaded!.metadata.name}`);
      for (const [args, message] of [
        [['load', '-i', join(root, 'no-such.tar')], `berth: load: open ${join(root, 'no-such.tar')}: no such file or directory\n`],
        [['load', '-i', join(root, 'fixture')], `berth: load: ${join(root, 'fixture')} is a directory without index.json: give a docker-archive or OCI archive, or an OCI image layout directory\n`],
      ] as const) {
        const bad = await berth(args);
        expect([bad.code, bad.stderr]).toEqual([1, message]);
      }

      log('completion');
      expect(await ok(['completion', 'bash'])).toMatch(/complete -o default -F _berth berth\n$/);
      expect(await ok(['completion', 'zsh'])).toMatch(/^#compdef berth\n/);
      expect(await ok(['__complete', '--', 'net'])).toBe('network\n');
      expect(await ok(['__complete', '--', 'exec', 'h12-'])).toBe('h12-cp\n');
      expect(await ok(['__complete', '--', 'run', '--rm', 'busy'])).toBe('busybox\n');
      expect(await ok(['__complete', '--', 'cp', 'h12'])).toBe('h12-cp:\n');
      expect(await ok(['__complete', '--', 'network', 'ls', '--q'])).toBe('--quiet\n');
    }, 240_000);
  });
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allManifests, toManifests } from './convert.ts';
import { ComposeError } from './interpolate.ts';
import { loadCompose } from './load.ts';
import { toComposeModel } from './model.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-compose-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fakePack = async (ctx: string, dockerfile: string) => ({ archive: Buffer.from(ctx), digest: `sha256:${'a'.repeat(64)}`, files: [dockerfile] });

/** Writes `yaml` as the project's compose.yaml and returns its manifests. */
async function manifestsOf(yaml: string, environ: Record<string, string> = {}) {
  await writeFile(join(dir, 'compose.yaml'), yaml);
  const loaded = await loadCompose({ cwd: dir, projectName: 'app', environ, warn: () => {} });
  return allManifests(await toManifests(await toComposeModel(loaded), { namespace: 'ns', pack: fakePack }));
}
const specOf = async (yaml: string, name = 'app-web-1') => (await manifestsOf(yaml)).find((o) => o.kind === 'Container' && o.metadata.name === name)!.spec as Record<string, unknown>;

describe('compose → berth manifests', () => {
  const cases: { name: string; yaml: string; want: Record<string, unknown> }[] = [
    {
      name: 'image, command string and entrypoint list become args and command',
      yaml: 'services:\n  web:\n    image: busybox\n    entrypoint: ["/bin/sh", "-c"]\n    command: echo "hello world"\n',
      want: { image: 'busybox', command: ['/bin/sh', '-c'], args: ['echo', 'hello world'], restartPolicy: 'Never', state: 'Running' },
    },
    {
      name: 'an entrypoint without command clears the image CMD',
      yaml: 'services:\n  web:\n    image: busybox\n    entrypoint: sleep\n',
      want: { command: ['sleep'], args: [] },
    },
    {
      name: 'environment as a list and as a map, with values from the environment',
      yaml: 'services:\n  web:\n    image: busybox\n    environment:\n      A: 1\n      B: "${B:-two}"\n',
      want: { env: [{ name: 'A', value: '1' }, { name: 'B', value: 'two' }] },
    },
    {
      name: 'ports in short and long syntax',
      yaml: 'services:\n  web:\n    image: busybox\n    ports: ["8080:80", "127.0.0.1:5353:53/udp", 9000, {target: 443, published: 8443, host_ip: 0.0.0.0}]\n',
      want: { ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, hostPort: 5353, hostIP: '127.0.0.1', protocol: 'UDP' }, { containerPort: 9000 }, { containerPort: 443, hostPort: 8443, hostIP: '0.0.0.0' }] },
    },
    {
      name: 'port ranges in short syntax, expanded as Docker does',
      yaml: 'services:\n  web:\n    image: busybox\n    ports: ["8000-8001:80-81", "127.0.0.1::9000-9001/udp"]\n',
      want: { ports: [{ containerPort: 80, hostPort: 8000 }, { containerPort: 81, hostPort: 8001 }, { containerPort: 9000, hostIP: '127.0.0.1', protocol: 'UDP' }, { containerPort: 9001, hostIP: '127.0.0.1', protocol: 'UDP' }] },
    },
    {
      name: 'named volumes, binds (relative to the file) and tmpfs in short and long syntax',
      yaml: 'services:\n  web:\n    image: busybox\n    volumes: ["data:/data:ro", "./site:/www", {type: bind, source: /etc/hosts, target: /h, read_only: true}, {type: tmpfs, target: /t, tmpfs: {size: 1m}}]\nvolumes:\n  data: {}\n',
      want: {
        volumeMounts: [{ name: 'app-data', mountPath: '/data', readOnly: true }],
        bindMounts: [{ hostPath: '<dir>/site', mountPath: '/www' }, { hostPath: '/etc/hosts', mountPath: '/h', readOnly: true }],
        tmpfs: [{ mountPath: '/t', sizeBytes: 1048576 }],
      },
    },
    {
      name: 'restart on-failure with a retry count',
      yaml: 'services:\n  web:\n    image: busybox\n    restart: on-failure:3\n',
      want: { restartPolicy: 'OnFailure', restartMaxRetries: 3 },
    },
    {
      name: 'volumes that are not filled from the image: nocopy in short and long syntax',
      yaml: 'services:\n  web:\n    image: busybox\n    volumes: ["data:/data:nocopy", {type: volume, source: data, target: /d2, volume: {nocopy: true}}, {type: volume, source: data, target: /d3}]\nvolumes:\n  data: {}\n',
      want: { volumeMounts: [{ name: 'app-data', mountPath: '/data', noCopy: true }, { name: 'app-data', mountPath: '/d2', noCopy: true }, { name: 'app-data', mountPath: '/d3' }] },
    },
    {
      name: 'networks with aliases, the service name always among them',
      yaml: 'services:\n  web:\n    image: busybox\n    networks:\n      front: {aliases: [www]}\n      back:\nnetworks:\n  front: {}\n  back: {external: true}\n',
      want: { networks: [{ name: 'app-front', aliases: ['web', 'www'] }, { name: 'back', aliases: ['web'] }] },
    },
    {
      name: 'no networks key: the project default network',
      yaml: 'services:\n  web:\n    image: busybox\n',
      want: { networks: [{ name: 'app-default', aliases: ['web'] }] },
    },
    {
      name: 'network_mode host',
      yaml: 'services:\n  web:\n    image: busybox\n    network_mode: host\n',
      want: { networks: [{ name: 'host' }] },
    },
    {
      name: 'restart, healthcheck (CMD-SHELL, durations), resources, working_dir, user, hostname',
      yaml: 'services:\n  web:\n    image: busybox\n    restart: on-failure\n    healthcheck: {test: ["CMD-SHELL", "nc -z localhost 80"], interval: 1m30s, timeout: 5s, retries: 2, start_period: 0s}\n    deploy: {resources: {limits: {memory: 512m, cpus: "0.25"}}}\n    pids_limit: 10\n    working_dir: /srv\n    user: "1000:1000"\n    hostname: h\n    stop_grace_period: 2s\n    stop_signal: INT\n',
      want: {
        restartPolicy: 'OnFailure',
        healthcheck: { exec: ['sh', '-c', 'nc -z localhost 80'], intervalSeconds: 90, timeoutSeconds: 5, retries: 2, startPeriodSeconds: 0 },
        resources: { memory: '512Mi', cpus: '0.25', pids: 10 }, workingDir: '/srv', user: '1000:1000', hostname: 'h', stopGracePeriodSeconds: 2, stopSignal: 'SIGINT',
      },
    },
  ];
  it.each(cases)('$name', async ({ yaml, want }) => {
    const w = JSON.parse(JSON.stringify(want).replaceAll('<dir>', dir));
    expect(await specOf(yaml)).toMatchObject(w);
  });

  it('labels every object with the project, and services, networks and volumes with their keys', async () => {
    const objs = await manifestsOf('services:\n  web:\n    image: busybox\n    volumes: [d:/d]\n    labels: {tier: web, note: "free text here"}\nvolumes:\n  d: {}\n');
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Network/app-default', 'Volume/app-d', 'Container/app-web-1']);
    for (const o of objs) expect(o.metadata.labels).toMatchObject({ 'berth.dev/compose-project': 'app' });
    const ctr = objs[2]!;
    expect(ctr.metadata.labels).toEqual({ 'berth.dev/compose-project': 'app', 'berth.dev/compose-service': 'web', tier: 'web' });
    expect(ctr.metadata.annotations).toEqual({ note: 'free text here' });
    expect(objs[0]!.spec).toEqual({ driver: 'bridge', outbound: true });
  });

  it('makes a built Image tagged <project>-<service> and N replicas named <project>-<service>-<n>', async () => {
    const objs = await manifestsOf('services:\n  api:\n    build: {context: ., dockerfile: Dockerfile.dev, args: [X=1], target: final}\n    deploy: {replicas: 3}\n');
    const img = objs.find((o) => o.kind === 'Image')!;
    expect(img.metadata.name).toBe('app-api');
    expect(img.spec).toEqual({ source: { build: { context: { archive: { digest: `sha256:${'a'.repeat(64)}` } }, dockerfile: 'Dockerfile.dev', buildArgs: { X: '1' }, target: 'final' } }, tags: ['app-api:latest'] });
    const ctrs = objs.filter((o) => o.kind === 'Container');
    expect(ctrs.map((c) => c.metadata.name)).toEqual(['app-api-1', 'app-api-2', 'app-api-3']);
    expect(ctrs[0]!.spec).toMatchObject({ image: 'app-api:latest', imagePullPolicy: 'Never' });
  });

  it('orders containers after their dependencies', async () => {
    const objs = await manifestsOf('services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: {c: {condition: service_healthy}}\n  c:\n    image: busybox\n');
    expect(objs.filter((o) => o.kind === 'Container').map((o) => o.metadata.name)).toEqual(['app-c-1', 'app-b-1', 'app-a-1']);
  });
});

describe('what berth cannot do, and invalid files', () => {
  const cases: { name: string; yaml: string; want: string }[] = [
    { name: 'an unsupported service key', yaml: 'services:\n  web:\n    image: busybox\n    privileged: true\n', want: 'services.web.privileged: not supported by berth' },
    { name: 'an unsupported deploy key', yaml: 'services:\n  web:\n    image: busybox\n    deploy: {placement: {constraints: [a]}}\n', want: 'services.web.deploy.placement: not supported by berth' },
    { name: 'reservations', yaml: 'services:\n  web:\n    image: busybox\n    deploy: {resources: {reservations: {memory: 1m}}}\n', want: 'services.web.deploy.resources.reservations: not supported by berth' },
    { name: 'a volume driver', yaml: 'services:\n  web:\n    image: busybox\nvolumes:\n  v: {driver: nfs}\n', want: 'volumes.v.driver: nfs: not supported by berth' },
    { name: 'secrets', yaml: 'services:\n  web:\n    image: busybox\nsecrets:\n  s: {file: ./x}\n', want: 'secrets: not supported by berth' },
    { name: 'an anonymous volume', yaml: 'services:\n  web:\n    image: busybox\n    volumes: [/data]\n', want: 'services.web.volumes[0]: /data: anonymous volumes are not supported; name one: NAME:/data' },
    { name: 'a host range for one port', yaml: 'services:\n  web:\n    image: busybox\n    ports: ["8000-8001:80"]\n', want: 'services.web.ports[0]: 8000-8001:80: a host port range for one container port is not supported' },
    { name: 'a bad restart word', yaml: 'services:\n  web:\n    image: busybox\n    restart: sometimes\n', want: 'services.web.restart: "sometimes": must be no, always, on-failure[:max-retries] or unless-stopped' },
    { name: 'a sub-second duration', yaml: 'services:\n  web:\n    image: busybox\n    healthcheck: {test: [CMD, "true"], interval: 500ms}\n', want: 'services.web.healthcheck.interval: 500ms: berth counts whole seconds' },
    { name: 'network_mode service:x', yaml: 'services:\n  web:\n    image: busybox\n    network_mode: "service:db"\n', want: 'services.web.network_mode: service:db: not supported by berth' },
    { name: 'an undeclared volume', yaml: 'services:\n  web:\n    image: busybox\n    volumes: [data:/d]\n', want: 'services.web.volumes[0]: refers to undefined volume data' },
    { name: 'an undeclared network', yaml: 'services:\n  web:\n    image: busybox\n    networks: [n]\n', want: 'service web refers to undefined network n' },
    { name: 'an unknown dependency', yaml: 'services:\n  web:\n    image: busybox\n    depends_on: [db]\n', want: 'depends on undefined service db' },
    { name: 'a dependency cycle', yaml: 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n', want: 'dependency cycle a -> b -> a' },
    { name: 'a fixed host port with replicas', yaml: 'services:\n  web:\n    image: busybox\n    ports: ["80:80"]\n    deploy: {replicas: 2}\n', want: 'services.web.ports[0]: host port 80 cannot be published by 2 replicas' },
    { name: 'neither image nor build', yaml: 'services:\n  web:\n    command: x\n', want: 'services.web: has neither an image nor a build context' },
    { name: 'a key the schema does not know', yaml: 'services:\n  web:\n    image: busybox\n    imagee: x\n', want: 'services.web: additional property imagee is not allowed' },
    { name: 'a wrong depends_on condition', yaml: 'services:\n  web:\n    image: busybox\n    depends_on: {db: {condition: ready}}\n  db:\n    image: busybox\n', want: 'services.web.depends_on.db.condition: must be one of "service_started", "service_healthy", "service_completed_successfully"' },
    { name: 'a wrong type in a long port', yaml: 'services:\n  web:\n    image: busybox\n    ports: [{target: eighty}]\n', want: 'services.web.ports[0].target: must be integer' },
    { name: 'a required variable', yaml: 'services:\n  web:\n    image: "${IMG:?name the image}"\n', want: 'services.web.image: required variable IMG is missing a value: name the image' },
  ];
  it.each(cases)('refuses $name, naming the key', async ({ yaml, want }) => {
    const err = await manifestsOf(yaml).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect((err as Error).message).toContain(want);
  });

  it('accepts extension keys (x-…) anywhere', async () => {
    await expect(manifestsOf('x-common: &c {image: busybox}\nservices:\n  web:\n    <<: *c\n    x-note: hi\n')).resolves.toHaveLength(2);
  });
});

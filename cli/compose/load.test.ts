import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toManifests } from './convert.ts';
import { ComposeError } from './interpolate.ts';
import { findComposeFiles, loadCompose } from './load.ts';
import { toComposeModel } from './model.ts';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'berth-compose-load-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh project directory with `files` (name → text). */
async function project(files: Record<string, string>): Promise<string> {
  const dir = join(root, `p${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

const fakePack = async (ctx: string, dockerfile: string) => ({ archive: Buffer.from(ctx), digest: `sha256:${'b'.repeat(64)}`, files: [dockerfile] });
const quiet = { warn: () => {} };

describe('which files make a project', () => {
  it('merges every -f in order; paths in every file are relative to the first file\'s directory', async () => {
    const dir = await project({
      'base/compose.yaml': 'name: base\nservices:\n  web:\n    image: busybox\n    environment: {A: "1", B: "2"}\n    volumes: ["./site:/www"]\n',
      'env/prod.yaml': 'name: prod\nservices:\n  web:\n    environment: [B=3]\n    volumes: ["./conf:/etc/app:ro"]\n',
    });
    const loaded = await loadCompose({ cwd: dir, files: ['base/compose.yaml', 'env/prod.yaml'], environ: {}, ...quiet });
    expect(loaded.files).toEqual([join(dir, 'base/compose.yaml'), join(dir, 'env/prod.yaml')]);
    expect(loaded.dir).toBe(join(dir, 'base'));
    expect(loaded.name).toBe('prod');
    const web = (await toComposeModel(loaded)).services.web!;
    expect(web.environment).toEqual({ A: '1', B: '3' });
    expect(web.volumes).toEqual([
      { type: 'bind', source: join(dir, 'base/site'), target: '/www', read_only: false },
      { type: 'bind', source: join(dir, 'base/conf'), target: '/etc/app', read_only: true },
    ]);
  });

  it('without -f takes the default file and its override file beside it', async () => {
    const dir = await project({
      'compose.yaml': 'services:\n  web:\n    image: busybox\n    command: ["sleep", "1"]\n    ports: ["8080:80"]\n',
      'compose.override.yaml': 'services:\n  web:\n    command: sleep 2\n    ports: ["9090:90"]\n',
      'docker-compose.override.yml': 'services:\n  web:\n    image: not-used\n',
    });
    expect(findComposeFiles(dir, [], {})).toEqual([join(dir, 'compose.yaml'), join(dir, 'compose.override.yaml')]);
    const web = (await toComposeModel(await loadCompose({ cwd: dir, environ: {}, ...quiet }))).services.web!;
    expect(web.image).toBe('busybox');
    expect(web.command).toEqual(['sleep', '2']);
    expect(web.ports.map((p) => p.published)).toEqual([8080, 9090]);
  });

  it('picks docker-compose.yml with docker-compose.override.yml, and warns when several default names exist', async () => {
    const dir = await project({ 'docker-compose.yml': 'services: {}\n', 'docker-compose.override.yml': 'services: {}\n' });
    expect(findComposeFiles(dir, [], {})).toEqual([join(dir, 'docker-compose.yml'), join(dir, 'docker-compose.override.yml')]);
    const both = await project({ 'compose.yml': 'services: {}\n', 'docker-compose.yaml': 'services: {}\n' });
    const warnings: string[] = [];
    expect(findComposeFiles(both, [], {}, (m) => warnings.push(m))).toEqual([join(both, 'compose.yml')]);
    expect(warnings).toEqual([`Found multiple config files with supported names: ${join(both, 'compose.yml')}, ${join(both, 'docker-compose.yaml')}; using ${join(both, 'compose.yml')}`]);
  });

  it('an -f names exactly the files used: no override file is added', async () => {
    const dir = await project({ 'compose.yaml': 'services: {}\n', 'compose.override.yaml': 'services: {}\n' });
    expect(findComposeFiles(dir, ['compose.yaml'], { COMPOSE_FILE: 'other.yaml' })).toEqual([join(dir, 'compose.yaml')]);
  });

  it('$COMPOSE_FILE lists the files, split on ":" or $COMPOSE_PATH_SEPARATOR, from the environment or the .env of the working directory', async () => {
    const dir = await project({ 'a.yaml': 'services: {}\n', 'b.yaml': 'services: {}\n', 'compose.yaml': 'services: {}\n' });
    expect(findComposeFiles(dir, [], { COMPOSE_FILE: 'a.yaml:b.yaml' })).toEqual([join(dir, 'a.yaml'), join(dir, 'b.yaml')]);
    expect(findComposeFiles(dir, [], { COMPOSE_FILE: 'b.yaml;a.yaml', COMPOSE_PATH_SEPARATOR: ';' })).toEqual([join(dir, 'b.yaml'), join(dir, 'a.yaml')]);
    await writeFile(join(dir, '.env'), 'COMPOSE_FILE=b.yaml\n');
    expect(findComposeFiles(dir, [], {})).toEqual([join(dir, 'b.yaml')]);
    expect(findComposeFiles(dir, [], { COMPOSE_FILE: 'a.yaml' })).toEqual([join(dir, 'a.yaml')]);
  });

  it('a missing file is an error naming it', async () => {
    const dir = await project({ 'compose.yaml': 'services: {}\n' });
    expect(() => findComposeFiles(dir, ['compose.yaml', 'nope.yaml'], {})).toThrow(new ComposeError(`open ${join(dir, 'nope.yaml')}: no such file or directory`));
    expect(() => findComposeFiles(dir, [], { COMPOSE_FILE: 'gone.yaml' })).toThrow(/gone\.yaml: no such file/);
    const empty = await project({});
    expect(() => findComposeFiles(empty, [], {})).toThrow(/no configuration file provided/);
  });

  it('honours !reset and !override in a later file', async () => {
    const dir = await project({
      'compose.yaml': 'services:\n  web:\n    image: busybox\n    ports: ["8080:80"]\n    environment: {A: "1", B: "2"}\n    labels: [x=1]\n',
      'compose.override.yaml': 'services:\n  web:\n    ports: !reset []\n    environment: !override\n      C: "${C_VALUE}"\n    labels: [y=2]\n',
    });
    const web = (await toComposeModel(await loadCompose({ cwd: dir, environ: { C_VALUE: 'three' }, ...quiet }))).services.web!;
    expect(web.ports).toEqual([]);
    expect(web.environment).toEqual({ C: 'three' });
    expect(web.labels).toEqual({ x: '1', y: '2' });
  });
});

describe('interpolated strings take the types the schema asks for', () => {
  const yaml = `name: \${NAME}
services:
  web:
    image: busybox
    ports: [{target: "\${TARGET}", published: "\${PORT}"}]
    deploy:
      replicas: "\${REPLICAS}"
      resources: {limits: {cpus: "\${CPUS}"}}
    pids_limit: "\${PIDS}"
    tty: "\${TTY}"
    stdin_open: "\${TTY}"
    healthcheck: {test: ["CMD", "true"], retries: "\${RETRIES}", interval: 2s}
    volumes: [{type: bind, source: /etc, target: /host-etc, read_only: "\${RO}"}]
  job:
    image: busybox
    scale: "\${SCALE}"
networks:
  back: {internal: "\${INTERNAL}"}
`;
  const environ = { NAME: 'typed', TARGET: '80', PORT: '8080', REPLICAS: '1', CPUS: '0.5', PIDS: '64', TTY: 'true', RETRIES: '3', RO: 'TRUE', SCALE: '2', INTERNAL: 'false' };

  it('validates and converts ports, replicas, scale, booleans, retries and limits', async () => {
    const dir = await project({ 'compose.yaml': yaml });
    const loaded = await loadCompose({ cwd: dir, environ, ...quiet });
    expect(loaded.name).toBe('typed');
    const model = await toComposeModel(loaded);
    const web = model.services.web!;
    expect(web.ports).toEqual([{ target: 80, published: 8080, protocol: 'tcp' }]);
    expect(web.replicas).toBe(1);
    expect(web.resources).toEqual({ cpus: '0.5', pids: 64 });
    expect(web.tty).toBe(true);
    expect(web.stdin_open).toBe(true);
    expect(web.healthcheck).toEqual({ test: ['true'], retries: 3, interval_seconds: 2 });
    expect(web.volumes).toEqual([{ type: 'bind', source: '/etc', target: '/host-etc', read_only: true }]);
    expect(model.services.job!.replicas).toBe(2);
    expect(model.networks.back!.internal).toBe(false);
    const plan = await toManifests(model, { namespace: 'ns', pack: fakePack });
    expect(plan.containers.job!.map((c) => c.metadata.name)).toEqual(['typed-job-1', 'typed-job-2']);
    expect(plan.containers.web![0]!.spec).toMatchObject({ ports: [{ containerPort: 80, hostPort: 8080 }], tty: true, stdin: true, resources: { cpus: '0.5', pids: 64 } });
  });

  it('a value that is not of the type is still refused, naming the key', async () => {
    const dir = await project({ 'compose.yaml': yaml });
    const bad = loadCompose({ cwd: dir, environ: { ...environ, REPLICAS: 'two', TTY: 'yes please', PORT: '80.5' }, ...quiet });
    await expect(bad).rejects.toThrow(ComposeError);
    const msg = (await bad.catch((e: Error) => e.message)) as string;
    expect(msg).toContain('services.web.deploy.replicas: must be integer');
    expect(msg).toContain('services.web.tty: must be boolean');
    expect(msg).toContain('services.web.ports[0]');
  });

  it('the top-level name: is part of the schema: a non-string is refused', async () => {
    const dir = await project({ 'compose.yaml': 'name: [a, b]\nservices: {}\n' });
    await expect(loadCompose({ cwd: dir, environ: {}, ...quiet })).rejects.toThrow(/name: must be string/);
  });
});

describe('berth compose config with several -f', () => {
  it('prints the merged model of the files in order', async () => {
    const { config } = await import('./commands.ts');
    const dir = await project({
      'a.yaml': 'name: merged\nservices:\n  web:\n    image: busybox\n    ports: ["8080:80"]\n',
      'b.yaml': 'services:\n  web:\n    image: busybox:1.36\n    ports: ["8081:81"]\n',
    });
    let printed = '';
    expect(await config({ file: [join(dir, 'a.yaml'), join(dir, 'b.yaml')] }, (s) => (printed += s))).toBe(0);
    expect(printed).toMatch(/^name: merged\n/);
    expect(printed).toContain('image: busybox:1.36');
    expect(printed).toMatch(/target: 80\n\s+published: 8080[\s\S]*target: 81\n\s+published: 8081/);
  });
});

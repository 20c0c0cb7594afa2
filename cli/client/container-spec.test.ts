import { describe, expect, it } from 'vitest';
import { FlagError, MAX_PORT_RANGE, toContainer, toContainerPorts, toEnv, toMemoryQuantity, toMount, toMountFlag, toVolumeMount, type RunFlags } from './container-spec.ts';
import { execOptions, toSince } from './containers.ts';
import { cannotRunExitCode, execExitCode, execQueryExtensions } from './streams.ts';

const base = { namespace: 'default', image: 'busybox', args: [] as string[], state: 'Running' as const, environ: { FROM_ENV: 'yes' }, randomSuffix: () => 'abcde' };

describe('toContainer', () => {
  it.each<{ name: string; flags: RunFlags; args?: string[]; want: Record<string, unknown> }>([
    { name: 'no flags: docker run defaults', flags: {}, want: { image: 'busybox', state: 'Running', restartPolicy: 'Never' } },
    { name: 'words after the image replace CMD', flags: {}, args: ['echo', 'hi'], want: { args: ['echo', 'hi'] } },
    { name: '--entrypoint replaces ENTRYPOINT, the words become its args', flags: { entrypoint: 'sh' }, args: ['-c', 'true'], want: { command: ['sh'], args: ['-c', 'true'] } },
    { name: '-e and --env-file, later wins, NAME alone from the environment', flags: { envFiles: [{ path: 'f', text: '# c\nA=1\nB=2\n' }], env: ['B=3', 'FROM_ENV', 'MISSING'] }, want: { env: [{ name: 'A', value: '1' }, { name: 'B', value: '3' }, { name: 'FROM_ENV', value: 'yes' }] } },
    { name: '-p to spec.ports', flags: { publish: ['127.0.0.1:8080:80', '53/udp'] }, want: { ports: [{ containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1' }, { containerPort: 53, protocol: 'UDP' }] } },
    { name: '-v named volume to volumeMounts', flags: { volume: ['data:/data:ro'] }, want: { volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }] } },
    { name: 'host paths of -v and --mount type=bind to bindMounts', flags: { volume: ['/srv/www:/www:ro'], mount: ['type=bind,source=/etc/app,target=/cfg'] }, want: { bindMounts: [{ hostPath: '/srv/www', mountPath: '/www', readOnly: true }, { hostPath: '/etc/app', mountPath: '/cfg' }] } },
    { name: '--network host', flags: { network: 'host' }, want: { networks: [{ name: 'host' }] } },
    { name: 'resources', flags: { memory: '64m', cpus: '0.5', pidsLimit: '32' }, want: { resources: { memory: '64Mi', cpus: '0.5', pids: 32 } } },
    { name: '--restart on-failure, --network, -w, -u, -h, -i, -t, --pull', flags: { restart: 'on-failure', network: 'backend', workdir: '/w', user: '1000', hostname: 'h', interactive: true, tty: true, pull: 'never' }, want: { restartPolicy: 'OnFailure', networks: [{ name: 'backend' }], workingDir: '/w', user: '1000', hostname: 'h', stdin: true, tty: true, imagePullPolicy: 'Never' } },
  ])('maps $name', ({ flags, args, want }) => {
    const c = toContainer(flags, { ...base, args: args ?? [] });
    expect(c.spec).toMatchObject(want);
  });

  it('starts a -t container at the local terminal\'s size (Docker\'s ConsoleSize), and gives none without -t', () => {
    const consoleSize = { width: 120, height: 40 };
    expect(toContainer({ tty: true }, { ...base, consoleSize }).spec.consoleSize).toEqual(consoleSize);
    expect(toContainer({ tty: true }, base).spec).not.toHaveProperty('consoleSize');
    expect(toContainer({ interactive: true }, { ...base, consoleSize }).spec).not.toHaveProperty('consoleSize');
  });

  it('takes --restart on-failure:N as OnFailure with at most N restarts', () => {
    expect(toContainer({ restart: 'on-failure:3' }, base).spec).toMatchObject({ restartPolicy: 'OnFailure', restartMaxRetries: 3 });
    expect(toContainer({ restart: 'on-failure' }, base).spec).not.toHaveProperty('restartMaxRetries');
  });

  it('names the container after the image when --name is absent, and keeps labels', () => {
    const c = toContainer({ label: ['app=web'] }, { ...base, image: '127.0.0.1:5000/team/App:1' });
    expect(c.metadata).toEqual({ name: 'app-abcde', namespace: 'default', labels: { app: 'web' } });
  });

  it.each([
    { name: 'anonymous volumes', flags: { volume: ['/data'] }, msg: /anonymous volumes/ },
    { name: '--rm with a restart policy', flags: { rm: true, restart: 'always' }, msg: /Conflicting options: --restart and --rm/ },
    { name: 'a restart word Docker does not have', flags: { restart: 'on-failure:x' }, msg: /must be no, always, on-failure\[:max-retries\] or unless-stopped/ },
    { name: 'a bad memory value', flags: { memory: 'lots' }, msg: /--memory/ },
    { name: '--network container:x', flags: { network: 'container:web' }, msg: /not supported/ },
    { name: '~ in a host path', flags: { volume: ['~/x:/x'] }, msg: /~ is not expanded/ },
  ])('rejects $name naming the flag', ({ flags, msg }) => {
    expect(() => toContainer(flags as RunFlags, base)).toThrow(FlagError);
    expect(() => toContainer(flags as RunFlags, base)).toThrow(msg);
  });
});

describe('flag values', () => {
  it('parses -p forms', () => {
    expect(toContainerPorts('8080')).toEqual([{ containerPort: 8080 }]);
    expect(toContainerPorts('127.0.0.1::80/tcp')).toEqual([{ containerPort: 80, hostIP: '127.0.0.1', protocol: 'TCP' }]);
    expect(toContainerPorts('[::1]:8080:80/udp')).toEqual([{ containerPort: 80, hostPort: 8080, hostIP: '::1', protocol: 'UDP' }]);
  });

  it('expands -p ranges as Docker does: pairwise, or each container port on a host port of its own', () => {
    expect(toContainerPorts('127.0.0.1:8000-8002:80-82/udp')).toEqual([
      { containerPort: 80, hostPort: 8000, hostIP: '127.0.0.1', protocol: 'UDP' },
      { containerPort: 81, hostPort: 8001, hostIP: '127.0.0.1', protocol: 'UDP' },
      { containerPort: 82, hostPort: 8002, hostIP: '127.0.0.1', protocol: 'UDP' },
    ]);
    expect(toContainerPorts('9000-9001')).toEqual([{ containerPort: 9000 }, { containerPort: 9001 }]);
    expect(toContainerPorts('7000-7000:70')).toEqual([{ containerPort: 70, hostPort: 7000 }]);
  });

  it.each([
    ['8000-8010:80', /-p 8000-8010:80: a host port range for one container port is not supported: name one host port/],
    ['8000-8002:80-81', /the host range has 3 ports, the container range 2/],
    ['90-80', /the range 90-80 ends before it starts/],
    ['0:80', /port 0 is out of range/],
    ['70000', /port 70000 is out of range/],
    [`1-${MAX_PORT_RANGE + 1}`, new RegExp(`more than ${MAX_PORT_RANGE} ports`)],
    ['80:80:80:80', /expected \[hostIP:\]\[hostPort\[-end\]:\]containerPort/],
  ])('refuses -p %s with a message naming it', (v, message) => {
    expect(() => toContainerPorts(v)).toThrow(FlagError);
    expect(() => toContainerPorts(v)).toThrow(message);
  });
  it('turns docker memory units into quantities', () => {
    expect(toMemoryQuantity('1g')).toBe('1Gi');
    expect(toMemoryQuantity('1048576')).toBe(1048576);
  });
  it('refuses relative mount paths', () => expect(() => toVolumeMount('data:rel')).toThrow(/must be absolute/));
  it('reads nocopy (-v NAME:/p:nocopy, --mount volume-nocopy) for volumes only', () => {
    expect(toVolumeMount('data:/d:ro,nocopy')).toEqual({ name: 'data', mountPath: '/d', readOnly: true, noCopy: true });
    expect(toVolumeMount('data:/d')).toEqual({ name: 'data', mountPath: '/d' });
    expect(toMount('type=volume,source=data,target=/d,volume-nocopy')).toEqual({ volume: { name: 'data', mountPath: '/d', noCopy: true } });
    expect(() => toMountFlag('/host:/d:nocopy')).toThrow('-v /host:/d:nocopy: nocopy is for volumes, not host paths');
    expect(() => toMountFlag('data:/d:z')).toThrow('mount option "z" is not supported (ro, rw or nocopy)');
  });
  it('refuses an env entry without a name', () => expect(() => toEnv({ env: ['=x'] }, {})).toThrow(/invalid environment variable/));
  it('reads --since as a duration or a timestamp', () => {
    expect(toSince('1h30m', 0)).toEqual({ sinceSeconds: 5400 });
    expect(toSince('2026-01-01T00:00:00Z', 0)).toEqual({ sinceTime: '2026-01-01T00:00:00.000Z' });
    expect(() => toSince('yesterday', 0)).toThrow(/--since/);
  });
  it('turns exec -u, -e and -w into the exec API options (no command wrapping), takes -d (with -i/-t too), refuses a relative -w', () => {
    expect(execOptions({ env: ['A=1', 'B=x=y', 'FROM_ENV', 'UNSET'], workdir: '/tmp', user: 'nobody:nogroup' }, { FROM_ENV: 'yes' })).toEqual({
      user: 'nobody:nogroup',
      env: ['A=1', 'B=x=y', 'FROM_ENV=yes'],
      workingDir: '/tmp',
    });
    expect(execOptions({}, {})).toEqual({});
    expect(() => execOptions({ workdir: 'tmp' }, {})).toThrow('exec -w tmp: the working directory must be an absolute path');
    expect(execOptions({ detach: true }, {})).toEqual({ detach: true });
    expect(execOptions({ detach: true, tty: true, interactive: true }, {})).toEqual({ detach: true }); // -dit: -i and -t travel as the exec's streams
    expect(execQueryExtensions({ detach: true })).toBe('detach=true');
    expect(() => execOptions({ env: ['=1'] }, {})).toThrow(FlagError);
    expect(execQueryExtensions({ user: '1000:1000', env: ['A=1', 'B=two words&c'], workingDir: '/a b' })).toBe('user=1000%3A1000&env=A%3D1&env=B%3Dtwo%20words%26c&workingDir=%2Fa%20b');
    expect(execQueryExtensions({})).toBe('');
  });
  it('maps exec statuses to exit codes', () => {
    expect(execExitCode({ status: 'Success' })).toBe(0);
    expect(execExitCode({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } })).toBe(3);
    expect(cannotRunExitCode('unable to find user ghost: no matching entries in passwd file')).toBe(126);
    expect(cannotRunExitCode('unable to find group ghosts: no matching entries in group file')).toBe(126);
  });
});

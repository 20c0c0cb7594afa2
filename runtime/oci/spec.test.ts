import { describe, expect, it } from 'vitest';
import type { ContainerConfig, ImageConfig } from '../cri/types.ts';
import { resolvConfContent, hostsFileContent, DEFAULT_NAMESERVERS } from './etc-files.ts';
import { parseCriLogLine } from './cri-log.ts';
import { runcMessage } from './runc.ts';
import { toSignalName } from './signals.ts';
import { buildSpec, cgroupsPathFor, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, resolveUser, toExecProcess, type OciSpec, type SpecOptions } from './spec.ts';

const opts: SpecOptions = {
  id: 'abcdef0123456789'.repeat(4),
  rootfsPath: '/data/containers/x/merged',
  cgroupParent: '/berth',
  etcFiles: { hosts: '/d/hosts', hostname: '/d/hostname', resolvConf: '/d/resolv.conf' },
  passwd: 'root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n',
  group: 'root:x:0:\nwww-data:x:33:\nwheel:x:10:app,www\napp:x:1000:\n',
  nofileHardLimit: 20_000,
};
const image: ImageConfig = { entrypoint: ['/docker-entrypoint.sh'], cmd: ['nginx', '-g', 'daemon off;'], env: ['PATH=/img/bin', 'A=image'], workingDir: '/srv' };
const base: ContainerConfig = { name: 'web', image: 'nginx' };

describe('buildSpec', () => {
  const cases: { name: string; config?: Partial<ContainerConfig>; image?: ImageConfig; opts?: Partial<SpecOptions>; want: (s: OciSpec) => unknown; equals: unknown }[] = [
    { name: 'runs ENTRYPOINT + CMD when the config gives neither', want: (s) => s.process.args, equals: ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;'] },
    { name: 'replaces CMD with args, keeping ENTRYPOINT', config: { args: ['x'] }, want: (s) => s.process.args, equals: ['/docker-entrypoint.sh', 'x'] },
    { name: 'replaces ENTRYPOINT with command and drops CMD', config: { command: ['sh'] }, want: (s) => s.process.args, equals: ['sh'] },
    { name: 'uses command and args together', config: { command: ['sh', '-c'], args: ['echo hi'] }, want: (s) => s.process.args, equals: ['sh', '-c', 'echo hi'] },
    {
      name: 'merges env: image, then config, overriding by name',
      config: { env: [{ name: 'A', value: 'config' }, { name: 'B', value: '1=2' }] },
      want: (s) => s.process.env,
      equals: [`HOSTNAME=${opts.id.slice(0, 12)}`, 'PATH=/img/bin', 'A=config', 'B=1=2'],
    },
    { name: 'adds a default PATH when the image has none', image: { cmd: ['sh'] }, want: (s) => s.process.env.find((e) => e.startsWith('PATH=')), equals: 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    { name: 'sets TERM for a tty', config: { tty: true }, want: (s) => [s.process.terminal, s.process.env.includes('TERM=xterm')], equals: [true, true] },
    { name: 'starts a tty at the console size', config: { tty: true, consoleSize: { width: 132, height: 43 } }, want: (s) => s.process.consoleSize, equals: { height: 43, width: 132 } },
    { name: 'has no console size without a tty', config: { consoleSize: { width: 132, height: 43 } }, want: (s) => s.process.consoleSize, equals: undefined },
    { name: 'uses the image working dir, then the config one', config: { workingDir: '/tmp' }, want: (s) => s.process.cwd, equals: '/tmp' },
    { name: 'defaults the working dir to the image one', want: (s) => s.process.cwd, equals: '/srv' },
    { name: 'runs as root without a user', want: (s) => s.process.user, equals: { uid: 0, gid: 0 } },
    { name: 'resolves a user name to its passwd uid and gid, with supplementary groups', config: { user: 'app' }, want: (s) => s.process.user, equals: { uid: 1000, gid: 1000, additionalGids: [10] } },
    { name: 'resolves user:group names', config: { user: 'www:wheel' }, want: (s) => s.process.user, equals: { uid: 33, gid: 10 } },
    { name: 'takes numeric uid:gid as is', config: { user: '4242:77' }, want: (s) => s.process.user, equals: { uid: 4242, gid: 77 } },
    { name: 'gives an unknown numeric uid gid 0', config: { user: '4242' }, want: (s) => s.process.user, equals: { uid: 4242, gid: 0 } },
    { name: 'uses the config hostname, else the short ID', config: { hostname: 'h1' }, want: (s) => s.hostname, equals: 'h1' },
    { name: 'creates pid, ipc, uts, mount and a new network namespace', want: (s) => s.linux.namespaces, equals: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }] },
    { name: 'joins a network namespace by path', config: { networkNamespace: '/var/run/netns/n1' }, want: (s) => s.linux.namespaces.at(-1), equals: { type: 'network', path: '/var/run/netns/n1' } },
    { name: 'uses the host network without a network namespace', config: { networkNamespace: 'host' }, want: (s) => s.linux.namespaces.map((n) => n.type), equals: ['pid', 'ipc', 'uts', 'mount'] },
    { name: "grants Docker's default capabilities", want: (s) => [...s.process.capabilities.bounding].sort(), equals: [...DEFAULT_CAPABILITIES].sort() },
    { name: "masks Docker's paths", want: (s) => [s.linux.maskedPaths, s.linux.readonlyPaths], equals: [MASKED_PATHS, READONLY_PATHS] },
    { name: 'puts the cgroup under the parent', want: (s) => s.linux.cgroupsPath, equals: `/berth/${opts.id}` },
    {
      name: 'maps memory (swap = limit), cpus to quota/period, and pids',
      config: { resources: { memoryBytes: 32 << 20, cpus: 0.25, pids: 8 } },
      want: (s) => s.linux.resources,
      equals: { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 32 << 20, swap: 32 << 20 }, cpu: { quota: 25_000, period: 100_000 }, pids: { limit: 8 } },
    },
    { name: 'keeps RLIMIT_NOFILE at 1024', want: (s) => s.process.rlimits, equals: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }] },
    { name: 'never asks for more than the host hard limit', opts: { nofileHardLimit: 512 }, want: (s) => s.process.rlimits[0]?.hard, equals: 512 },
    {
      name: 'bind-mounts hosts, hostname and resolv.conf',
      want: (s) => s.mounts.filter((m) => m.destination.startsWith('/etc/')).map((m) => [m.destination, m.source]),
      equals: [['/etc/hosts', '/d/hosts'], ['/etc/hostname', '/d/hostname'], ['/etc/resolv.conf', '/d/resolv.conf']],
    },
    {
      name: 'maps binds (ro, rw) and a sized tmpfs',
      config: {
        mounts: [
          { containerPath: '/a', hostPath: '/h/a', readonly: true },
          { containerPath: '/b', hostPath: '/h/b', type: 'bind' },
          { containerPath: '/t', type: 'tmpfs', sizeBytes: 1024 },
        ],
      },
      want: (s) => s.mounts.slice(-3),
      equals: [
        { destination: '/a', type: 'bind', source: '/h/a', options: ['rbind', 'ro', 'rprivate'] },
        { destination: '/b', type: 'bind', source: '/h/b', options: ['rbind', 'rw', 'rprivate'] },
        { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=1024'] },
      ],
    },
    {
      name: 'gives a tmpfs its mode (octal) and no size option for size 0',
      config: { mounts: [{ containerPath: '/t', type: 'tmpfs', mode: 0o700, sizeBytes: 0 }, { containerPath: '/r', type: 'tmpfs', mode: 0o755, sizeBytes: 65_536, readonly: true }] },
      want: (s) => s.mounts.slice(-2).map((m) => m.options),
      equals: [['nosuid', 'nodev', 'mode=700'], ['nosuid', 'nodev', 'mode=755', 'size=65536', 'ro']],
    },
    { name: 'copies annotations', config: { annotations: { a: 'b' } }, want: (s) => s.annotations, equals: { a: 'b' } },
  ];

  it.each(cases)('$name', ({ config, image: img, opts: o, want, equals }) => {
    expect(want(buildSpec({ ...base, ...config }, img ?? image, { ...opts, ...o }))).toEqual(equals);
  });

  const invalid: { name: string; config: Partial<ContainerConfig>; image?: ImageConfig; message: RegExp }[] = [
    { name: 'no command at all', config: {}, image: {}, message: /no command/ },
    { name: 'a relative working directory', config: { workingDir: 'srv' }, message: /workingDir/ },
    { name: 'an unknown user name', config: { user: 'nobody-here' }, message: /user "nobody-here"/ },
    { name: 'an unknown group name', config: { user: 'app:nogroup' }, message: /group "nogroup"/ },
    { name: 'a pids limit below 8', config: { resources: { pids: 7 } }, message: /pids/ },
    { name: 'a memory limit below 6 MiB', config: { resources: { memoryBytes: 1 << 20 } }, message: /memoryBytes/ },
    { name: 'zero cpus', config: { resources: { cpus: 0 } }, message: /cpus/ },
    { name: 'a relative mount path', config: { mounts: [{ containerPath: 'x', hostPath: '/h' }] }, message: /containerPath/ },
    { name: 'a bind without host path', config: { mounts: [{ containerPath: '/x' }] }, message: /hostPath/ },
    { name: 'a relative network namespace', config: { networkNamespace: 'netns1' }, message: /networkNamespace/ },
    { name: 'an env name with =', config: { env: [{ name: 'A=B', value: '' }] }, message: /env name/ },
    { name: 'a console size of no rows', config: { tty: true, consoleSize: { width: 80, height: 0 } }, message: /terminal size 80x0/ },
    { name: 'a console size wider than a TIOCSWINSZ holds', config: { tty: true, consoleSize: { width: 70_000, height: 24 } }, message: /terminal size 70000x24/ },
  ];

  it.each(invalid)('rejects $name with InvalidArgument', ({ config, image: img, message }) => {
    expect(() => buildSpec({ ...base, ...config }, img ?? image, opts)).toThrow(message);
    try {
      buildSpec({ ...base, ...config }, img ?? image, opts);
    } catch (e) {
      expect((e as { code: string }).code).toBe('InvalidArgument');
    }
  });
});

describe('helpers', () => {
  it.each([
    { name: 'a plain parent', parent: '/berth', want: '/berth/id1' },
    { name: 'a parent with slashes around', parent: 'berth/x/', want: '/berth/x/id1' },
    { name: 'the root', parent: '/', want: '/id1' },
  ])('puts the cgroup of $name at $want', ({ parent, want }) => expect(cgroupsPathFor(parent, 'id1')).toBe(want));

  it.each([
    { name: 'drops systemd-resolved and keeps the rest', host: 'nameserver 127.0.0.53\noptions edns0\nsearch x\n', want: `options edns0\nsearch x\nnameserver ${DEFAULT_NAMESERVERS[0]}\nnameserver ${DEFAULT_NAMESERVERS[1]}\n` },
    { name: 'keeps a reachable nameserver', host: 'nameserver 10.255.255.53\n', want: 'nameserver 10.255.255.53\n' },
    { name: 'falls back to defaults for an empty file', host: '', want: `nameserver ${DEFAULT_NAMESERVERS[0]}\nnameserver ${DEFAULT_NAMESERVERS[1]}\n` },
  ])('resolv.conf: $name', ({ host, want }) => expect(resolvConfContent(host, false)).toBe(want));

  it('keeps the host resolv.conf as is with the host network', () => {
    expect(resolvConfContent('nameserver 127.0.0.53\n', true)).toBe('nameserver 127.0.0.53\n');
  });

  it('writes hosts with localhost, the hostname and extra hosts', () => {
    const text = hostsFileContent({ ...base, extraHosts: [{ hostname: 'db', ip: '10.0.0.9' }] }, 'web-1');
    expect(text.split('\n')).toEqual(expect.arrayContaining(['127.0.0.1\tlocalhost', '127.0.1.1\tweb-1', '10.0.0.9\tdb']));
  });

  it.each([
    { line: '2026-11-28T01:33:22.336945933+00:00 stdout F hi there', want: { timestamp: '2026-11-28T01:33:22.336945933+00:00', stream: 'stdout', partial: false, text: 'hi there' } },
    { line: '2026-11-28T01:33:22.3Z stderr P part', want: { timestamp: '2026-11-28T01:33:22.3Z', stream: 'stderr', partial: true, text: 'part' } },
    { line: '2026-11-28T01:33:22.3Z stdout F', want: { timestamp: '2026-11-28T01:33:22.3Z', stream: 'stdout', partial: false, text: '' } },
    { line: 'garbage', want: undefined },
    { line: '2026 stdin F x', want: undefined },
  ])('parses the CRI log line "$line"', ({ line, want }) => expect(parseCriLogLine(line)).toEqual(want));

  it.each([
    { input: 'TERM', want: 'SIGTERM' },
    { input: 'sigkill', want: 'SIGKILL' },
    { input: '15', want: 'SIGTERM' },
    { input: 'SIGQUIT', want: 'SIGQUIT' },
  ])('normalises the signal $input to $want', ({ input, want }) => expect(toSignalName(input)).toBe(want));

  it('extracts the message from runc logrus output', () => {
    expect(runcMessage('time="2026-11-28T01:32:29Z" level=error msg="container \\"c1\\" does not exist"\n')).toBe('container "c1" does not exist');
  });

  it('resolves supplementary groups only for named users', () => {
    expect(resolveUser('1000', opts.passwd!, opts.group!)).toEqual({ uid: 1000, gid: 1000, additionalGids: [10] });
    expect(resolveUser('', '', '')).toEqual({ uid: 0, gid: 0 });
  });
});

describe('toExecProcess', () => {
  const base = buildSpec({ name: 'x', image: 'busybox', env: [{ name: 'A', value: '1' }], user: '1000' }, { cmd: ['sleep', '1'] }, {
    id: 'x',
    rootfsPath: '/r',
    cgroupParent: '/berth',
    etcFiles: { hosts: '/h', hostname: '/n', resolvConf: '/c' },
    passwd: 'app:x:1000:1000::/home/app:/bin/sh\n',
    group: '',
  }).process;

  it.each([
    { name: 'keeps capabilities, rlimits, user and cwd, and adds TERM for a terminal', opts: { args: ['sh'], terminal: true }, want: { terminal: true, user: base.user, cwd: base.cwd, capabilities: base.capabilities, rlimits: base.rlimits }, env: ['A=1', 'TERM=xterm'] },
    { name: 'overrides env by name, cwd and user', opts: { args: ['id'], terminal: false, env: [{ name: 'A', value: '2' }], cwd: '/tmp', user: { uid: 0, gid: 0 } }, want: { terminal: false, cwd: '/tmp', user: { uid: 0, gid: 0 } }, env: ['A=2'] },
  ])('$name', ({ opts, want, env }) => {
    const p = toExecProcess(base, opts);
    expect(p).toMatchObject({ ...want, args: opts.args });
    for (const e of env) expect(p.env).toContain(e);
    if (!opts.terminal) expect(p.env.some((e) => e.startsWith('TERM='))).toBe(false);
  });

  it('sets the console size only for a terminal', () => {
    expect(toExecProcess(base, { args: ['sh'], terminal: true, consoleSize: { width: 132, height: 43 } }).consoleSize).toEqual({ height: 43, width: 132 });
    expect(toExecProcess(base, { args: ['sh'], terminal: false, consoleSize: { width: 132, height: 43 } })).not.toHaveProperty('consoleSize');
    expect(toExecProcess({ ...base, consoleSize: { height: 1, width: 1 } }, { args: ['sh'], terminal: true })).not.toHaveProperty('consoleSize');
  });

  it('rejects an empty command', () => {
    expect(() => toExecProcess(base, { args: [], terminal: true })).toThrow('exec needs a command');
  });
});

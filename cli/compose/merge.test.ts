import { describe, expect, it } from 'vitest';
import { Tagged } from './interpolate.ts';
import { mergeComposeDocs, portKey, volumeKey } from './merge.ts';

const svc = (web: Record<string, unknown>) => ({ services: { web } });
const webOf = (...docs: Record<string, unknown>[]) => (mergeComposeDocs(docs).services as Record<string, Record<string, unknown>>).web;

describe('mergeComposeDocs (the Compose specification merge rules)', () => {
  const cases: { name: string; base: Record<string, unknown>; over: Record<string, unknown>; want: Record<string, unknown> }[] = [
    {
      name: 'later scalars replace earlier ones; keys only in one file are kept',
      base: { image: 'busybox:1', user: 'nobody', restart: 'no' },
      over: { image: 'busybox:2', restart: 'always' },
      want: { image: 'busybox:2', user: 'nobody', restart: 'always' },
    },
    {
      name: 'command and entrypoint are replaced, not appended, whatever their form',
      base: { command: ['sh', '-c', 'echo a'], entrypoint: ['/bin/sh'] },
      over: { command: 'echo b', entrypoint: ['/init', '--'] },
      want: { command: 'echo b', entrypoint: ['/init', '--'] },
    },
    {
      name: 'environment merges by name across the list and mapping forms',
      base: { environment: ['A=1', 'B=2', 'FROM_SHELL', 'D=4'] },
      over: { environment: { B: '3', C: 4, D: null } },
      want: { environment: { A: '1', B: '3', FROM_SHELL: null, C: 4, D: null } },
    },
    {
      name: 'labels and build args merge by name; build: DIR is build: {context: DIR}',
      base: { labels: { a: '1', b: '2' }, build: './app' },
      over: { labels: ['b=3'], build: { dockerfile: 'Dockerfile.dev', args: ['X=1'] } },
      want: { labels: { a: '1', b: '3' }, build: { context: './app', dockerfile: 'Dockerfile.dev', args: ['X=1'] } },
    },
    {
      name: 'ports append; an entry with the same host IP, published port, target and protocol replaces the earlier one',
      base: { ports: ['8080:80', '127.0.0.1:53:53/udp', 9000] },
      over: { ports: [{ target: 80, published: '8080', protocol: 'tcp', host_ip: '' }, '8080:80/udp', '9000'] },
      want: { ports: [{ target: 80, published: '8080', protocol: 'tcp', host_ip: '' }, '127.0.0.1:53:53/udp', '9000', '8080:80/udp'] },
    },
    {
      name: 'volumes append; a mount of the same target replaces the earlier one',
      base: { volumes: ['data:/data', './a:/a:ro'] },
      over: { volumes: [{ type: 'bind', source: './b', target: '/a' }, 'logs:/logs'] },
      want: { volumes: ['data:/data', { type: 'bind', source: './b', target: '/a' }, 'logs:/logs'] },
    },
    {
      name: 'depends_on and networks merge by name, lists meaning the defaults',
      base: { depends_on: ['db', 'cache'], networks: { front: { aliases: ['www'] } } },
      over: { depends_on: { db: { condition: 'service_healthy' } }, networks: ['front', 'back'] },
      want: { depends_on: { db: { condition: 'service_healthy' }, cache: { condition: 'service_started' } }, networks: { front: { aliases: ['www'] }, back: null } },
    },
    {
      name: 'healthcheck merges its keys but replaces its test',
      base: { healthcheck: { test: ['CMD', 'a', 'b'], interval: '5s' } },
      over: { healthcheck: { test: ['CMD-SHELL', 'c'], retries: 3 } },
      want: { healthcheck: { test: ['CMD-SHELL', 'c'], interval: '5s', retries: 3 } },
    },
    {
      name: 'env_file and tmpfs append only what is new; other lists append',
      base: { env_file: 'a.env', tmpfs: ['/run'], cap_add: ['A'] },
      over: { env_file: ['a.env', { path: 'b.env', required: false }], tmpfs: '/tmp', cap_add: ['B'] },
      want: { env_file: ['a.env', { path: 'b.env', required: false }], tmpfs: ['/run', '/tmp'], cap_add: ['A', 'B'] },
    },
    {
      name: 'an empty (null) key adds nothing',
      base: { environment: { A: '1' }, ports: ['80'] },
      over: { environment: null, ports: null },
      want: { environment: { A: '1' }, ports: ['80'] },
    },
    {
      name: '!reset drops a value and !override replaces it without merging',
      base: { ports: ['8080:80'], environment: { A: '1', B: '2' }, labels: { x: '1' } },
      over: { ports: new Tagged('!reset', null), environment: new Tagged('!override', { C: '3' }), labels: { y: '2' } },
      want: { environment: { C: '3' }, labels: { x: '1', y: '2' } },
    },
  ];
  it.each(cases)('$name', ({ base, over, want }) => {
    expect(webOf(svc({ image: 'busybox', ...base }), svc(over))).toEqual({ image: 'busybox', ...want });
  });

  it('merges services, networks and volumes by key and keeps the last name:', () => {
    const merged = mergeComposeDocs([
      { name: 'one', services: { web: { image: 'a' } }, networks: { n1: { internal: true } }, volumes: { v1: {} } },
      { name: 'two', services: { db: { image: 'b' } }, networks: { n1: { labels: ['k=v'] }, n2: {} }, volumes: { v2: { external: true } } },
    ]);
    expect(merged).toEqual({
      name: 'two',
      services: { web: { image: 'a' }, db: { image: 'b' } },
      networks: { n1: { internal: true, labels: ['k=v'] }, n2: {} },
      volumes: { v1: {}, v2: { external: true } },
    });
  });

  it('resolves the markers of a single file and of values with nothing to merge into', () => {
    expect(mergeComposeDocs([svc({ image: 'a', ports: new Tagged('!reset', null), command: new Tagged('!override', ['x']) })])).toEqual(svc({ image: 'a', command: ['x'] }));
    expect(webOf(svc({ image: 'a' }), svc({ environment: new Tagged('!override', ['A=1']) }))).toEqual({ image: 'a', environment: ['A=1'] });
  });

  it('does not mutate its inputs', () => {
    const base = svc({ image: 'a', environment: { A: '1' }, ports: ['80'] });
    const copy = structuredClone(base);
    mergeComposeDocs([base, svc({ environment: { B: '2' }, ports: ['81'] })]);
    expect(base).toEqual(copy);
  });
});

describe('uniqueness keys', () => {
  it('a port is keyed by host IP, published port, target and protocol, in either syntax', () => {
    expect(portKey('127.0.0.1:8080:80')).toBe(portKey({ host_ip: '127.0.0.1', published: 8080, target: 80 }));
    expect(portKey('80')).toBe(portKey(80));
    expect(portKey('8080:80/udp')).not.toBe(portKey('8080:80'));
    expect(portKey('[::1]:53:53/UDP')).toBe('::1|53|53|udp');
  });
  it('a mount is keyed by its target', () => {
    expect(volumeKey('data:/data:ro')).toBe('/data');
    expect(volumeKey({ type: 'volume', source: 'x', target: '/data' })).toBe('/data');
    expect(volumeKey('/anon')).toBe('/anon');
  });
});

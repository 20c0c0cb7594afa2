import { describe, expect, it } from 'vitest';
import type { Container } from '../framework/index.ts';
import { InvalidSpecError, toContainerConfig, unimplementedFields } from './container-config.ts';
import { specHash } from './labels.ts';

const container = (spec: Partial<Container['spec']>, name = 'web'): Container => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Container',
  metadata: { name, namespace: 'default', uid: 'u-1', generation: 3 },
  spec: { image: 'busybox', ...spec },
});
const run = { nodeName: 'n1', restartCount: 2, backoffStep: 1 };

describe('toContainerConfig', () => {
  it('maps the spec to the runtime config with berth labels', () => {
    const cfg = toContainerConfig(
      container({
        command: ['sh', '-c'],
        args: ['echo hi'],
        env: [{ name: 'A', value: '1' }, { name: 'EMPTY' }],
        workingDir: '/tmp',
        user: '1000:1000',
        tty: true,
        stopSignal: 'SIGINT',
        resources: { memory: '64Mi', cpus: '500m', pids: 20 },
        tmpfs: [{ mountPath: '/run', sizeBytes: 1024 }],
      }),
      run,
    );
    expect(cfg).toMatchObject({
      name: 'default_web_3',
      image: 'busybox',
      command: ['sh', '-c'],
      args: ['echo hi'],
      env: [{ name: 'A', value: '1' }, { name: 'EMPTY', value: '' }],
      workingDir: '/tmp',
      user: '1000:1000',
      hostname: 'web',
      tty: true,
      stopSignal: 'SIGINT',
      resources: { memoryBytes: 64 * 2 ** 20, cpus: 0.5, pids: 20 },
      mounts: [{ containerPath: '/run', type: 'tmpfs', sizeBytes: 1024 }],
      labels: {
        'berth.dev/namespace': 'default',
        'berth.dev/name': 'web',
        'berth.dev/uid': 'u-1',
        'berth.dev/generation': '3',
        'berth.dev/node': 'n1',
        'berth.dev/restart-count': '2',
        'berth.dev/backoff-step': '1',
      },
    });
    expect(cfg.stdin).toBeUndefined();
  });

  it('passes the console size of a tty, and none without one', () => {
    expect(toContainerConfig(container({ tty: true, consoleSize: { width: 100, height: 30 } }), run).consoleSize).toEqual({ width: 100, height: 30 });
    expect(toContainerConfig(container({ consoleSize: { width: 100, height: 30 } }), run)).not.toHaveProperty('consoleSize');
  });

  it('uses spec.hostname over the name, and cuts long names to 63 characters', () => {
    expect(toContainerConfig(container({ hostname: 'box' }), run).hostname).toBe('box');
    expect(toContainerConfig(container({}, 'a'.repeat(80)), run).hostname).toBe('a'.repeat(63));
  });

  it('accepts a memory limit given as a number of bytes', () => {
    expect(toContainerConfig(container({ resources: { memory: 1_000_000 } }), run).resources).toEqual({ memoryBytes: 1_000_000 });
  });

  it('maps resolved volume mounts, bind mounts and tmpfs (size and mode), in that order', () => {
    const c = container({ bindMounts: [{ hostPath: '/srv/www', mountPath: '/www', readOnly: true }], tmpfs: [{ mountPath: '/t', sizeBytes: 1_048_576, mode: 0o700 }] });
    const volumeMounts = [{ containerPath: '/data', hostPath: '/var/lib/berth/volumes/default/v/_data', type: 'bind' as const }];
    expect(toContainerConfig(c, { ...run, volumeMounts }).mounts).toEqual([
      volumeMounts[0],
      { containerPath: '/www', hostPath: '/srv/www', type: 'bind', readonly: true },
      { containerPath: '/t', type: 'tmpfs', sizeBytes: 1_048_576, mode: 0o700 },
    ]);
  });

  it.each([
    { name: 'an absolute subPath', subPath: '/etc' },
    { name: 'a subPath with ..', subPath: 'a/../../x' },
  ])('rejects $name with InvalidSpecError naming the mount', ({ subPath }) => {
    const c = container({ volumeMounts: [{ name: 'v', mountPath: '/data', subPath }] });
    expect(() => toContainerConfig(c, run)).toThrow('spec.volumeMounts[0].subPath');
  });

  it.each([
    { name: 'memory', resources: { memory: 'lots' }, field: 'spec.resources.memory' },
    { name: 'cpus', resources: { cpus: 'fast' }, field: 'spec.resources.cpus' },
  ])('rejects a malformed $name quantity with InvalidSpecError naming the field', ({ resources, field }) => {
    expect(() => toContainerConfig(container({ resources }), run)).toThrow(InvalidSpecError);
    expect(() => toContainerConfig(container({ resources }), run)).toThrow(field);
  });
});

describe('specHash', () => {
  it('ignores state, restartPolicy, stopGracePeriodSeconds, imagePullPolicy, nodeName and key order', () => {
    const a = specHash({ image: 'busybox', command: ['a'], state: 'Running', restartPolicy: 'Always' });
    expect(specHash({ command: ['a'], image: 'busybox', state: 'Paused', restartPolicy: 'Never', stopGracePeriodSeconds: 3, imagePullPolicy: 'Never', nodeName: 'x', consoleSize: { width: 100, height: 30 } })).toBe(a);
  });
  it('changes with what goes into the runtime container', () => {
    expect(specHash({ image: 'busybox', command: ['a'] })).not.toBe(specHash({ image: 'busybox', command: ['b'] }));
    expect(specHash({ image: 'busybox', env: [{ name: 'A', value: '1' }] })).not.toBe(specHash({ image: 'busybox', env: [{ name: 'A', value: '2' }] }));
  });
});

describe('unimplementedFields', () => {
  it('names fields accepted but not acted on yet', () => {
    expect(unimplementedFields({ image: 'x', ports: [{ containerPort: 80 }], healthcheck: { exec: ['true'] }, tmpfs: [{ mountPath: '/t', mode: 1023 }] })).toEqual([
      'spec.ports',
      'spec.healthcheck',
    ]);
    expect(unimplementedFields({ image: 'x', ports: [], tmpfs: [{ mountPath: '/t' }] })).toEqual([]);
  });
});

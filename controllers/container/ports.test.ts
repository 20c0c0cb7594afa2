import { describe, expect, it } from 'vitest';
import type { ContainerStatus as ApiContainerStatus } from '../../api/types/index.ts';
import { RuntimeError } from '../../runtime/cri/index.ts';
import type { Container } from '../framework/index.ts';
import { CONDITION_PORT_CONFLICT, ensureContainerPorts, PORT_CONFLICT_RETRY_MS, releaseContainerPorts, withPortsStatus, type PortsOutcome } from './ports.ts';
import { FakePortService } from './testing/fake-port-service.ts';

const container = (name: string, ports: Container['spec']['ports']): Container => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Container',
  metadata: { name, namespace: 'default', uid: `u-${name}`, generation: 2 },
  spec: { image: 'busybox', ...(ports ? { ports } : {}) },
});
const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('ensureContainerPorts', () => {
  const cases: {
    name: string;
    setup?: (svc: FakePortService) => Promise<void> | void;
    ports: Container['spec']['ports'];
    ip?: string;
    want: PortsOutcome;
    wantPublished: string[];
  }[] = [
    {
      name: 'publishes the ports and reports them with PortConflict=False',
      ports: [{ containerPort: 80, hostPort: 5141 }, { containerPort: 53, protocol: 'UDP', hostIP: '0.0.0.0' }],
      ip: '10.89.0.5',
      want: {
        ready: true,
        forwarding: 'nftables',
        ports: [
          { containerPort: 80, hostPort: 5141, hostIP: '127.0.0.1', protocol: 'TCP' },
          { containerPort: 53, hostPort: 40000, hostIP: '0.0.0.0', protocol: 'UDP' },
        ],
        condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'Published', message: 'published 127.0.0.1:5141->80/TCP, 0.0.0.0:40000->53/UDP via nftables' },
      },
      wantPublished: ['default/web'],
    },
    {
      name: 'reports a port held by another container as PortConflict=True naming it, and does not let the container start',
      setup: async (svc) => void (await svc.publish('default/db', { containerIp: '10.89.0.9', ports: [{ containerPort: 5432, hostPort: 5141 }] })),
      ports: [{ containerPort: 80, hostPort: 5141 }],
      ip: '10.89.0.5',
      want: {
        ready: false,
        requeueAfterMs: PORT_CONFLICT_RETRY_MS,
        condition: { type: CONDITION_PORT_CONFLICT, status: 'True', reason: 'HostPortInUse', message: 'host port 127.0.0.1:5141/TCP is already in use by default/db' },
      },
      wantPublished: ['default/db'],
    },
    {
      name: 'reports a port held by a host process as PortConflict=True naming another process',
      setup: (svc) => svc.holdByOtherProcess(8080, '0.0.0.0'),
      ports: [{ containerPort: 80, hostPort: 8080 }],
      ip: '10.89.0.5',
      want: {
        ready: false,
        requeueAfterMs: PORT_CONFLICT_RETRY_MS,
        condition: { type: CONDITION_PORT_CONFLICT, status: 'True', reason: 'HostPortInUse', message: 'host port 127.0.0.1:8080/TCP is already in use by another process' },
      },
      wantPublished: [],
    },
    {
      name: 'keeps reporting what is still published when a changed spec conflicts',
      setup: async (svc) => {
        await svc.publish('default/web', { containerIp: '10.89.0.5', ports: [{ containerPort: 80, hostPort: 5142 }] });
        svc.holdByOtherProcess(5143);
      },
      ports: [{ containerPort: 80, hostPort: 5143 }],
      ip: '10.89.0.5',
      want: {
        ready: false,
        requeueAfterMs: PORT_CONFLICT_RETRY_MS,
        ports: [{ containerPort: 80, hostPort: 5142, hostIP: '127.0.0.1', protocol: 'TCP' }],
        condition: { type: CONDITION_PORT_CONFLICT, status: 'True', reason: 'HostPortInUse', message: 'host port 127.0.0.1:5143/TCP is already in use by another process' },
      },
      wantPublished: ['default/web'],
    },
    {
      name: 'marks a port that cannot be published as written as invalid',
      ports: [{ containerPort: 80, hostIP: '::1' }],
      ip: '10.89.0.5',
      want: { ready: false, invalid: true, condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'InvalidPort', message: 'hostIP ::1 is not an IPv4 address' } },
      wantPublished: [],
    },
    {
      name: 'does not publish without an address (network host or none) and unpublishes what was',
      setup: async (svc) => void (await svc.publish('default/web', { containerIp: '10.89.0.5', ports: [{ containerPort: 80 }] })),
      ports: [{ containerPort: 80 }],
      want: { ready: true, condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'NotPublished', message: 'ports are not published: the container has no address (network host or none)' } },
      wantPublished: [],
    },
    {
      name: 'unpublishes when the spec no longer has ports and reports no condition',
      setup: async (svc) => void (await svc.publish('default/web', { containerIp: '10.89.0.5', ports: [{ containerPort: 80 }] })),
      ports: undefined,
      ip: '10.89.0.5',
      want: { ready: true },
      wantPublished: [],
    },
  ];

  it.each(cases)('$name', async ({ setup, ports, ip, want, wantPublished }) => {
    const svc = new FakePortService();
    await setup?.(svc);

    const got = await ensureContainerPorts(container('web', ports), ip, svc);

    expect(got).toEqual(want);
    expect([...svc.publications.keys()]).toEqual(wantPublished);
  });

  it('keeps a picked host port when the container moves to a new address', async () => {
    const svc = new FakePortService();
    const c = container('web', [{ containerPort: 80 }]);
    const first = await ensureContainerPorts(c, '10.89.0.5', svc);
    const moved = await ensureContainerPorts(c, '10.89.0.7', svc);
    expect(moved.ports).toEqual(first.ports);
    expect(svc.publications.get('default/web')?.containerIp).toBe('10.89.0.7');
  });

  it('rejects with failures worth retrying', async () => {
    const svc = new FakePortService();
    svc.injectError('publish', new RuntimeError('Internal', 'nft exited with 1'));
    await expect(ensureContainerPorts(container('web', [{ containerPort: 80 }]), '10.89.0.5', svc)).rejects.toThrow('nft exited with 1');
  });

  it('releases the ports of a container, idempotently', async () => {
    const svc = new FakePortService();
    await ensureContainerPorts(container('web', [{ containerPort: 80 }]), '10.89.0.5', svc);
    await releaseContainerPorts('default', 'web', svc);
    await releaseContainerPorts('default', 'web', svc);
    expect(svc.publications.size).toBe(0);
  });
});

describe('withPortsStatus', () => {
  const base: ApiContainerStatus = {
    phase: 'Running',
    ports: [{ containerPort: 80, hostPort: 1, hostIP: '127.0.0.1', protocol: 'TCP' }],
    conditions: [
      { type: 'Ready', status: 'True', reason: 'Running', message: '', lastTransitionTime: '2025-12-31T00:00:00Z' },
      { type: CONDITION_PORT_CONFLICT, status: 'True', reason: 'HostPortInUse', message: 'x', lastTransitionTime: '2025-12-31T00:00:00Z' },
    ],
  };
  const cases: { name: string; outcome: PortsOutcome; want: ApiContainerStatus }[] = [
    {
      name: 'sets status.ports and flips the condition with a new transition time',
      outcome: { ready: true, ports: [{ containerPort: 80, hostPort: 5141, hostIP: '127.0.0.1', protocol: 'TCP' }], condition: { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'Published', message: 'ok' } },
      want: {
        phase: 'Running',
        ports: [{ containerPort: 80, hostPort: 5141, hostIP: '127.0.0.1', protocol: 'TCP' }],
        conditions: [base.conditions![0]!, { type: CONDITION_PORT_CONFLICT, status: 'False', reason: 'Published', message: 'ok', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' }],
      },
    },
    {
      name: 'removes status.ports and the condition when the container has no ports',
      outcome: { ready: true },
      want: { phase: 'Running', conditions: [base.conditions![0]!] },
    },
  ];
  it.each(cases)('$name', ({ outcome, want }) => {
    expect(withPortsStatus(base, outcome, 2, NOW)).toEqual(want);
  });
});

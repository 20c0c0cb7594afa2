/**
 * `FakePortService`: an in-memory `PortService` for controller tests, with the real
 * contract: all-or-nothing publish, conflicts between keys and with ports marked as held
 * by another process (`holdByOtherProcess`), picked ports from 40000 up that a key keeps
 * while it publishes the same port again, idempotent unpublish.
 */
import { RuntimeError, type CallOptions } from '../../../runtime/cri/index.ts';
import {
  PORT_OWNER_OTHER_PROCESS,
  PortConflictError,
  type PortForwarding,
  type PortPublication,
  type PortService,
  type PublishedPort,
  type PublishRequest,
} from '../../../runtime/cri/port-service.ts';

const overlaps = (a: PublishedPort, b: PublishedPort): boolean =>
  a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIP === b.hostIP || a.hostIP === '0.0.0.0' || b.hostIP === '0.0.0.0');

/** See the module comment. `calls` records `method key` in order. */
export class FakePortService implements PortService {
  readonly calls: string[] = [];
  readonly publications = new Map<string, PortPublication & { picked: boolean[] }>();
  private readonly otherProcess: PublishedPort[] = [];
  private nextPort = 40_000;
  private injected: { method: keyof PortService; err: Error } | undefined;

  constructor(readonly forwarding: PortForwarding = 'nftables') {}

  /** Marks `hostIP:hostPort/protocol` as held by a process that is not a container. */
  holdByOtherProcess(hostPort: number, hostIP = '127.0.0.1', protocol: 'TCP' | 'UDP' = 'TCP'): void {
    this.otherProcess.push({ containerPort: 0, hostPort, hostIP, protocol });
  }

  /** The next call of `method` rejects with `err`. */
  injectError(method: keyof PortService, err: Error): void {
    this.injected = { method, err };
  }

  async publish(key: string, req: PublishRequest, _opts?: CallOptions): Promise<PortPublication> {
    this.calls.push(`publish ${key}`);
    this.throwInjected('publish');
    const old = this.publications.get(key);
    const ports: PublishedPort[] = [];
    const picked: boolean[] = [];
    for (const m of req.ports) {
      if (!Number.isInteger(m.containerPort) || m.containerPort < 1 || m.containerPort > 65535) throw new RuntimeError('InvalidArgument', `containerPort ${m.containerPort} is not in 1–65535`);
      const hostIP = m.hostIP ?? '127.0.0.1';
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(hostIP)) throw new RuntimeError('InvalidArgument', `hostIP ${hostIP} is not an IPv4 address`);
      const protocol = m.protocol ?? 'TCP';
      const kept = m.hostPort ? undefined : old?.ports.find((p, i) => old.picked[i] && p.containerPort === m.containerPort && p.protocol === protocol && p.hostIP === hostIP);
      const port = { containerPort: m.containerPort, hostIP, protocol, hostPort: m.hostPort || kept?.hostPort || this.nextPort++ };
      for (const [other, p] of this.publications) {
        if (other !== key && p.ports.some((q) => overlaps(q, port))) throw new PortConflictError(port, other);
      }
      if (this.otherProcess.some((q) => overlaps(q, port))) throw new PortConflictError(port, PORT_OWNER_OTHER_PROCESS);
      ports.push(port);
      picked.push(!m.hostPort);
    }
    const pub = { key, containerIp: req.containerIp, ports, forwarding: this.forwarding };
    this.publications.set(key, { ...pub, picked });
    return pub;
  }

  async unpublish(key: string, _opts?: CallOptions): Promise<void> {
    this.calls.push(`unpublish ${key}`);
    this.throwInjected('unpublish');
    this.publications.delete(key);
  }

  async list(_opts?: CallOptions): Promise<PortPublication[]> {
    this.calls.push('list');
    this.throwInjected('list');
    return [...this.publications.values()].map(({ picked: _picked, ...p }) => p);
  }

  private throwInjected(method: keyof PortService): void {
    if (this.injected?.method !== method) return;
    const { err } = this.injected;
    this.injected = undefined;
    throw err;
  }
}

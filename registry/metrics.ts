/**
 * Prometheus metrics of the registry, registered on the server's registry (so they
 * appear at the server's `/metrics`).
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** Routes, as metric label values. */
export type RegistryRoute =
  | 'base' | 'token' | 'catalog' | 'tags' | 'manifest' | 'blob' | 'upload' | 'referrers' | 'unknown';

/** Latency buckets: small requests in milliseconds up to large blobs in minutes. */
const DURATION_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The registry's metrics; one instance per prom-client registry. */
export class RegistryMetrics {
  private readonly requests: Counter<'method' | 'route' | 'code'>;
  private readonly duration: Histogram<'method' | 'route'>;
  private readonly sent: Counter<'route'>;
  private readonly received: Counter<'route'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'berth_registry_requests_total', help: 'Registry requests by method, route and HTTP status code.',
      labelNames: ['method', 'route', 'code'], registers: [registry],
    });
    this.duration = new Histogram({
      name: 'berth_registry_request_duration_seconds', help: 'Registry request latency by method and route, until the response ends.',
      labelNames: ['method', 'route'], buckets: DURATION_BUCKETS_SECONDS, registers: [registry],
    });
    this.sent = new Counter({
      name: 'berth_registry_sent_bytes_total', help: 'Blob and manifest bytes served by the registry, by route.',
      labelNames: ['route'], registers: [registry],
    });
    this.received = new Counter({
      name: 'berth_registry_received_bytes_total', help: 'Blob and manifest bytes received by the registry, by route.',
      labelNames: ['route'], registers: [registry],
    });
  }

  /** Counts one finished request. */
  observeRequest(method: string, route: RegistryRoute, code: number, seconds: number): void {
    this.requests.inc({ method, route, code: String(code) });
    this.duration.observe({ method, route }, seconds);
  }

  observeSent(route: RegistryRoute, bytes: number): void {
    this.sent.inc({ route }, bytes);
  }

  observeReceived(route: RegistryRoute, bytes: number): void {
    this.received.inc({ route }, bytes);
  }
}

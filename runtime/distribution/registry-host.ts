/**
 * Where a reference's domain is served: Docker Hub's `docker.io` is the API
 * host `registry-1.docker.io`; every other domain is its own host. HTTPS unless
 * the registry configuration lists the domain as insecure.
 */
import type { RegistryConfig } from '../cri/types.ts';

/** The API host of Docker Hub, which references spell `docker.io`. */
export const DOCKER_HUB_HOST = 'registry-1.docker.io';
const DOCKER_HUB_DOMAINS = new Set(['docker.io', 'index.docker.io', DOCKER_HUB_HOST]);

/** A registry's base URL. */
export interface RegistryEndpoint {
  /** The domain as references spell it (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string;
  /** `host[:port]` actually contacted. */
  readonly host: string;
  readonly scheme: 'https' | 'http';
  /** `scheme://host`, no trailing slash. */
  readonly baseUrl: string;
}

/** `[::1]:5000` → `[::1]`, `a.b:5000` → `a.b`, `a.b` → `a.b`. */
export function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const colon = hostPort.lastIndexOf(':');
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

/**
 * True when `domain` is listed in `config.insecureRegistries`: the same
 * `host:port`, or an entry without port naming its host.
 */
export function isInsecureRegistry(domain: string, config: RegistryConfig = {}): boolean {
  const host = DOCKER_HUB_DOMAINS.has(domain) ? DOCKER_HUB_HOST : domain;
  return (config.insecureRegistries ?? []).some((entry) => {
    const e = entry.trim().toLowerCase();
    if (e === '') return false;
    for (const h of [domain.toLowerCase(), host.toLowerCase()]) {
      if (e === h) return true;
      if (hostnameOf(e) === e && hostnameOf(h) === e) return true;
    }
    return false;
  });
}

/** The endpoint serving `domain` (a reference's domain, normalised). */
export function registryEndpoint(domain: string, config: RegistryConfig = {}): RegistryEndpoint {
  const host = DOCKER_HUB_DOMAINS.has(domain) ? DOCKER_HUB_HOST : domain;
  const scheme = isInsecureRegistry(domain, config) ? 'http' : 'https';
  return { domain, host, scheme, baseUrl: `${scheme}://${host}` };
}

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerConfig } from '../cri/types.ts';
import type { EtcFilePaths } from './spec.ts';

/** Docker's fallback when the host has no nameserver a container can reach. */
export const DEFAULT_NAMESERVERS: readonly string[] = ['8.8.8.8', '8.8.4.4'];

/**
 * The container's /etc/hosts: localhost, the container's own hostname, then
 * `extraHosts`. With the host's network it starts from the host's file instead.
 */
export function hostsFileContent(config: ContainerConfig, hostname: string, hostHosts = ''): string {
  const lines =
    config.networkNamespace === 'host'
      ? [hostHosts.trimEnd()]
      : [
          '127.0.0.1\tlocalhost',
          '::1\tlocalhost ip6-localhost ip6-loopback',
          'fe00::0\tip6-localnet',
          'ff00::0\tip6-mcastprefix',
          'ff02::1\tip6-allnodes',
          'ff02::2\tip6-allrouters',
          `127.0.1.1\t${hostname}`,
        ];
  for (const h of config.extraHosts ?? []) lines.push(`${h.ip}\t${h.hostname}`);
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

/**
 * The container's /etc/resolv.conf: the host's, without loopback nameservers
 * (127.0.0.53 is systemd-resolved, unreachable from a container's own network
 * namespace); if none is left, {@link DEFAULT_NAMESERVERS}. With the host's
 * network the host's file is kept as is.
 */
export function resolvConfContent(hostResolvConf: string, hostNetwork: boolean): string {
  if (hostNetwork && hostResolvConf.trim()) return hostResolvConf.endsWith('\n') ? hostResolvConf : `${hostResolvConf}\n`;
  const isLoopback = (l: string): boolean => /^\s*nameserver\s+(127\.|::1\s*$|::1$)/.test(l);
  const kept = hostResolvConf.split('\n').filter((l) => l.trim() !== '' && !isLoopback(l));
  if (!kept.some((l) => /^\s*nameserver\s/.test(l))) kept.push(...DEFAULT_NAMESERVERS.map((ns) => `nameserver ${ns}`));
  return `${kept.join('\n')}\n`;
}

/**
 * Writes hosts, hostname and resolv.conf for one container into `dir` (its
 * state directory) and returns their paths, for bind mounts over /etc.
 */
export async function writeEtcFiles(dir: string, config: ContainerConfig, hostname: string): Promise<EtcFilePaths> {
  const read = (p: string): Promise<string> => readFile(p, 'utf8').catch(() => '');
  const hostNetwork = config.networkNamespace === 'host';
  const paths: EtcFilePaths = {
    hosts: join(dir, 'hosts'),
    hostname: join(dir, 'hostname'),
    resolvConf: join(dir, 'resolv.conf'),
  };
  await Promise.all([
    writeFile(paths.hosts, hostsFileContent(config, hostname, hostNetwork ? await read('/etc/hosts') : '')),
    writeFile(paths.hostname, `${hostname}\n`),
    writeFile(
      paths.resolvConf,
      !hostNetwork && config.dnsServers?.length
        ? `${config.dnsServers.map((ns) => `nameserver ${ns}`).join('\n')}\n`
        : resolvConfContent(await read('/etc/resolv.conf'), hostNetwork),
    ),
  ]);
  return paths;
}

/**
 * `ApiClient`s of the daemons (`berth server`, `controllers`, `agent`) from a
 * kubeconfig file, read by `@kubernetes/client-node` (every auth method kubectl knows).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ApiClient, type ApiClientOptions } from './client.ts';

/** The kubeconfig file at `path`, loaded by client-node (its current context). */
export function loadKubeConfigFile(path: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return kubeConfig;
}

/** A client for the kubeconfig file at `path` (its current context). */
export function clientFromKubeconfigFile(path: string, opts: Omit<ApiClientOptions, 'kubeConfig'> = {}): ApiClient {
  return new ApiClient({ ...opts, kubeConfig: loadKubeConfigFile(path) });
}

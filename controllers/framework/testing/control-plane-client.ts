/**
 * Test helper: an `ApiClient` for a harness control plane, closed when the test ends.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { onTestFinished } from 'vitest';
import { ApiClient, type ApiClientOptions } from '../client.ts';

/** A client that talks to `cp` as admin through the kubeconfig it wrote. */
export function clientFor(cp: { server: { kubeconfigPath: string } }, opts: Omit<ApiClientOptions, 'kubeConfig'> = {}): ApiClient {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cp.server.kubeconfigPath);
  const client = new ApiClient({ ...opts, kubeConfig });
  onTestFinished(() => client.close());
  return client;
}

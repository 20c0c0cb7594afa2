/**
 * What `ApiClient` needs of a kubeconfig: the current cluster's server and how to
 * authenticate to it. `@kubernetes/client-node`'s `KubeConfig` has this shape (the
 * controllers and agents use it); the CLI has a lean reader of its own that starts
 * faster (cli/client/kubeconfig-access.ts), and which also finds berth's local socket.
 */
import type https from 'node:https';

export interface ClusterAccess {
  /** The current context's cluster, or null when there is none. */
  getCurrentCluster(): { readonly server: string; readonly skipTLSVerify?: boolean } | null;
  /** Adds the CA, client certificate and key, and `Authorization` header to `opts`. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
  /**
   * A Unix socket on this machine that serves the same API as the cluster's server
   * (`berth server`'s `<dataDir>/api.sock`, named in its kubeconfig): requests go
   * there in plain HTTP with the same credentials, no TLS. Undefined: use the URL.
   */
  localSocketPath?(): string | undefined;
}

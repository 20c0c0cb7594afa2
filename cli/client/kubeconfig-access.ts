/**
 * The CLI's kubeconfig reader. Loading `@kubernetes/client-node` costs a CLI process
 * about 150 ms (its auth plugins pull in openid-client, proxy agents, node-fetch, ws);
 * a verb like `berth run` must start faster than that. So the CLI reads kubeconfig
 * files itself, as kubectl does — `$KUBECONFIG` lists merged (the first file that names
 * a cluster, user or context wins; the first `current-context` wins), relative paths
 * resolved against the file that holds them — and authenticates with what berth's and
 * most kubeconfigs use: CA, client certificate and key, bearer token or token file,
 * basic auth. Users with an `exec` or `auth-provider` plugin are handed to client-node
 * (loaded then, once), so every kubeconfig kubectl accepts still works.
 *
 * A cluster written by `berth server` carries the extension `LOCAL_SOCKET_EXTENSION`,
 * the path of the server's Unix socket; when the server URL is on this machine
 * (a loopback address) and that socket exists, the CLI talks to it in plain HTTP,
 * as the Docker CLI talks to /var/run/docker.sock (kubectl ignores the extension).
 */
import { readFileSync, statSync } from 'node:fs';
import type https from 'node:https';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterAccess } from '../../controllers/framework/cluster-access.ts';

type Named<T> = { readonly name: string } & T;
interface RawExtension { readonly name?: string; readonly extension?: { readonly path?: unknown } }
interface RawCluster { readonly extensions?: readonly RawExtension[]; readonly server?: string; readonly 'certificate-authority'?: string; readonly 'certificate-authority-data'?: string; readonly 'insecure-skip-tls-verify'?: boolean; readonly 'tls-server-name'?: string; readonly 'proxy-url'?: string }
interface RawUser {
  readonly 'client-certificate'?: string; readonly 'client-certificate-data'?: string;
  readonly 'client-key'?: string; readonly 'client-key-data'?: string;
  readonly token?: string; readonly tokenFile?: string;
  readonly username?: string; readonly password?: string;
  readonly exec?: unknown; readonly 'auth-provider'?: unknown;
}
interface RawContext { readonly cluster?: string; readonly user?: string; readonly namespace?: string }

/** Name of the kubeconfig cluster extension that holds `{ path }` of a berth server's local Unix socket. */
export const LOCAL_SOCKET_EXTENSION = 'berth.dev/local-socket';

/** One entry of a kubeconfig list, with the directory of the file that held it. */
interface Found<T> { readonly value: T; readonly dir: string }

/** Where a kubeconfig comes from: one file (`--kubeconfig`, berth's own) or `$KUBECONFIG`'s list. */
export interface KubeconfigSource {
  readonly kind: 'file' | 'env';
  readonly path: string;
}

/** A kubeconfig's current context, resolved: what the CLI connects to and as whom. */
export class KubeconfigAccess implements ClusterAccess {
  private clientNode: Promise<KubeConfig> | undefined;
  private tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;

  private constructor(
    readonly source: KubeconfigSource,
    /** The context in use. */
    readonly context: string,
    /** The context's namespace, if it names one. */
    readonly namespace: string | undefined,
    private readonly cluster: Found<RawCluster>,
    private readonly user: Found<RawUser>,
  ) {}

  /**
   * Reads the kubeconfig of `source` and picks `context` (default: its current context).
   * Throws a one-line error when a file cannot be read or parsed, or the context,
   * its cluster or its server is missing.
   */
  static load(source: KubeconfigSource, context?: string): KubeconfigAccess {
    const files = source.kind === 'env' ? source.path.split(':').filter(Boolean) : [source.path];
    const clusters = new Map<string, Found<RawCluster>>();
    const users = new Map<string, Found<RawUser>>();
    const contexts = new Map<string, RawContext>();
    let current: string | undefined;
    let read = 0;
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        // kubectl skips missing files of a $KUBECONFIG list, but not a named file.
        if (source.kind === 'env' && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      read++;
      let doc: { clusters?: Named<{ cluster?: RawCluster }>[]; users?: Named<{ user?: RawUser }>[]; contexts?: Named<{ context?: RawContext }>[]; 'current-context'?: string } | null;
      try {
        doc = (isJson(text) ? JSON.parse(text) : parseYaml(text)) as typeof doc;
      } catch (err) {
        throw new Error(`${file}: not a kubeconfig: ${(err as Error).message.split('\n')[0]}`);
      }
      const dir = dirname(resolve(file));
      for (const c of doc?.clusters ?? []) if (c?.name && !clusters.has(c.name)) clusters.set(c.name, { value: c.cluster ?? {}, dir });
      for (const u of doc?.users ?? []) if (u?.name && !users.has(u.name)) users.set(u.name, { value: u.user ?? {}, dir });
      for (const x of doc?.contexts ?? []) if (x?.name && !contexts.has(x.name)) contexts.set(x.name, x.context ?? {});
      current ||= doc?.['current-context'] || undefined;
    }
    if (read === 0) throw Object.assign(new Error(`no kubeconfig file in $KUBECONFIG (${source.path})`), { code: 'ENOENT' });
    const name = context ?? current;
    if (!name) throw new Error(`the kubeconfig ${source.path} has no current context`);
    const ctx = contexts.get(name);
    if (!ctx) throw new Error(`context ${JSON.stringify(name)} not found in the kubeconfig (${[...contexts.keys()].join(', ')})`);
    const cluster = ctx.cluster ? clusters.get(ctx.cluster) : undefined;
    if (!cluster?.value.server) throw new Error(`context ${JSON.stringify(name)}: cluster ${JSON.stringify(ctx.cluster ?? '')} has no server in the kubeconfig ${source.path}`);
    const user = (ctx.user ? users.get(ctx.user) : undefined) ?? { value: {}, dir: cluster.dir };
    return new KubeconfigAccess(source, name, ctx.namespace || undefined, cluster, user);
  }

  /** True when the user authenticates through a plugin (`exec`, `auth-provider`) or the cluster needs a proxy: client-node does those. */
  get needsClientNode(): boolean {
    return this.user.value.exec !== undefined || this.user.value['auth-provider'] !== undefined || this.cluster.value['proxy-url'] !== undefined;
  }

  getCurrentCluster(): { readonly server: string; readonly skipTLSVerify: boolean } {
    return { server: this.cluster.value.server!, skipTLSVerify: this.cluster.value['insecure-skip-tls-verify'] === true };
  }

  /** The cluster's `LOCAL_SOCKET_EXTENSION` socket, when its server is on loopback and the socket exists here. */
  localSocketPath(): string | undefined {
    const ext = this.cluster.value.extensions?.find((e) => e?.name === LOCAL_SOCKET_EXTENSION)?.extension;
    if (typeof ext?.path !== 'string' || !ext.path) return undefined;
    const host = new URL(this.cluster.value.server!).hostname;
    if (!LOOPBACK.test(host)) return undefined;
    const path = absolute(ext.path, this.cluster.dir);
    try {
      return statSync(path).isSocket() ? path : undefined;
    } catch {
      return undefined;
    }
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    if (this.needsClientNode) return (await this.loadClientNode()).applyToHTTPSOptions(opts);
    const c = this.cluster.value;
    const u = this.user.value;
    this.tls ??= {
      ...bytes(c['certificate-authority-data'], c['certificate-authority'], this.cluster.dir, 'ca'),
      ...bytes(u['client-certificate-data'], u['client-certificate'], this.user.dir, 'cert'),
      ...bytes(u['client-key-data'], u['client-key'], this.user.dir, 'key'),
    };
    Object.assign(opts, this.tls);
    if (c['insecure-skip-tls-verify']) opts.rejectUnauthorized = false;
    if (c['tls-server-name']) opts.servername = c['tls-server-name'];
    const token = u.token ?? (u.tokenFile ? readFileSync(absolute(u.tokenFile, this.user.dir), 'utf8').trim() : undefined);
    if (token) opts.headers = { ...opts.headers, authorization: `Bearer ${token}` };
    else if (u.username !== undefined) opts.auth = `${u.username}:${u.password ?? ''}`;
  }

  /** client-node's `KubeConfig` of the same source and context (for the plugins it runs). Loaded once, on first use. */
  loadClientNode(): Promise<KubeConfig> {
    this.clientNode ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      if (this.source.kind === 'env') kc.loadFromDefault();
      else kc.loadFromFile(this.source.path);
      kc.setCurrentContext(this.context);
      return kc;
    });
    return this.clientNode;
  }
}

/** A kubeconfig in JSON (as `berth server` writes it) is read with JSON.parse: loading and running the YAML parser costs a command ~15 ms. */
const isJson = (text: string): boolean => text.trimStart().startsWith('{');

// The YAML parser, loaded (synchronously, from node_modules) only for a kubeconfig in YAML.
const requireModule = createRequire(import.meta.url);
const parseYaml = (text: string): unknown => (requireModule('yaml') as typeof import('yaml')).parse(text);

/** Hosts of this machine: 127.0.0.0/8, ::1, localhost. */
const LOOPBACK = /^(127(\.\d{1,3}){3}|\[::1\]|localhost)$/;

const absolute = (p: string, dir: string): string => (isAbsolute(p) ? p : resolve(dir, p));

/** `{ [field]: bytes }` from inline base64 data or a file (relative to `dir`); `{}` when neither is set. */
function bytes(data: string | undefined, file: string | undefined, dir: string, field: 'ca' | 'cert' | 'key'): Partial<Record<'ca' | 'cert' | 'key', Buffer>> {
  if (data) return { [field]: Buffer.from(data, 'base64') };
  if (file) return { [field]: readFileSync(absolute(file, dir)) };
  return {};
}

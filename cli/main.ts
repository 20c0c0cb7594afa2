/**
 * The `berth` program: one binary, several roles. Flags and wiring only.
 *
 * - `berth server`: API server + SQLite + control-plane controllers + node agent.
 * - `berth controllers --kubeconfig F`: scheduler and node lifecycle, leader-elected.
 * - `berth agent --kubeconfig F`: this machine's node agent.
 *
 * `controllers` and `agent` serve `/metrics` and `/healthz` over plain HTTP when
 * given `--metrics-listen host:port` (off by default); `server` serves both on its HTTPS port.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { defaultServerDataDir } from './data-dir.ts';
import { parseListen } from './listen.ts';
import { BERTH_VERSION } from './version.ts';
import { tuneV8ForDaemon } from './v8-tuning.ts';
import type { RegistryConfig } from '../runtime/cri/types.ts';
import { parseDockerConfig } from '../runtime/cri/docker-config.ts';
import { LOG_LEVELS } from './log-levels.ts';
import type { MetricsListener } from './metrics-listener.ts';
import { registerClientCommands } from './client/index.ts';


/** `40s`, `2m`, `500ms` or plain seconds, as milliseconds. */
export function parseDurationMs(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`not a duration: ${JSON.stringify(v)} (e.g. 40s, 2m, 500ms)`);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

const insecureRegistryOption = () => new Option('--insecure-registry <host[:port]...>', 'registries to reach over plain HTTP (all others: HTTPS)');
const registryCaOption = () => new Option('--registry-ca <file>', 'extra CA certificates (PEM) to trust for registries');
const defaultSubnetOption = () => new Option('--default-subnet <cidr>', 'subnet of the default network berth0 that containers join unless they name networks').default('10.89.0.0/16');
const registryAuthOption = () => new Option('--registry-auth-file <file>', 'registry credentials (a Docker config.json) for pulls and pushes that name none');

/** The node's registry configuration from `--insecure-registry` and `--registry-ca`. */
function registryConfig(o: { insecureRegistry?: string[]; registryCa?: string; registryAuthFile?: string }): RegistryConfig | undefined {
  if (!o.insecureRegistry && !o.registryCa && !o.registryAuthFile) return undefined;
  return {
    ...(o.insecureRegistry ? { insecureRegistries: o.insecureRegistry } : {}),
    ...(o.registryCa ? { caBundlePem: readFileSync(o.registryCa, 'utf8') } : {}),
    ...(o.registryAuthFile ? { credentials: parseDockerConfig(readFileSync(o.registryAuthFile, 'utf8'), o.registryAuthFile) } : {}),
  };
}

const logLevelOption = () => new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]).default('info');
const metricsListenOption = () => new Option('--metrics-listen <host:port>', 'serve /metrics and /healthz over HTTP here (port 0: any free port); off when absent');

/** Stops `stop` once on SIGTERM or SIGINT, then exits 0 (1 if stopping failed). */
function onSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

/** A registry with the process metrics, for the standalone roles. */
async function processRegistry(): Promise<Registry> {
  const { Registry, collectDefaultMetrics } = await import('prom-client');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

async function maybeListen(listen: string | undefined, registry: Registry, healthy: () => boolean, logger: Logger): Promise<MetricsListener | undefined> {
  if (!listen) return undefined;
  const { startMetricsListener } = await import('./metrics-listener.ts');
  const l = await startMetricsListener({ listen, registry, healthy });
  logger.info({ url: l.url }, 'serving /metrics and /healthz');
  return l;
}

/**
 * Builds the command tree (exported for tests). With `only`, the other top-level
 * commands are not built (their registration calls go to a sink): building all ~60
 * commands with their options costs every command ~10 ms, a third of `berth run`'s
 * JavaScript before its first request. `registered` says whether `only` was one.
 */
export function buildProgram(only?: string): Command & { registered?: boolean } {
  const root = new Command('berth')
    .description('Docker-style containers from declarative, Kubernetes-style manifests')
    .version(BERTH_VERSION);
  let registered = false;
  const program: Command = only === undefined ? root : new Proxy(root, {
    get(target, prop, receiver) {
      if (prop !== 'command') return Reflect.get(target, prop, receiver);
      return (nameAndArgs: string, ...rest: unknown[]) => {
        if (nameAndArgs.split(' ')[0] !== only) return SINK;
        registered = true;
        return (target.command as (...a: unknown[]) => Command)(nameAndArgs, ...rest);
      };
    },
  });

  program
    .command('server')
    .description('run everything in one process: API server (SQLite), controllers, node agent')
    .option('--data-dir <dir>', 'where the database, PKI, kubeconfig, images and containers live', defaultServerDataDir())
    .option('--listen <host:port>', 'address to serve HTTPS on', '127.0.0.1:7443')
    .option('--host <name...>', 'extra DNS names or IPs for the serving certificate')
    .addOption(new Option('--runtime <kind>', 'container runtime of the built-in agent (default: runc as root with runc and conmon installed, else none)').choices(['runc', 'fake', 'none']))
    .option('--node-name <name>', 'name of this machine\'s Node', hostname())
    .option('--no-controllers', 'do not run the scheduler and node lifecycle controllers')
    .option('--node-grace-period <duration>', 'time without a heartbeat before a node is marked not ready', parseDurationMs)
    .addOption(insecureRegistryOption())
    .addOption(registryCaOption())
    .addOption(registryAuthOption())
    .option('--allow-bind-mount <path...>', 'host path (with everything below it) that Containers may bind-mount; repeatable; none by default')
    .addOption(defaultSubnetOption())
    .addOption(logLevelOption())
    .action(async (o: { dataDir: string; listen: string; host?: string[]; runtime?: 'runc' | 'fake' | 'none'; nodeName: string; controllers: boolean; nodeGracePeriod?: number; insecureRegistry?: string[]; registryCa?: string; registryAuthFile?: string; allowBindMount?: string[]; defaultSubnet: string; logLevel: string }) => {
      tuneV8ForDaemon();
      const registry = registryConfig(o);
      // The server's code (express, SQLite, …) loads only for `berth server`: client verbs start light.
      const { startServer } = await import('./server.ts');
      const server = await startServer({
        ...(registry ? { registry } : {}),
        dataDir: o.dataDir,
        listen: o.listen,
        logLevel: o.logLevel,
        nodeName: o.nodeName,
        controllers: o.controllers,
        ...(o.host ? { hosts: o.host } : {}),
        ...(o.runtime ? { runtime: o.runtime } : {}),
        ...(o.nodeGracePeriod !== undefined ? { nodeGracePeriodMs: o.nodeGracePeriod } : {}),
        ...(o.allowBindMount ? { allowedBindMountPaths: o.allowBindMount } : {}),
        network: { defaultNetwork: { subnet: o.defaultSubnet } },
      });
      process.stderr.write(`berth server: serving on ${server.url}\nkubeconfig: ${server.kubeconfigPath}\n  export KUBECONFIG=${server.kubeconfigPath}\n`);
      onSignals(server.logger, () => server.close());
    });

  program
    .command('controllers')
    .description('run the control-plane controllers (scheduler, node lifecycle) against an API server')
    .requiredOption('--kubeconfig <file>', 'kubeconfig of the API server')
    .option('--no-leader-elect', 'run without leader election (only one instance may run)')
    .option('--node-grace-period <duration>', 'time without a heartbeat before a node is marked not ready', parseDurationMs)
    .addOption(metricsListenOption())
    .addOption(logLevelOption())
    .action(async (o: { kubeconfig: string; leaderElect: boolean; nodeGracePeriod?: number; metricsListen?: string; logLevel: string }) => {
      tuneV8ForDaemon();
      const logger = (await import('./logger.ts')).createLogger({ level: o.logLevel, name: 'berth-controllers' });
      const registry = await processRegistry();
      const [{ clientFromKubeconfigFile }, { startControllers }] = await Promise.all([import('../controllers/framework/kubeconfig.ts'), import('./controllers.ts')]);
      const client = clientFromKubeconfigFile(o.kubeconfig, { fieldManager: 'berth-controllers' });
      const controllers = await startControllers({
        client,
        registry,
        logger,
        leaderElect: o.leaderElect,
        ...(o.nodeGracePeriod !== undefined ? { nodeGracePeriodMs: o.nodeGracePeriod } : {}),
      });
      const listener = await maybeListen(o.metricsListen, registry, () => true, logger);
      onSignals(logger, async () => {
        await controllers.stop();
        await listener?.close();
        client.close();
      });
    });

  program
    .command('agent')
    .description("run this machine's node agent: registers the Node and runs the Containers bound to it")
    .requiredOption('--kubeconfig <file>', 'kubeconfig of the API server')
    .option('--node-name <name>', 'name of this machine\'s Node', hostname())
    .option('--data-dir <dir>', 'where images and containers live', defaultServerDataDir())
    .addOption(new Option('--role <role>', 'spec.role if the agent creates its Node').choices(['manager', 'worker']).default('worker'))
    .addOption(new Option('--runtime <kind>', 'container runtime').choices(['runc', 'fake']).default('runc'))
    .option('--stream-listen <host:port>', 'where the API server reaches this agent for logs, exec and attach (HTTPS)', '127.0.0.1:10250')
    .option('--stream-advertise <url>', 'URL the API server dials for logs, exec and attach (default: https://<stream-listen>)')
    .addOption(insecureRegistryOption())
    .addOption(registryCaOption())
    .addOption(registryAuthOption())
    .addOption(defaultSubnetOption())
    .addOption(metricsListenOption())
    .addOption(logLevelOption())
    .action(async (o: { kubeconfig: string; nodeName: string; dataDir: string; role: 'manager' | 'worker'; runtime: 'runc' | 'fake'; streamListen: string; streamAdvertise?: string; insecureRegistry?: string[]; registryCa?: string; registryAuthFile?: string; defaultSubnet: string; metricsListen?: string; logLevel: string }) => {
      tuneV8ForDaemon();
      const logger = (await import('./logger.ts')).createLogger({ level: o.logLevel, name: 'berth-agent' });
      const metricsRegistry = await processRegistry();
      const [{ ApiClient }, { loadKubeConfigFile }, { openNodeNetwork, openNodeRuntime, startAgent, startAgentStreams, ensureAgentPki }] = await Promise.all([import('../controllers/framework/client.ts'), import('../controllers/framework/kubeconfig.ts'), import('./agent.ts')]);
      const kubeConfig = loadKubeConfigFile(o.kubeconfig);
      const client = new ApiClient({ kubeConfig, fieldManager: 'berth-agent' });
      const token = kubeConfig.getCurrentUser()?.token;
      if (!token) throw new Error(`${o.kubeconfig}: the current user has no bearer token; the API server authenticates to the agent's stream server with it`);
      const registry = registryConfig(o);
      mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
      const dataDirLock = await (await import('./instance-lock.ts')).lockDataDir(o.dataDir, 'berth agent');
      const node = openNodeRuntime(o.runtime, o.dataDir, logger, registry ? { registry } : {});
      // Container networks and published ports, as `berth server`'s agent has them (real runtime only).
      const network = o.runtime === 'runc' ? await openNodeNetwork(o.dataDir, logger, { defaultNetwork: { subnet: o.defaultSubnet } }) : undefined;
      const advertiseHost = o.streamAdvertise ? new URL(o.streamAdvertise).hostname.replace(/^\[|\]$/g, '') : undefined;
      const tls = await ensureAgentPki(o.dataDir, [parseListen(o.streamListen, '--stream-listen').host, ...(advertiseHost ? [advertiseHost] : []), o.nodeName]);
      const streams = await startAgentStreams({
        runtime: node.runtime,
        images: node.images,
        buildLogDir: node.buildLogDir,
        listen: o.streamListen,
        token,
        tls,
        caPem: tls.caPem,
        logger,
        ...(o.streamAdvertise ? { advertiseUrl: o.streamAdvertise } : {}),
      });
      const agent = await startAgent({
        client, runtime: node.runtime, images: node.images, builder: node.builder, buildLogDir: node.buildLogDir,
        registry: metricsRegistry, logger, nodeName: o.nodeName, role: o.role, annotations: streams.annotations,
        volumesRoot: join(o.dataDir, 'volumes'),
        ...(network ? { network } : {}),
      });
      const listener = await maybeListen(o.metricsListen, metricsRegistry, () => true, logger);
      onSignals(logger, async () => {
        await streams.close();
        await agent.stop();
        await network?.close();
        await node.close();
        await listener?.close();
        client.close();
        await dataDirLock.release();
      });
    });

  registerClientCommands(program);
  return Object.assign(root, only === undefined ? {} : { registered });
}

/** Absorbs the building of a command that is not run: every call and property is the sink again. */
const SINK: any = new Proxy(function sink() {}, { get: () => SINK, apply: () => SINK });

/** The options before the verb that take a value (`berth --kubeconfig K -n ns run …`). */
const GLOBAL_VALUE_OPTIONS = new Set(['--kubeconfig', '--context', '-n', '--namespace']);

/**
 * The verb of a command line, when it can be run with that verb's branch of the tree
 * alone: not for help, completion or a version flag (they need the whole tree).
 */
export function verbOf(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
    else if (a === '--debug' || /^--(kubeconfig|context|namespace)=/.test(a)) continue;
    else if (a.startsWith('-')) return undefined;
    else return a === 'help' || a.startsWith('__') ? undefined : a;
  }
  return undefined;
}

export async function main(argv: readonly string[]): Promise<void> {
  // `berth ps | head`: a reader that went away ends the program quietly, as in Docker's CLI.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
  const verb = verbOf(argv);
  const program = verb === undefined ? undefined : buildProgram(verb);
  // An unknown verb gets the whole tree, so that commander names the commands there are.
  await (program?.registered ? program : buildProgram()).parseAsync([...argv]);
}

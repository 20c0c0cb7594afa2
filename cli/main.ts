/**
 * The `berth` program: one binary, several roles. Flags and wiring only.
 */
import { Command, Option } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './server.ts';

const defaultDataDir = (): string =>
  process.getuid?.() === 0 ? '/var/lib/berth' : join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'berth');

/** Builds the command tree (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('berth')
    .description('Docker-style containers from declarative, Kubernetes-style manifests')
    .version('0.1.0');

  program
    .command('server')
    .description('run everything in one process: API server (SQLite), controllers, node agent')
    .option('--data-dir <dir>', 'where the database, PKI and kubeconfig live', defaultDataDir())
    .option('--listen <host:port>', 'address to serve HTTPS on', '127.0.0.1:7443')
    .option('--host <name...>', 'extra DNS names or IPs for the serving certificate')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'))
    .action(async (o: { dataDir: string; listen: string; host?: string[]; logLevel: string }) => {
      const server = await startServer({ dataDir: o.dataDir, listen: o.listen, logLevel: o.logLevel, ...(o.host ? { hosts: o.host } : {}) });
      process.stderr.write(`berth server: serving on ${server.url}\nkubeconfig: ${server.kubeconfigPath}\n  export KUBECONFIG=${server.kubeconfigPath}\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        server.logger.info({ signal }, 'shutting down');
        server.close().then(
          () => process.exit(0),
          (e) => {
            server.logger.error({ err: e }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });

  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  await buildProgram().parseAsync([...argv]);
}

/**
 * Registers `berth compose` and its verbs on the program. Only commander is loaded
 * here; each action imports `commands.ts` (and through it the API client) when it
 * runs. `-f FILE` and `-p NAME` go between `compose` and the verb, as in Docker
 * Compose (`berth compose -f app.yaml -p demo up -d`); connection flags anywhere
 * before the verb or after it. Failures print one line and exit 1.
 */
import type { Command } from 'commander';
import type { Connection, ConnectionFlags } from '../client/connection.ts';

type Out = (s: string) => void;
const out: Out = (s) => void process.stdout.write(s);

/** Runs one compose verb: merges the flags of every level, connects when asked, prints a failure as one line, exits. */
async function act(cmd: Command, fn: (flags: Record<string, any>, conn: Connection | undefined) => Promise<number>, needsServer = true): Promise<void> {
  const flags = cmd.optsWithGlobals() as Record<string, any> & ConnectionFlags;
  const { connect, errorLine } = await import('../client/connection.ts');
  let conn: Connection | undefined;
  let code: number;
  try {
    if (needsServer) conn = connect(flags);
    code = await fn(flags, conn);
  } catch (err) {
    process.stderr.write(`berth compose: ${errorLine(err, conn?.server)}\n`);
    if (flags.debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    code = 1;
  }
  conn?.close();
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  process.exit(code);
}

const commands = () => import('./commands.ts');
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Adds `compose` with `up`, `down`, `ps`, `logs`, `config`, `convert` to `program`. */
export function registerComposeCommands(program: Command): void {
  const compose = program
    .command('compose')
    .description('run a Compose project (compose.yaml) as berth objects')
    .option('-f, --file <file>', 'Compose file, repeatable: later files are merged over earlier ones (default: $COMPOSE_FILE, else compose.yaml, compose.yml, docker-compose.yml or docker-compose.yaml plus its compose.override.yaml)', collect)
    .option('-p, --project-name <name>', 'project name (default: the file\'s name:, $COMPOSE_PROJECT_NAME, or the directory name)')
    .option('--kubeconfig <file>', 'kubeconfig of the berth server')
    .option('--context <name>', 'kubeconfig context to use')
    .option('-n, --namespace <ns>', 'namespace')
    .option('--debug', 'log the API exchange to stderr')
    .enablePositionalOptions();

  compose.command('up').description('create or update the project\'s objects and start its containers')
    .option('-d, --detach', 'return once the containers started (default: follow their logs)')
    .option('--wait-timeout <seconds>', 'how long to wait for images, dependencies and starts', '300')
    .action((_o: unknown, cmd: Command) => act(cmd, async (f, c) => (await commands()).composeUp(c!, { ...projectFlags(f), detach: f.detach, waitTimeout: f.waitTimeout }, out)));
  compose.command('down').description('delete the project\'s containers and networks')
    .option('-v, --volumes', 'also delete the project\'s volumes')
    .option('--rmi <which>', 'also delete images: local (those the project built) or all (also those its services use)')
    .action((_o: unknown, cmd: Command) => act(cmd, async (f, c) => (await commands()).composeDown(c!, { ...projectFlags(f), volumes: f.volumes, rmi: f.rmi })));
  compose.command('ps').description('list the project\'s containers')
    .option('-a, --all', 'also stopped containers')
    .option('-q, --quiet', 'only IDs')
    .option('--format <template>', 'Go-template-like format, or json')
    .action((_o: unknown, cmd: Command) => act(cmd, async (f, c) => (await commands()).composePs(c!, { ...projectFlags(f), all: f.all, quiet: f.quiet, format: f.format }, out)));
  compose.command('logs').description('show the output of the project\'s containers')
    .option('-f, --follow', 'follow the output')
    .option('--tail <n>', 'lines from the end of each log ("all")')
    .option('-t, --timestamps', 'show timestamps')
    .argument('[service...]')
    .action((services: string[], _o: unknown, cmd: Command) => act(cmd, async (f, c) => (await commands()).composeLogs(c!, { ...projectFlags(f), follow: f.follow, tail: f.tail, timestamps: f.timestamps }, services, out)));
  compose.command('config').description('print the normalised Compose model')
    .action((_o: unknown, cmd: Command) => act(cmd, async (f) => (await commands()).config(projectFlags(f), out), false));
  compose.command('convert').description('print the berth manifests of the project (for Git)')
    .action((_o: unknown, cmd: Command) => act(cmd, async (f) => (await commands()).convert(projectFlags(f), f.namespace ?? 'default', out), false));
}

/** `-f`/`-p` of the compose level: the verbs' own `-f` (logs --follow) must not be mistaken for it. */
function projectFlags(f: Record<string, any>): { file?: string[]; projectName?: string } {
  return { ...(Array.isArray(f.file) ? { file: f.file as string[] } : {}), ...(f.projectName ? { projectName: f.projectName as string } : {}) };
}

/**
 * Registers the verbs beyond the core container and image ones: `volume …`,
 * `network …`, `events`, `system prune`, the declarative `apply`/`get`/`describe`/
 * `delete`/`diff` (and `wait --for`, registered with Docker's `wait` in `index.ts`),
 * `completion` with the hidden `__complete`, and `top`, `stats`, `cp`, `history`,
 * `load`. Like `index.ts` it loads only commander; each action imports its module.
 */
import { Command, Option } from 'commander';
import type { Connection } from './connection.ts';

/** What `index.ts` lends: its verb runner and flag helpers. */
export interface VerbHelpers {
  /** Adds the connection flags to a command. */
  readonly withConnection: (cmd: Command, namespaceShort?: boolean) => Command;
  /** Runs an action: connects, maps failures to one line and an exit code, exits. */
  readonly act: (cmd: Command, failCode: number, fn: (conn: Connection) => Promise<number | void>) => Promise<void>;
  readonly out: (s: string) => void;
  readonly collect: (v: string, prev?: string[]) => string[];
}

/** Adds the verbs listed in the module comment to `program`. */
export function registerMoreCommands(program: Command, h: VerbHelpers): void {
  const { withConnection, act, out, collect } = h;
  const sub = (group: Command, name: string, description: string) => withConnection(group.command(name).description(description));
  const group = (name: string, description: string) => program.command(name).description(description);

  // volume
  const volumes = () => import('./volumes.ts');
  const volume = group('volume', 'manage volumes');
  sub(volume, 'create', 'create a volume').argument('[name]')
    .option('-d, --driver <driver>', 'volume driver', 'local')
    .option('-o, --opt <k=v>', 'driver option (repeatable)', collect)
    .option('--label <k=v>', 'label (repeatable)', collect)
    .action((name: string | undefined, o: { driver?: string; opt?: string[]; label?: string[] }, cmd: Command) => act(cmd, 1, async (c) => (await volumes()).volumeCreate(c, name, o, out)));
  sub(volume, 'ls', 'list volumes').alias('list')
    .option('-q, --quiet', 'only names')
    .option('-f, --filter <key=value>', 'filter (name, label, driver, dangling)', collect)
    .option('--format <template>', 'Go-template-like format, or json')
    .action((o: { quiet?: boolean; filter?: string[]; format?: string }, cmd: Command) => act(cmd, 1, async (c) => (await volumes()).volumeLs(c, o, out)));
  sub(volume, 'inspect', 'show volumes').argument('<volume...>').option('-f, --format <template>', 'Go-template-like format over the object')
    .action((names: string[], o: { format?: string }, cmd: Command) => act(cmd, 1, async (c) => (await volumes()).volumeInspect(c, names, o.format, out)));
  sub(volume, 'rm', 'remove volumes').alias('remove').argument('<volume...>').option('-f, --force', 'remove volumes in use too')
    .action((names: string[], o: { force?: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await volumes()).volumeRm(c, names, o.force ?? false, out)));
  sub(volume, 'prune', 'remove volumes no container uses')
    .option('-f, --force', 'do not ask')
    .option('-a, --all', 'all unused volumes (berth has no anonymous volumes: always)')
    .option('--filter <label=…>', 'only volumes with these labels (repeatable)', collect)
    .action((o: { force?: boolean; filter?: string[] }, cmd: Command) => act(cmd, 1, async (c) => (await volumes()).volumePrune(c, o, out)));

  // network
  const networks = () => import('./networks.ts');
  const network = group('network', 'manage networks');
  sub(network, 'create', 'create a network').argument('<name>')
    .option('-d, --driver <driver>', 'network driver (bridge)', 'bridge')
    .option('--subnet <cidr>', 'IPv4 subnet, e.g. 10.90.3.0/24')
    .option('--gateway <ip>', 'gateway address')
    .option('--internal', 'no access to the outside')
    .option('--label <k=v>', 'label (repeatable)', collect)
    .action((name: string, o: Record<string, unknown>, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkCreate(c, name, o, out)));
  sub(network, 'ls', 'list networks').alias('list')
    .option('-q, --quiet', 'only IDs')
    .option('-f, --filter <key=value>', 'filter (name, label, id, driver)', collect)
    .option('--format <template>', 'Go-template-like format, or json')
    .option('--no-trunc', 'do not truncate IDs')
    .action((o: { quiet?: boolean; filter?: string[]; format?: string; trunc?: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkLs(c, { ...o, noTrunc: o.trunc === false }, out)));
  sub(network, 'inspect', 'show networks').argument('<network...>').option('-f, --format <template>', 'Go-template-like format over the object')
    .action((refs: string[], o: { format?: string }, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkInspect(c, refs, o.format, out)));
  sub(network, 'rm', 'remove networks').alias('remove').argument('<network...>')
    .action((refs: string[], _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkRm(c, refs, out)));
  sub(network, 'prune', 'remove networks no container uses')
    .option('-f, --force', 'do not ask')
    .option('--filter <label=…>', 'only networks with these labels (repeatable)', collect)
    .action((o: { force?: boolean; filter?: string[] }, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkPrune(c, o, out)));
  sub(network, 'connect', 'connect a container to a network (edits spec.networks: the container is recreated)').argument('<network>').argument('<container>')
    .option('--alias <name>', 'extra DNS name on the network (repeatable)', collect)
    .option('--ip <address>', 'fixed IPv4 address')
    .action((net: string, ctr: string, o: { alias?: string[]; ip?: string }, cmd: Command) =>
      act(cmd, 1, async (c) => (await networks()).networkConnect(c, net, ctr, { ...(o.alias ? { aliases: o.alias } : {}), ...(o.ip ? { ipv4Address: o.ip } : {}) })));
  sub(network, 'disconnect', 'disconnect a container from a network (edits spec.networks: the container is recreated)').argument('<network>').argument('<container>')
    .option('-f, --force', 'accepted for Docker compatibility')
    .action((net: string, ctr: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await networks()).networkConnect(c, net, ctr, undefined)));

  // events, system prune
  withConnection(program.command('events').description('stream lifecycle changes of containers, images, volumes and networks'))
    .option('--since <when>', 'replay since a duration ago (10m) or a timestamp')
    .option('--until <when>', 'stop at a timestamp or after a duration from now')
    .option('-f, --filter <key=value>', 'filter (type, event, container, image, volume, network, label)', collect)
    .option('--format <template>', 'Go-template-like format ({{.Type}} {{.Action}} {{.ID}}), or json')
    .action((o: Record<string, unknown>, cmd: Command) => act(cmd, 1, async (c) => (await import('./events.ts')).events(c, o, out)));
  const system = group('system', 'manage berth');
  sub(system, 'prune', 'remove stopped containers, unused networks and dangling images')
    .option('-a, --all', 'also every image no container uses')
    .option('--volumes', 'also volumes no container uses')
    .option('-f, --force', 'do not ask')
    .action((o: { all?: boolean; volumes?: boolean; force?: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await import('./prune.ts')).systemPrune(c, o, out)));

  // Declarative (kubectl's verbs)
  const decl = () => import('./declarative.ts');
  const fileFlags = (cmd: Command) => cmd.option('-f, --filename <file|dir|->', 'manifest file, directory or - for stdin (repeatable)', collect).option('-R, --recursive', 'descend into directories');
  fileFlags(withConnection(program.command('apply').description('server-side apply manifests (field manager berth)')))
    .option('--prune', 'delete berth objects matching -l that berth apply made and the files no longer have')
    .option('-l, --selector <selector>', 'label selector (needed with --prune)')
    .option('--force-conflicts', 'take over fields other managers own')
    .addOption(new Option('--dry-run <mode>', 'server: validate without storing').choices(['none', 'server', 'client']))
    .addOption(new Option('-o, --output <format>', 'print the applied objects').choices(['yaml', 'json']))
    .action((o: { filename?: string[]; recursive?: boolean; prune?: boolean; selector?: string; forceConflicts?: boolean; dryRun?: string; output?: string }, cmd: Command) =>
      act(cmd, 1, async (c) => (await decl()).apply(c, { ...o, force: o.forceConflicts ?? false }, out)));
  fileFlags(withConnection(program.command('get').description('list objects as kubectl get (TYPE [NAME…], TYPE/NAME, -f)')))
    .argument('[args...]')
    .option('-o, --output <format>', 'wide, yaml, json or name')
    .option('-l, --selector <selector>', 'label selector')
    .option('-A, --all-namespaces', 'every namespace')
    .option('--no-headers', 'no header line')
    .action((args: string[], o: { output?: string; selector?: string; allNamespaces?: boolean; filename?: string[]; headers: boolean }, cmd: Command) =>
      act(cmd, 1, async (c) => (await decl()).get(c, args, { ...o, noHeaders: o.headers === false }, out)));
  fileFlags(withConnection(program.command('describe').description('show objects and their events as kubectl describe')))
    .argument('[args...]')
    .option('-l, --selector <selector>', 'label selector')
    .action((args: string[], o: { filename?: string[]; selector?: string }, cmd: Command) => act(cmd, 1, async (c) => (await decl()).describe(c, args, o, out)));
  fileFlags(withConnection(program.command('delete').description('delete objects (TYPE NAME…, TYPE/NAME, -f) and wait until gone')))
    .argument('[args...]')
    .option('-l, --selector <selector>', 'label selector')
    .option('--all', 'every object of the type')
    .option('--ignore-not-found', 'no error for objects already gone')
    .option('--wait <bool>', 'wait until the objects are gone (default true)')
    .action((args: string[], o: { filename?: string[]; recursive?: boolean; selector?: string; all?: boolean; ignoreNotFound?: boolean; wait?: string }, cmd: Command) =>
      act(cmd, 1, async (c) => (await decl()).del(c, args, { ...o, wait: o.wait !== 'false' }, out)));
  fileFlags(withConnection(program.command('diff').description('diff the live objects against the manifests (exit 1 when they differ)')))
    .action((o: { filename?: string[]; recursive?: boolean }, cmd: Command) => act(cmd, 2, async (c) => (await decl()).diff(c, o, out)));

  // Completion
  program.command('completion').description('print the shell completion script (bash or zsh)').argument('<shell>')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.ts');
      try {
        out(completionScript(shell));
      } catch (err) {
        process.stderr.write(`berth: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  program.command('__complete', { hidden: true }).allowUnknownOption().allowExcessArguments().argument('[words...]')
    .action(async (words: string[]) => {
      const { apiLister, complete, connectionFlagsOf } = await import('./completion.ts');
      const { connect } = await import('./connection.ts');
      let conn: Connection | undefined;
      const lister = apiLister(() => (conn ??= connect({ ...(program.opts() as object), ...connectionFlagsOf(words) })));
      const names = await complete(program, words.length ? words : [''], lister).catch(() => [] as string[]);
      conn?.close();
      out(names.map((n) => `${n}\n`).join(''));
    });

  // Container and image verbs over exec, the stats subresource and archives
  const tools = () => import('./container-tools.ts');
  withConnection(program.command('top').description('show the processes of a running container (ps in the container)'))
    .argument('<container>').argument('[ps-options...]').passThroughOptions()
    .action((ref: string, args: string[], _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await tools()).top(c, ref, args, out)));
  withConnection(program.command('stats').description('show CPU, memory, network, block I/O and PIDs of running containers (the stats subresource)'))
    .argument('[container...]')
    .option('--no-stream', 'print one sample and exit')
    .option('-a, --all', 'accepted (only running containers have usage)')
    .option('--format <template>', 'Go-template-like format, or json')
    .action((refs: string[], o: { stream: boolean; format?: string }, cmd: Command) => act(cmd, 1, async (c) => (await tools()).stats(c, refs, { noStream: o.stream === false, ...(o.format ? { format: o.format } : {}) }, out)));
  withConnection(program.command('cp').description('copy files between a container and this machine (CONTAINER:PATH, - for a tar stream)'))
    .argument('<src>').argument('<dest>')
    .action((src: string, dest: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await tools()).cp(c, src, dest)));
  withConnection(program.command('history').description('show the history of an image'))
    .argument('<image>')
    .option('--no-trunc', 'do not truncate')
    .option('-q, --quiet', 'only IDs')
    .option('--format <template>', 'Go-template-like format, or json')
    .action((ref: string, o: { trunc: boolean; quiet?: boolean; format?: string }, cmd: Command) => act(cmd, 1, async (c) => (await tools()).history(c, ref, { ...o, noTrunc: o.trunc === false }, out)));
  withConnection(program.command('load').description('load an image from a docker-archive or OCI tarball (read by the server: same machine)'))
    .option('-i, --input <file>', 'tarball (default: stdin)')
    .option('-q, --quiet', 'less output')
    .action((o: { input?: string; quiet?: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await tools()).load(c, o.input, o, out)));
}

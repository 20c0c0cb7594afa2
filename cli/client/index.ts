/**
 * Registers the client verbs (`run`, `ps`, `images`, `build`, …) on the `berth`
 * program. Only commander is loaded here; each action imports its module (and
 * through it `@kubernetes/client-node`) when it runs, so `berth server` stays light.
 *
 * Connection flags (`--kubeconfig`, `--context`, `-n/--namespace`, `--debug`) go
 * before the verb (`berth --kubeconfig F ps`) or after it (`berth ps -n team`).
 * The program parses options positionally so that `berth run IMAGE CMD -n` passes
 * `-n` to CMD, as Docker does.
 */
import { Command, Option } from 'commander';
import type { Connection, ConnectionFlags } from './connection.ts';
import { registerComposeCommands } from '../compose/register.ts';
import { registerMoreCommands } from './register-more.ts';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function withConnection(cmd: Command, namespaceShort = true): Command {
  return cmd
    .option('--kubeconfig <file>', 'kubeconfig of the berth server (default: $KUBECONFIG, then berth server\'s own)')
    .option('--context <name>', 'kubeconfig context to use')
    .option(namespaceShort ? '-n, --namespace <ns>' : '--namespace <ns>', 'namespace (default: the context\'s, else default)')
    .option('--debug', 'log the API exchange to stderr');
}

type Out = (s: string) => void;
const out: Out = (s) => void process.stdout.write(s);

/** Runs a verb: connects, maps failures to one line on stderr and Docker's exit codes, exits. */
async function act(cmd: Command, failCode: number, fn: (conn: Connection) => Promise<number | void>): Promise<void> {
  // Flags of every ancestor (`berth --kubeconfig K volume ls`), the verb's own winning.
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  const flags: ConnectionFlags = Object.assign({}, ...chain.map((c) => Object.fromEntries(Object.entries(c.opts()).filter(([, v]) => v !== undefined)))) as ConnectionFlags;
  const { connect, errorLine } = await import('./connection.ts');
  let conn: Connection | undefined;
  let code: number;
  try {
    conn = connect(flags);
    code = (await fn(conn)) ?? 0;
  } catch (err) {
    const { VerbError } = await import('./containers.ts');
    const { FlagError } = await import('./container-spec.ts');
    const { ApiStatusError } = await import('../../controllers/framework/api-status-error.ts');
    const line = errorLine(err, conn?.server);
    if (err instanceof FlagError) {
      process.stderr.write(`berth: ${line}\nSee 'berth ${cmd.name()} --help'.\n`);
      code = failCode === 1 ? 125 : failCode;
    } else {
      process.stderr.write(err instanceof VerbError || err instanceof ApiStatusError ? `Error response from daemon: ${line}\n` : `berth: ${line}\n`);
      code = err instanceof VerbError && err.code !== 1 ? err.code : failCode;
    }
    if (flags.debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  }
  conn?.close();
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  process.exit(code);
}

const containers = () => import('./containers.ts');
const images = () => import('./images.ts');

/** The flags `run` and `create` share. */
function runFlags(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'name of the container')
    .option('-e, --env <NAME=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-p, --publish <[ip:]host:container[/proto]>', 'publish a port (repeatable)', collect)
    .option('-v, --volume <name:/path[:ro]>', 'mount a named volume (repeatable)', collect)
    .option('--mount <spec>', 'type=volume|tmpfs,source=…,target=…[,readonly] (repeatable)', collect)
    .option('--tmpfs <path>', 'mount a tmpfs (repeatable)', collect)
    .option('--network <name>', 'connect to a Network')
    .option('--restart <policy>', 'no, always, on-failure, unless-stopped', 'no')
    .option('--rm', 'remove the container when it exits')
    .option('-i, --interactive', 'keep stdin open and attach it')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-m, --memory <bytes>', 'memory limit (e.g. 64m)')
    .option('--cpus <n>', 'CPU limit in cores')
    .option('--pids-limit <n>', 'process limit')
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <user>', 'user[:group]')
    .option('--entrypoint <cmd>', 'replace the image\'s ENTRYPOINT')
    .option('-h, --hostname <name>', 'hostname inside the container')
    .option('-l, --label <k=v>', 'set a label (repeatable)', collect)
    .addOption(new Option('--pull <when>', 'pull the image').choices(['always', 'missing', 'never']))
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--stop-timeout <seconds>', 'seconds to wait before SIGKILL')
    .helpOption('--help', 'display help for command');
}

/** Adds the client verbs to `program` (see the module comment). */
export function registerClientCommands(program: Command): void {
  program.enablePositionalOptions();
  withConnection(program);

  const verb = (name: string, description: string, namespaceShort = true) => withConnection(program.command(name).description(description), namespaceShort);

  verb('version', 'show the client and server versions').action((_o, cmd: Command) =>
    act(cmd, 1, async (c) => (await import('./system.ts')).version(c, out)));
  verb('info', 'show server, runtime and node facts').action((_o, cmd: Command) =>
    act(cmd, 1, async (c) => (await import('./system.ts')).info(c, out)));

  // Containers
  runFlags(verb('run', 'create and run a container (as docker run)'))
    .option('-d, --detach', 'run in the background and print the container ID')
    .argument('<image>').argument('[command...]')
    .passThroughOptions()
    .action((image: string, args: string[], o: Record<string, unknown>, cmd: Command) =>
      act(cmd, 125, async (c) => (await containers()).run(c, { flags: o, image, args, out })));
  runFlags(verb('create', 'create a container without starting it'))
    .argument('<image>').argument('[command...]')
    .passThroughOptions()
    .action((image: string, args: string[], o: Record<string, unknown>, cmd: Command) =>
      act(cmd, 125, async (c) => (await containers()).create(c, { flags: o, image, args, out })));

  const each = (name: string, description: string, fn: (m: Awaited<ReturnType<typeof containers>>, c: Connection, ref: string, o: any) => Promise<void>, setup: (cmd: Command) => Command = (x) => x) =>
    setup(verb(name, description)).argument('<container...>').action((refs: string[], o: unknown, cmd: Command) =>
      act(cmd, 1, async (c) => {
        const m = await containers();
        let failed = false;
        for (const ref of refs) {
          try {
            await fn(m, c, ref, o);
            out(`${ref}\n`);
          } catch (err) {
            if (refs.length === 1) throw err;
            failed = true;
            process.stderr.write(`Error response from daemon: ${(await import('./connection.ts')).errorLine(err)}\n`);
          }
        }
        return failed ? 1 : 0;
      }));
  each('start', 'start stopped containers', (m, c, ref) => m.start(c, ref));
  each('stop', 'stop running containers', (m, c, ref, o: { time?: string }) => m.stop(c, ref, o.time === undefined ? undefined : Number(o.time)), (x) => x.option('-t, --time <seconds>', 'seconds to wait before killing'));
  each('restart', 'restart containers', async (m, c, ref, o: { time?: string }) => {
    await m.stop(c, ref, o.time === undefined ? undefined : Number(o.time));
    await m.start(c, ref);
  }, (x) => x.option('-t, --time <seconds>', 'seconds to wait before killing'));
  each('pause', 'pause all processes of containers', (m, c, ref) => m.setPaused(c, ref, true));
  each('unpause', 'unpause containers', (m, c, ref) => m.setPaused(c, ref, false));
  each('kill', 'kill running containers', (m, c, ref, o: { signal: string }) => m.kill(c, ref, o.signal), (x) => x.option('-s, --signal <signal>', 'signal to send to the container (name or number)', 'KILL'));
  each('rm', 'remove containers', (m, c, ref, o: { force?: boolean }) => m.remove(c, ref, o.force ?? false), (x) => x.option('-f, --force', 'remove running containers too'));

  verb('ps', 'list containers')
    .option('-a, --all', 'show all containers (default: running ones)')
    .option('-q, --quiet', 'only IDs')
    .option('-f, --filter <key=value>', 'filter (label, name, id, status, ancestor, network, exited)', collect)
    .option('--format <template>', 'Go-template-like format, or json')
    .option('--no-trunc', 'do not truncate')
    .action((o: { all?: boolean; quiet?: boolean; filter?: string[]; format?: string; trunc?: boolean }, cmd: Command) =>
      act(cmd, 1, async (c) => (await containers()).ps(c, { ...o, noTrunc: o.trunc === false }, out)));
  verb('logs', 'show a container\'s output', false)
    .option('-f, --follow', 'follow the output')
    .option('-n, --tail <n>', 'lines from the end ("all")')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <when>', 'since a duration ago (10m) or a timestamp')
    .argument('<container>')
    .action((ref: string, o: Record<string, unknown>, cmd: Command) => act(cmd, 1, async (c) => (await containers()).logs(c, ref, o)));
  verb('exec', 'run a command in a running container')
    .option('-i, --interactive', 'attach stdin')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-e, --env <NAME=VALUE>', 'environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('-d, --detach', 'run the command in the background (no output, exit 0 once it runs)')
    .argument('<container>').argument('<command...>')
    .passThroughOptions()
    .action((ref: string, command: string[], o: Record<string, unknown>, cmd: Command) => act(cmd, 126, async (c) => (await containers()).exec(c, ref, command, o)));
  verb('attach', 'attach this terminal to a running container')
    .option('--no-stdin', 'do not attach stdin')
    .argument('<container>')
    .action((ref: string, o: { stdin: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await containers()).attach(c, ref, !o.stdin)));
  verb('wait', 'block until containers stop and print their exit codes; with --for, wait as kubectl wait')
    .option('--for <condition>', 'kubectl style: delete, condition=Ready[=False], jsonpath={.status.phase}=Running')
    .option('--timeout <duration>', 'with --for: give up after this long', '30s')
    .option('-f, --filename <file>', 'with --for: the objects of these manifests (repeatable)', collect)
    .argument('[name...]')
    .action((refs: string[], o: { for?: string; timeout: string; filename?: string[] }, cmd: Command) => act(cmd, 1, async (c) => {
      if (o.for) return (await import('./declarative.ts')).waitFor(c, refs, { ...o, for: o.for }, out);
      if (!refs.length) throw new (await import('./container-spec.ts')).FlagError('wait: at least one container is required');
      for (const ref of refs) out(`${await (await containers()).waitExit(c, ref)}\n`);
      return 0;
    }));
  verb('port', 'list the published ports of a container')
    .argument('<container>').argument('[port]')
    .action((ref: string, p: string | undefined, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await containers()).port(c, ref, p, out)));
  verb('rename', 'rename a container (replaces its object)')
    .argument('<container>').argument('<new-name>')
    .action((from: string, to: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await containers()).rename(c, from, to)));
  verb('inspect', 'show the objects of containers or images')
    .option('-f, --format <template>', 'Go-template-like format over the object, e.g. {{.status.exitCode}}')
    .addOption(new Option('--type <type>', 'container or image').choices(['container', 'image']))
    .argument('<name...>')
    .action((refs: string[], o: { format?: string; type?: string }, cmd: Command) => act(cmd, 1, async (c) => {
      const m = await containers();
      const im = await images();
      const objs: unknown[] = [];
      for (const ref of refs) {
        if (o.type !== 'image') {
          try {
            objs.push(await m.findContainer(c, ref));
            continue;
          } catch (err) {
            if (o.type === 'container' || !(err instanceof m.VerbError)) throw err;
          }
        }
        objs.push(await im.findImage(c, ref).catch((err: unknown) => {
          throw err instanceof m.VerbError ? new m.VerbError(`No such object: ${ref}`) : err;
        }));
      }
      const { renderFormat } = await import('./format.ts');
      out(o.format ? renderFormat(o.format, objs as Record<string, unknown>[]) : `${JSON.stringify(objs, null, 4)}\n`);
      return 0;
    }));

  // Images
  verb('images', 'list images')
    .option('-a, --all', 'also images not Ready yet')
    .option('-q, --quiet', 'only IDs')
    .option('--format <template>', 'Go-template-like format, or json')
    .action((o: Record<string, unknown>, cmd: Command) => act(cmd, 1, async (c) => (await images()).images(c, o, out)));
  verb('pull', 'pull an image from a registry').argument('<reference>')
    .action((ref: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await images()).pull(c, ref, out)));
  verb('push', 'push an image to a registry').argument('<reference>')
    .action((ref: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await images()).push(c, ref, out)));
  verb('tag', 'add a tag to an image').argument('<source>').argument('<target>')
    .action((s: string, t: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await images()).tag(c, s, t)));
  verb('rmi', 'remove images').option('-f, --force', 'remove the image with all its tags').argument('<image...>')
    .action((refs: string[], o: { force?: boolean }, cmd: Command) => act(cmd, 1, async (c) => (await images()).rmi(c, refs, o.force ?? false, out)));
  verb('build', 'build an image from a Dockerfile')
    .option('-t, --tag <name:tag>', 'tag (repeatable)', collect)
    .option('-f, --file <path>', 'Dockerfile, relative to the context')
    .option('--build-arg <k=v>', 'build argument (repeatable)', collect)
    .option('--target <stage>', 'stage to build')
    .option('--no-cache', 'do not reuse cached layers')
    .option('-q, --quiet', 'print only the image ID')
    .argument('<context>')
    .action((dir: string, o: { tag?: string[]; file?: string; buildArg?: string[]; target?: string; cache: boolean; quiet?: boolean }, cmd: Command) =>
      act(cmd, 1, async (c) => (await images()).build(c, dir, { ...o, noCache: o.cache === false }, out)));
  verb('commit', 'create an image from a container')
    .option('-m, --message <msg>', 'commit message')
    .option('-a, --author <author>', 'author')
    .option('--no-pause', 'do not pause the container while committing')
    .argument('<container>').argument('[reference]')
    .action((ctr: string, ref: string | undefined, o: { message?: string; author?: string; pause: boolean }, cmd: Command) =>
      act(cmd, 1, async (c) => (await images()).commit(c, ctr, ref, o, out)));
  verb('save', 'write an image as a docker-archive tarball').option('-o, --output <file>', 'file (default: stdout)').argument('<image>')
    .action((ref: string, o: { output?: string }, cmd: Command) => act(cmd, 1, async (c) => (await images()).save(c, ref, o.output)));
  verb('login', 'store registry credentials for pull and push')
    .option('-u, --username <user>', 'username')
    .option('-p, --password <password>', 'password')
    .option('--password-stdin', 'read the password from stdin')
    .argument('<registry>')
    .action((reg: string, o: { username?: string; password?: string; passwordStdin?: boolean }, cmd: Command) =>
      act(cmd, 1, async (c) => {
        let password = o.password ?? '';
        if (o.passwordStdin) {
          const chunks: Buffer[] = [];
          for await (const ch of process.stdin) chunks.push(ch as Buffer);
          password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
        }
        return (await images()).login(c, reg, o.username ?? '', password, out);
      }));
  verb('logout', 'remove stored registry credentials').argument('<registry>')
    .action((reg: string, _o: unknown, cmd: Command) => act(cmd, 1, async (c) => (await images()).logout(c, reg, out)));
  registerMoreCommands(program, { withConnection, act, out, collect });
  registerComposeCommands(program);
}

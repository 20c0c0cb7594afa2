/**
 * Shell completion: `berth completion bash|zsh` prints a script that asks the
 * hidden `berth __complete -- WORD…` for candidates. The candidates come from the
 * commander program (verbs, subverbs, flags) and, for names, from the API (containers,
 * images, volumes, networks, resource types), listed with the connection flags typed
 * on the command line. A failing connection completes nothing rather than erroring.
 */
import type { Command, Option } from 'commander';
import type { Connection } from './connection.ts';

/** What a positional argument of a verb names. */
export type NameKind = 'container' | 'running-container' | 'image' | 'volume' | 'network' | 'resource' | 'cp' | 'shell';

/** Lists names of one kind (for `resource`: `get`-able types). */
export type NameLister = (kind: Exclude<NameKind, 'shell' | 'cp'>) => Promise<string[]>;

const CONTAINER_VERBS = ['start', 'restart', 'rm', 'wait', 'port', 'rename', 'logs', 'commit', 'unpause'];
const RUNNING_VERBS = ['stop', 'pause', 'kill', 'exec', 'attach', 'top', 'stats'];

/** The kind of name the `index`-th positional of the verb path `path` takes, if any. */
export function positionalKind(path: readonly string[], index: number): NameKind | 'container-or-image' | undefined {
  const verb = path.join(' ');
  if (RUNNING_VERBS.includes(verb)) return verb === 'exec' && index > 0 ? undefined : 'running-container';
  if (CONTAINER_VERBS.includes(verb)) return (verb === 'logs' || verb === 'exec' || verb === 'port' || verb === 'rename' || verb === 'commit') && index > 0 ? undefined : 'container';
  switch (verb) {
    case 'run':
    case 'create':
      return index === 0 ? 'image' : undefined;
    case 'rmi':
    case 'history':
    case 'push':
    case 'save':
      return 'image';
    case 'tag':
      return index === 0 ? 'image' : undefined;
    case 'inspect':
      return 'container-or-image';
    case 'volume rm':
    case 'volume inspect':
      return 'volume';
    case 'network rm':
    case 'network inspect':
      return 'network';
    case 'network connect':
    case 'network disconnect':
      return index === 0 ? 'network' : index === 1 ? 'container' : undefined;
    case 'get':
    case 'describe':
    case 'delete':
      return index === 0 ? 'resource' : undefined;
    case 'cp':
      return 'cp';
    case 'completion':
      return index === 0 ? 'shell' : undefined;
    default:
      return undefined;
  }
}

const visible = (c: Command): boolean => !(c as unknown as { _hidden?: boolean })._hidden;
const flagNames = (o: Option): string[] => [o.long, o.short].filter((x): x is string => !!x);
const takesValue = (o: Option): boolean => o.required || o.optional;

/** The connection flags typed in `words` (so completion lists the right server and namespace). */
export function connectionFlagsOf(words: readonly string[]): { kubeconfig?: string; context?: string; namespace?: string } {
  const out: { kubeconfig?: string; context?: string; namespace?: string } = {};
  words.forEach((w, i) => {
    const next = words[i + 1];
    const [flag, inline] = w.includes('=') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w, undefined];
    const v = inline ?? next;
    if (v === undefined) return;
    if (flag === '--kubeconfig') out.kubeconfig = v;
    else if (flag === '--context') out.context = v;
    else if (flag === '--namespace' || (flag === '-n' && i > 0)) out.namespace = v;
  });
  return out;
}

/**
 * The candidates for the last of `words` (the words after `berth`; the last may be
 * empty): subverbs, flags of the verb reached, or names of the kind its positional takes.
 */
export async function complete(program: Command, words: readonly string[], list: NameLister): Promise<string[]> {
  const cur = words[words.length - 1] ?? '';
  let cmd = program;
  const path: string[] = [];
  let positionals = 0;
  const optionsOf = (c: Command) => [...c.options, ...(c === program ? [] : program.options)];
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i]!;
    if (w.startsWith('-')) {
      const opt = optionsOf(cmd).find((o) => flagNames(o).includes(w.split('=')[0]!));
      if (opt && takesValue(opt) && !w.includes('=')) i++;
      continue;
    }
    const sub = positionals === 0 ? cmd.commands.find((c) => c.name() === w || c.aliases().includes(w)) : undefined;
    if (sub) {
      cmd = sub;
      path.push(sub.name());
    } else positionals++;
  }
  const prev = words[words.length - 2];
  const prevOpt = prev?.startsWith('-') ? optionsOf(cmd).find((o) => flagNames(o).includes(prev)) : undefined;
  if (prevOpt && takesValue(prevOpt)) {
    if (prevOpt.long === '--network') return (await list('network').catch(() => [] as string[])).filter((n) => n.startsWith(cur)).sort();
    return prevOpt.argChoices ? [...prevOpt.argChoices] : [];
  }
  if (cur.startsWith('-')) return [...new Set(optionsOf(cmd).flatMap(flagNames))].filter((f) => f.startsWith(cur)).sort();
  if (positionals === 0 && cmd.commands.some(visible)) return cmd.commands.filter(visible).map((c) => c.name()).filter((n) => n.startsWith(cur)).sort();
  const kind = positionalKind(path, positionals);
  let names: string[] = [];
  try {
    if (kind === 'shell') names = ['bash', 'zsh'];
    else if (kind === 'container-or-image') names = [...(await list('container')), ...(await list('image'))];
    else if (kind === 'cp') names = cur.includes(':') ? [] : (await list('container')).map((n) => `${n}:`);
    else if (kind) names = await list(kind);
  } catch {
    names = [];
  }
  return [...new Set(names)].filter((n) => n.startsWith(cur)).sort();
}

/** The bash completion script (`source <(berth completion bash)`). */
export const BASH_COMPLETION = `# berth bash completion: source <(berth completion bash)
_berth() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  COMPREPLY=( $(compgen -W "$(berth __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur") )
  [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} == *: ]] && compopt -o nospace 2>/dev/null
  return 0
}
complete -o default -F _berth berth
`;

/** The zsh completion script (`source <(berth completion zsh)`, or saved as `_berth` in \`$fpath\`). */
export const ZSH_COMPLETION = `#compdef berth
# berth zsh completion: source <(berth completion zsh)
_berth() {
  local -a candidates
  candidates=("\${(@f)$(berth __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=("\${(@)candidates:#}")
  compadd -S '' -- "\${(@M)candidates:#*:}"
  compadd -- "\${(@)candidates:#*:}"
}
if [ "$funcstack[1]" = "_berth" ]; then
  _berth "$@"
else
  compdef _berth berth
fi
`;

/** `completion bash|zsh`. */
export function completionScript(shell: string): string {
  if (shell === 'bash') return BASH_COMPLETION;
  if (shell === 'zsh') return ZSH_COMPLETION;
  throw new Error(`completion ${shell}: supported shells are bash and zsh`);
}

/** Lists names through the API for `complete` (containers and images by name and tag, volumes, networks, resource types). */
export function apiLister(connection: () => Connection): NameLister {
  return async (kind) => {
    const conn = connection();
    const rk = await import('../../controllers/framework/resource-kind.ts');
    const ns = { namespace: conn.namespace };
    switch (kind) {
      case 'container':
      case 'running-container': {
        const items = (await conn.client.list(rk.Container, ns)).items;
        return items.filter((c) => kind === 'container' || c.status?.phase === 'Running' || c.status?.phase === 'Paused').map((c) => c.metadata.name!);
      }
      case 'image':
        return (await conn.client.list(rk.Image, ns)).items.flatMap((i) => (i.spec.tags?.length ? i.spec.tags : [`${i.metadata.name!}:latest`]).map((t) => t.replace(/:latest$/, '')));
      case 'volume':
        return (await conn.client.list(rk.Volume, ns)).items.map((v) => v.metadata.name!);
      case 'network':
        return (await conn.client.list(rk.Network, ns)).items.map((n) => n.metadata.name!);
      case 'resource': {
        const { discover } = await import('./declarative.ts');
        return (await discover(conn)).map((r) => r.kind.plural);
      }
    }
  };
}

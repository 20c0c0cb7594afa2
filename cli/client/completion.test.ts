import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { complete, completionScript, connectionFlagsOf, type NameLister } from './completion.ts';
import { registerClientCommands } from './index.ts';

const program = new Command('berth');
registerClientCommands(program);

const NAMES: Record<string, string[]> = {
  container: ['web', 'worker', 'stopped'],
  'running-container': ['web', 'worker'],
  image: ['busybox', 'app'],
  volume: ['data'],
  network: ['front', 'back'],
  resource: ['containers', 'images'],
};
const lister: NameLister = async (kind) => NAMES[kind] ?? [];

describe('berth __complete', () => {
  it.each([
    [['ne'], ['network']],
    [['volume', ''], ['create', 'inspect', 'ls', 'prune', 'rm']],
    [['network', 'connect', ''], ['back', 'front']],
    [['network', 'connect', 'front', 'w'], ['web', 'worker']],
    [['exec', ''], ['web', 'worker']],
    [['exec', 'web', ''], []],
    [['start', 's'], ['stopped']],
    [['run', '--rm', '-e', 'A=1', 'b'], ['busybox']],
    [['run', 'busybox', ''], []],
    [['run', '--network', ''], ['back', 'front']],
    [['rmi', ''], ['app', 'busybox']],
    [['volume', 'rm', ''], ['data']],
    [['get', 'c'], ['containers']],
    [['cp', 'w'], ['web:', 'worker:']],
    [['completion', ''], ['bash', 'zsh']],
    [['--kubeconfig', 'k', 'stop', ''], ['web', 'worker']],
    [['network', 'ls', '--q'], ['--quiet']],
    [['ps', '--f'], ['--filter', '--format']],
  ])('%j → %j', async (words, want) => {
    expect(await complete(program, words, lister)).toEqual(want);
  });

  it('completes nothing when names cannot be listed', async () => {
    expect(await complete(program, ['exec', ''], async () => {
      throw new Error('ECONNREFUSED');
    })).toEqual([]);
  });

  it('hides __complete from the verbs', async () => {
    expect(await complete(program, ['__'], lister)).toEqual([]);
  });

  it('reads the connection flags typed on the line', () => {
    expect(connectionFlagsOf(['--kubeconfig', '/k', 'ps', '-n', 'team', '--context=c'])).toEqual({ kubeconfig: '/k', namespace: 'team', context: 'c' });
  });
});

describe('berth completion', () => {
  it('prints scripts for bash and zsh that ask berth __complete', () => {
    expect(completionScript('bash')).toMatch(/berth __complete -- "\$\{COMP_WORDS\[@\]:1:COMP_CWORD\}"[\s\S]*complete -o default -F _berth berth\n$/);
    expect(completionScript('zsh')).toMatch(/^#compdef berth\n[\s\S]*berth __complete -- "\$\{\(@\)words\[2,CURRENT\]\}"/);
    expect(() => completionScript('fish')).toThrow('supported shells are bash and zsh');
  });
});

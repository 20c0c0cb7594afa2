import { describe, expect, it } from 'vitest';
import { buildProgram, verbOf } from './main.ts';

describe('verbOf', () => {
  it.each([
    [['run', 'busybox'], 'run'],
    [['--kubeconfig', 'k', '-n', 'ns', '--debug', 'ps', '-a'], 'ps'],
    [['--kubeconfig=k', '--namespace=x', '--context', 'c', 'volume', 'ls'], 'volume'],
    [['--help'], undefined],
    [['-V'], undefined],
    [['help', 'run'], undefined],
    [['__complete', 'r'], undefined],
    [['-ndefault', 'ps'], undefined], // an option it does not know: the whole tree parses it
    [[], undefined],
  ])('%j → %s', (args, verb) => {
    expect(verbOf(['node', 'berth', ...args])).toBe(verb);
  });
});

describe('buildProgram(only)', () => {
  const names = (p: ReturnType<typeof buildProgram>) => p.commands.map((c) => c.name());

  it('builds only the verb asked for, the same command as in the whole tree', () => {
    const all = buildProgram();
    expect(names(all)).toEqual(expect.arrayContaining(['server', 'agent', 'run', 'ps', 'volume', 'compose', 'apply', 'completion']));
    for (const verb of ['run', 'server', 'volume', 'compose', 'logs']) {
      const one = buildProgram(verb);
      expect(one.registered).toBe(true);
      expect(names(one)).toEqual([verb]);
      const full = all.commands.find((c) => c.name() === verb)!;
      expect(one.commands[0]!.helpInformation()).toBe(full.helpInformation());
      expect(one.commands[0]!.commands.map((c) => c.name())).toEqual(full.commands.map((c) => c.name()));
    }
    // The global flags are the root's, built either way.
    expect(buildProgram('ps').options.map((o) => o.long)).toEqual(all.options.map((o) => o.long));
  });

  it('says when the verb is not one (the caller falls back to the whole tree)', () => {
    const p = buildProgram('nosuch');
    expect(p.registered).toBe(false);
    expect(p.commands).toEqual([]);
  });
});

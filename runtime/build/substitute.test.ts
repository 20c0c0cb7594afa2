import { describe, expect, it } from 'vitest';
import { GlobalArgs, StageVars } from './args.ts';
import { processWord, processWords, splitWords } from './substitute.ts';

const vars = new Map([['A', 'a'], ['EMPTY', ''], ['SP', 'x y'], ['N', 'name']]);

describe('processWord', () => {
  it.each([
    { name: 'plain $VAR', in: 'pre-$A-post', want: 'pre-a-post' },
    { name: 'braced ${VAR}', in: '${A}b', want: 'ab' },
    { name: 'unset is empty', in: '[$NOPE]', want: '[]' },
    { name: ':- default when unset', in: '${NOPE:-d}', want: 'd' },
    { name: ':- default when empty', in: '${EMPTY:-d}', want: 'd' },
    { name: '- keeps empty', in: '${EMPTY-d}', want: '' },
    { name: '- default when unset', in: '${NOPE-d}', want: 'd' },
    { name: ':+ alternative when set', in: '${A:+alt}', want: 'alt' },
    { name: ':+ nothing when empty', in: '${EMPTY:+alt}', want: '' },
    { name: '+ alternative when set but empty', in: '${EMPTY+alt}', want: 'alt' },
    { name: 'nested default', in: '${NOPE:-${A}x}', want: 'ax' },
    { name: 'single quotes are literal', in: "'$A'", want: '$A' },
    { name: 'double quotes substitute', in: '"$A b"', want: 'a b' },
    { name: 'escaped dollar', in: '\\$A', want: '$A' },
    { name: 'escaped dollar in double quotes', in: '"\\$A"', want: '$A' },
    { name: 'other escapes in double quotes stay', in: '"a\\nb"', want: 'a\\nb' },
    { name: 'dollar before a non-name is literal', in: 'cost $5', want: 'cost $5' },
    { name: 'whitespace is kept', in: 'a  $SP', want: 'a  x y' },
  ])('$name: $in', ({ in: input, want }) => {
    expect(processWord(input, vars)).toBe(want);
  });

  it('substitutes with a backtick escape', () => {
    expect(processWord('`$A $A', vars, '`')).toBe('$A a');
  });

  it.each([
    { name: 'an unterminated brace', in: '${A' },
    { name: 'an unsupported modifier', in: '${A#x}' },
    { name: ':? on an unset variable', in: '${NOPE:?must be set}' },
    { name: 'an unterminated quote', in: '"abc' },
  ])('rejects $name', ({ in: input }) => {
    expect(() => processWord(input, vars)).toThrow();
  });
});

describe('processWords and splitWords', () => {
  it.each([
    { in: '80 $N "a b"', want: ['80', 'name', 'a b'] },
    { in: '$SP z', want: ['x', 'y', 'z'] },
    { in: '"$SP" z', want: ['x y', 'z'] },
    { in: "''", want: [''] },
  ])('processWords($in)', ({ in: input, want }) => {
    expect(processWords(input, vars)).toEqual(want);
  });

  it('splits KEY=VALUE lists without removing quotes', () => {
    expect(splitWords('A=1 B="two words" C=a\\ b')).toEqual(['A=1', 'B="two words"', 'C=a\\ b']);
  });
});

describe('ARG scoping', () => {
  it.each([
    {
      name: 'a global ARG is visible to FROM only, not inside a stage',
      buildArgs: {}, global: ['V=1'], stage: [], want: { from: '1', stage: undefined },
    },
    {
      name: 'a bare ARG in the stage takes the global value',
      buildArgs: {}, global: ['V=1'], stage: ['V'], want: { from: '1', stage: '1' },
    },
    {
      name: 'a build arg overrides the global default and reaches a bare stage ARG',
      buildArgs: { V: '9' }, global: ['V=1'], stage: ['V'], want: { from: '9', stage: '9' },
    },
    {
      name: 'a stage default replaces the global value',
      buildArgs: {}, global: ['V=1'], stage: ['V=2'], want: { from: '1', stage: '2' },
    },
    {
      name: 'a build arg overrides a stage default',
      buildArgs: { V: '9' }, global: [], stage: ['V=2'], want: { from: undefined, stage: '9' },
    },
    {
      name: 'an undeclared build arg is visible nowhere',
      buildArgs: { V: '9' }, global: [], stage: [], want: { from: undefined, stage: undefined },
    },
    {
      name: 'a bare ARG without a value stays unset',
      buildArgs: {}, global: [], stage: ['V'], want: { from: undefined, stage: undefined },
    },
  ])('$name', ({ buildArgs, global, stage, want }) => {
    const g = new GlobalArgs(buildArgs as Record<string, string>);
    for (const a of global) g.declare(a);
    const s = new StageVars(g);
    for (const a of stage) s.declare(a);
    expect({ from: g.visible().get('V'), stage: s.substitution().get('V') }).toEqual(want);
  });

  it('lets ENV win over ARG, and gives RUN the ARGs ENV does not shadow', () => {
    const g = new GlobalArgs({ A: 'arg', B: 'b' });
    const s = new StageVars(g, ['A=env']);
    s.declare('A B C=c');
    expect(s.substitution().get('A')).toBe('env');
    expect(s.runArgs()).toEqual(['B=b', 'C=c']);
    expect(g.unconsumed()).toEqual([]);
  });

  it('reports build args no ARG declared, and predefines the platform ARGs globally', () => {
    const g = new GlobalArgs({ X: '1' });
    expect(g.unconsumed()).toEqual(['X']);
    expect(g.visible().get('TARGETOS')).toBe('linux');
    expect(new StageVars(g).substitution().has('TARGETOS')).toBe(false);
  });
});

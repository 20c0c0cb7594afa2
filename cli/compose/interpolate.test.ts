import { describe, expect, it } from 'vitest';
import { ComposeError, interpolate, interpolateString, parseDotenv } from './interpolate.ts';

const env = { NAME: 'web', EMPTY: '', PORT: '8080' };

describe('interpolateString', () => {
  const cases: { name: string; input: string; want: string }[] = [
    { name: 'replaces $VAR and ${VAR}', input: '$NAME-${PORT}', want: 'web-8080' },
    { name: 'turns $$ into a literal $', input: 'cost: $$5 and $${NAME}', want: 'cost: $5 and ${NAME}' },
    { name: 'uses :- defaults when unset or empty', input: '${MISSING:-a}/${EMPTY:-b}/${NAME:-c}', want: 'a/b/web' },
    { name: 'uses - defaults only when unset', input: '${MISSING-a}/${EMPTY-b}', want: 'a/' },
    { name: 'uses :+ and + replacements when set', input: '${NAME:+yes}/${EMPTY:+no}/${EMPTY+set}/${MISSING+no}', want: 'yes//set/' },
    { name: 'expands nested defaults', input: '${MISSING:-${NAME}-${OTHER:-x}}', want: 'web-x' },
    { name: 'replaces an unset variable without default by nothing', input: 'a${MISSING}b', want: 'ab' },
    { name: 'leaves a value without variables alone', input: 'plain text: 100%', want: 'plain text: 100%' },
  ];
  it.each(cases)('$name', ({ input, want }) => {
    expect(interpolateString(input, { env }, 'k')).toBe(want);
  });

  it('reports unset variables used without a default', () => {
    const unset: string[] = [];
    interpolateString('${A}${B:-x}$C', { env, onUnset: (n) => unset.push(n) }, 'k');
    expect(unset).toEqual(['A', 'C']);
  });

  const errors: { name: string; input: string; want: string }[] = [
    { name: ':? fails on an empty variable with its message', input: '${EMPTY:?must be set}', want: 'services.web.image: required variable EMPTY is missing a value: must be set' },
    { name: '? fails on an unset variable', input: '${MISSING?}', want: 'services.web.image: required variable MISSING is missing a value' },
    { name: 'an unclosed brace is an error', input: '${NAME', want: 'missing "}"' },
    { name: 'a bad variable name is an error', input: '${1X}', want: 'invalid interpolation format' },
    { name: 'a lone $ is an error', input: 'a $ b', want: 'written "$$"' },
  ];
  it.each(errors)('$name', ({ input, want }) => {
    expect(() => interpolateString(input, { env }, 'services.web.image')).toThrow(ComposeError);
    expect(() => interpolateString(input, { env }, 'services.web.image')).toThrow(want);
  });
});

describe('interpolate', () => {
  it('interpolates values but not keys, naming the key in errors', () => {
    expect(interpolate({ services: { $NAME: { ports: ['${PORT}:80', 3] } } }, { env })).toEqual({ services: { $NAME: { ports: ['8080:80', 3] } } });
    expect(() => interpolate({ services: { web: { ports: ['${X:?no port}'] } } }, { env })).toThrow('services.web.ports[0]: required variable X is missing a value: no port');
  });
});

describe('parseDotenv', () => {
  it('reads assignments, quotes, comments, export and references to earlier lines', () => {
    const text = [
      '# comment', '', 'A=1', 'export B = two ', "C='lit ${A} #x'", 'D="q\\n${A}"', 'E=${A}-${OUTER} # trailing', 'F', 'G=',
    ].join('\n');
    expect(parseDotenv(text, '.env', { OUTER: 'o', F: 'from-env' })).toEqual({ A: '1', B: 'two', C: 'lit ${A} #x', D: 'q\n1', E: '1-o', F: 'from-env', G: '' });
  });

  it('names the file and line of a bad entry', () => {
    expect(() => parseDotenv('A=1\nB="open', '/p/.env')).toThrow('/p/.env:2: unterminated double quote');
  });
});

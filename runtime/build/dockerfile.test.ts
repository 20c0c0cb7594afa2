import { describe, expect, it } from 'vitest';
import { DockerfileError, parseDockerfile, splitStages } from './dockerfile.ts';

describe('parseDockerfile', () => {
  it('parses every instruction with its keyword, line, flags and form', () => {
    const df = parseDockerfile([
      'ARG BASE=busybox',
      'FROM --platform=linux/amd64 $BASE AS build',
      'RUN echo hi',
      'RUN ["echo", "exec"]',
      'COPY --from=build --chown=1:2 --chmod=0755 a b /dst/',
      'ADD x.tar /x/',
      'ENV A=1 B="two words"',
      'WORKDIR /app',
      'USER nobody',
      'CMD ["sh"]',
      'ENTRYPOINT echo',
      'EXPOSE 80/tcp 53/udp',
      'LABEL a=b',
      'VOLUME ["/data"]',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=5s CMD true',
      'SHELL ["/bin/sh", "-ec"]',
      'MAINTAINER me',
      'onbuild RUN true',
    ].join('\n'));
    const ks = df.instructions.map((i) => `${i.line}:${i.keyword}`);
    expect(ks).toEqual([
      '1:ARG', '2:FROM', '3:RUN', '4:RUN', '5:COPY', '6:ADD', '7:ENV', '8:WORKDIR', '9:USER', '10:CMD', '11:ENTRYPOINT',
      '12:EXPOSE', '13:LABEL', '14:VOLUME', '15:STOPSIGNAL', '16:HEALTHCHECK', '17:SHELL', '18:MAINTAINER', '19:ONBUILD',
    ]);
    const from = df.instructions[1]!;
    expect(from.flags.get('platform')).toBe('linux/amd64');
    expect(from.args).toBe('$BASE AS build');
    expect(df.instructions[2]!.json).toBeUndefined();
    expect(df.instructions[3]!.json).toEqual(['echo', 'exec']);
    const copy = df.instructions[4]!;
    expect(Object.fromEntries(copy.flags)).toEqual({ from: 'build', chown: '1:2', chmod: '0755' });
    expect(copy.args).toBe('a b /dst/');
    expect(df.instructions[15]!.flags.get('interval')).toBe('5s');
    expect(df.instructions[15]!.args).toBe('CMD true');
  });

  it.each([
    {
      name: 'joins continuation lines and keeps the first line number',
      text: 'FROM scratch\nRUN echo a \\\n    b \\\n  c\nCMD x',
      want: [{ keyword: 'RUN', line: 2, endLine: 4, args: 'echo a     b   c' }],
    },
    {
      name: 'drops comment and blank lines inside a continuation',
      text: 'FROM scratch\nRUN echo a \\\n# a comment\n\n  b',
      want: [{ keyword: 'RUN', line: 2, endLine: 5, args: 'echo a   b' }],
    },
    {
      name: 'uses the backtick as continuation with the escape directive',
      text: '# escape=`\nFROM scratch\nRUN dir c:\\ `\n  /s',
      want: [{ keyword: 'RUN', line: 3, endLine: 4, args: 'dir c:\\   /s' }],
    },
    {
      name: 'treats a backslash as text when the escape is a backtick',
      text: '# escape=`\nFROM scratch\nCOPY a\\ b /c',
      want: [{ keyword: 'COPY', line: 3, endLine: 3, args: 'a\\ b /c' }],
    },
    {
      name: 'falls back to the shell form when the JSON is invalid',
      text: 'FROM scratch\nCMD [echo, hi]',
      want: [{ keyword: 'CMD', line: 2, endLine: 2, args: '[echo, hi]' }],
    },
    {
      name: 'ignores comments and indentation, keywords in any case',
      text: '# comment\n\n  from scratch\n\t# another\n  run true',
      want: [{ keyword: 'RUN', line: 5, endLine: 5, args: 'true' }],
    },
  ])('$name', ({ text, want }) => {
    const df = parseDockerfile(text);
    const got = df.instructions.filter((i) => i.keyword !== 'FROM').slice(0, want.length)
      .map((i) => ({ keyword: i.keyword, line: i.line, endLine: i.endLine, args: i.args }));
    expect(got).toEqual(want);
  });

  it('reads parser directives only at the top', () => {
    expect(parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch').directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '`' });
    const late = parseDockerfile('# hello\n# escape=`\nFROM scratch');
    expect(late.directives).toEqual({});
    expect(late.escape).toBe('\\');
  });

  it.each([
    { name: 'an unknown instruction', text: 'FROM scratch\n\nFOO bar', line: 3, msg: 'unknown instruction: FOO' },
    { name: 'an instruction without arguments', text: 'FROM scratch\nRUN', line: 2, msg: 'RUN requires at least one argument' },
    { name: 'an invalid escape directive', text: '# escape=x\nFROM scratch', line: 1, msg: 'invalid escape token' },
    { name: 'an instruction before FROM', text: '# c\nRUN true\nFROM scratch', line: 2, msg: 'RUN before the first FROM' },
    { name: 'a file without FROM', text: 'ARG A', line: 1, msg: 'no FROM instruction' },
    { name: 'a repeated directive', text: '# escape=`\n# escape=\\\nFROM scratch', line: 2, msg: 'only one escape' },
    { name: 'an unknown instruction after a continuation', text: 'FROM scratch\nRUN a \\\n  b\nBAD x', line: 4, msg: 'unknown instruction: BAD' },
  ])('rejects $name with its line number', ({ text, line, msg }) => {
    let err: unknown;
    try {
      parseDockerfile(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect((err as DockerfileError).line).toBe(line);
    expect((err as Error).message).toContain(`Dockerfile line ${line}: `);
    expect((err as Error).message).toContain(msg);
  });
});

describe('splitStages', () => {
  it('separates global ARGs and named stages', () => {
    const s = splitStages(parseDockerfile('ARG V=1\nFROM busybox AS Build\nRUN a\nFROM build\nRUN b'));
    expect(s.metaArgs.map((a) => a.args)).toEqual(['V=1']);
    expect(s.stages.map((x) => ({ name: x.name, n: x.instructions.length }))).toEqual([{ name: 'build', n: 1 }, { name: undefined, n: 1 }]);
  });

  it.each([
    { name: 'a duplicate stage name', text: 'FROM a AS x\nFROM b AS x', line: 2 },
    { name: 'a malformed FROM', text: 'FROM a AS', line: 1 },
    { name: 'a stage name starting with a digit', text: 'FROM a AS 1x', line: 1 },
  ])('rejects $name with its line', ({ text, line }) => {
    expect(() => splitStages(parseDockerfile(text))).toThrow(`Dockerfile line ${line}: `);
  });
});

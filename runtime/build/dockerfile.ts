/**
 * The Dockerfile parser: text → parser directives and instructions with their
 * line numbers, as Docker's (buildkit's) parser splits them. It does not
 * substitute variables (that depends on ARG/ENV state: `substitute.ts`, done by
 * the builder) and does not check instruction semantics beyond their shape.
 *
 * Rules followed: parser directives (`# syntax=`, `# escape=`, `# check=`) only
 * before anything else; `#` comment lines (also inside continuations) and blank
 * lines ignored; a line ending in the escape character (trailing whitespace
 * allowed) continues on the next; keywords are case-insensitive; leading
 * `--name[=value]` flags are split off; arguments that are a JSON array of
 * strings are the exec form, anything else the shell form. Heredocs (`<<EOF`)
 * are not supported.
 */
import { RuntimeError } from '../cri/errors.ts';

/** Every instruction Docker knows. */
export const INSTRUCTIONS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;
export type InstructionKeyword = (typeof INSTRUCTIONS)[number];

/** One instruction as written (continuations joined, comments dropped). */
export interface Instruction {
  readonly keyword: InstructionKeyword;
  /** 1-based line of the keyword, and of the last continuation line. */
  readonly line: number;
  readonly endLine: number;
  /** Leading `--name=value` flags; a bare `--name` has value `''`. */
  readonly flags: ReadonlyMap<string, string>;
  /** The arguments after the flags, continuations joined, trimmed. */
  readonly args: string;
  /** The arguments as a JSON array of strings when they are one (exec form). */
  readonly json?: readonly string[];
  /** The whole instruction as joined text, for logs. */
  readonly original: string;
}

export interface Dockerfile {
  /** Parser directives by lowercase name (`syntax`, `escape`, `check`). */
  readonly directives: Readonly<Record<string, string>>;
  /** The escape character: `\` or `` ` ``. */
  readonly escape: string;
  readonly instructions: readonly Instruction[];
}

/** A Dockerfile that cannot be parsed or is not valid; `line` is 1-based. */
export class DockerfileError extends RuntimeError {
  constructor(readonly line: number, message: string) {
    super('InvalidArgument', `Dockerfile line ${line}: ${message}`);
  }
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const KEYWORDS = new Set<string>(INSTRUCTIONS);

/** Reads leading `--flag[=value]` words off `rest`. */
function splitFlags(rest: string, line: number): { flags: Map<string, string>; args: string } {
  const flags = new Map<string, string>();
  let s = rest;
  for (;;) {
    const m = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=("[^"]*"|\S*))?(?:\s+|$)/.exec(s);
    if (!m) break;
    const name = m[1]!;
    if (flags.has(name)) throw new DockerfileError(line, `duplicate flag --${name}`);
    let value = m[2] ?? '';
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    flags.set(name, value);
    s = s.slice(m[0].length);
  }
  return { flags, args: s.trim() };
}

/** The exec form: a JSON array of strings, else undefined (Docker falls back to the shell form). */
function parseJsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(args);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: the shell form
  }
  return undefined;
}

/**
 * Parses a Dockerfile. Rejects with `DockerfileError` (line number in the
 * message and in `line`) for an invalid escape directive, an unknown
 * instruction, an instruction without arguments, a continuation at the end of
 * the file, or a file without any instruction.
 */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: Record<string, string> = {};
  let i = 0;
  // Directives: only at the very top, each once, until the first non-directive line.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(name)) break;
    if (name in directives) throw new DockerfileError(i + 1, `only one ${name} parser directive can be used`);
    directives[name] = m[2]!;
  }
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`') throw new DockerfileError(1, `invalid escape token '${escape}' does not match ` + '` or \\');
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);

  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      i++;
      continue;
    }
    const start = i + 1;
    let joined = '';
    let current = raw.replace(/^\s+/, '');
    for (;;) {
      if (!continuation.test(current)) {
        joined += current;
        break;
      }
      joined += current.replace(continuation, '');
      i++;
      // Comment and empty lines inside a continuation are dropped, as Docker does.
      while (i < lines.length && (lines[i]!.trim() === '' || lines[i]!.trim().startsWith('#'))) i++;
      if (i >= lines.length) {
        joined = joined.trimEnd();
        i--;
        break;
      }
      current = lines[i]!;
    }
    const end = i + 1;
    i++;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(joined.trim());
    const word = m?.[1] ?? '';
    const keyword = word.toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new DockerfileError(start, `unknown instruction: ${word}`);
    const { flags, args } = splitFlags((m?.[2] ?? '').trim(), start);
    if (args === '' && keyword !== 'HEALTHCHECK') throw new DockerfileError(start, `${keyword} requires at least one argument`);
    const json = parseJsonArray(args);
    instructions.push({
      keyword: keyword as InstructionKeyword,
      line: start,
      endLine: end,
      flags,
      args,
      ...(json && { json }),
      original: joined.trim(),
    });
  }
  if (!instructions.some((x) => x.keyword === 'FROM')) {
    throw new DockerfileError(Math.max(1, instructions[0]?.line ?? 1), 'no FROM instruction: a Dockerfile must start a stage with FROM');
  }
  const first = instructions.find((x) => x.keyword !== 'ARG');
  if (first && first.keyword !== 'FROM') throw new DockerfileError(first.line, `${first.keyword} before the first FROM: only ARG may come before FROM`);
  return { directives, escape, instructions };
}

/** One build stage: its FROM and the instructions up to the next FROM. */
export interface Stage {
  /** Position among the stages, from 0. */
  readonly index: number;
  /** The `AS name`, lowercased, when given. */
  readonly name?: string;
  readonly from: Instruction;
  readonly instructions: readonly Instruction[];
}

/** ARG instructions before the first FROM, and the stages. */
export interface StagedDockerfile {
  readonly metaArgs: readonly Instruction[];
  readonly stages: readonly Stage[];
}

/**
 * Splits instructions into the global ARGs and stages, reading `FROM image [AS
 * name]` for the stage name. Rejects with `DockerfileError` for a malformed
 * FROM, an invalid or duplicate stage name.
 */
export function splitStages(df: Dockerfile): StagedDockerfile {
  const metaArgs: Instruction[] = [];
  const stages: { index: number; name?: string; from: Instruction; instructions: Instruction[] }[] = [];
  const names = new Set<string>();
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/);
      let name: string | undefined;
      if (words.length === 3 && words[1]!.toUpperCase() === 'AS') name = words[2]!.toLowerCase();
      else if (words.length !== 1) throw new DockerfileError(ins.line, 'FROM requires either one argument, or three: FROM <source> [AS <name>]');
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw new DockerfileError(ins.line, `invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
        if (names.has(name)) throw new DockerfileError(ins.line, `duplicate name for build stage: "${name}"`);
        names.add(name);
      }
      stages.push({ index: stages.length, ...(name !== undefined && { name }), from: ins, instructions: [] });
    } else if (stages.length === 0) {
      metaArgs.push(ins);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { metaArgs, stages };
}

/**
 * Variable substitution in Dockerfile arguments, as Docker's shell lexer
 * (`moby/buildkit/frontend/dockerfile/shell`) does it: `$VAR`, `${VAR}`,
 * `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
 * `${VAR:+alt}` / `${VAR+alt}`, `${VAR:?message}` / `${VAR?message}`;
 * single quotes keep text literal, double quotes allow substitution, the
 * escape character makes the next character literal; quotes are removed.
 */
import { RuntimeError } from '../cri/errors.ts';

/** Variables visible to a substitution: name → value (absent: unset). */
export type Variables = ReadonlyMap<string, string>;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const WHITESPACE = /[ \t\r\n]/;

/** A substitution error (bad syntax, `${X:?msg}` with X unset); the builder adds the line. */
export class SubstitutionError extends RuntimeError {
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}

class Lexer {
  private pos = 0;
  /** Words completed so far (for `words` mode). */
  readonly words: string[] = [];
  private word = '';
  /** Whether `word` has content or quotes (`""` is a word). */
  private inWord = false;

  constructor(
    private readonly src: string,
    private readonly vars: Variables,
    private readonly escape: string,
    private readonly split: boolean,
  ) {}

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private append(s: string, splittable = false): void {
    if (!this.split || !splittable) {
      this.word += s;
      this.inWord = true;
      return;
    }
    // Unquoted expansion: its whitespace separates words.
    for (const ch of s) {
      if (WHITESPACE.test(ch)) this.endWord();
      else {
        this.word += ch;
        this.inWord = true;
      }
    }
  }

  private endWord(): void {
    if (this.inWord) this.words.push(this.word);
    this.word = '';
    this.inWord = false;
  }

  /** Processes until `stop` (unquoted, unescaped) or the end; returns the text (single mode). */
  run(stop?: string): string {
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos]!;
      if (stop !== undefined && ch === stop) break;
      if (this.split && stop === undefined && WHITESPACE.test(ch)) {
        this.pos++;
        this.endWord();
        continue;
      }
      if (ch === "'") this.singleQuoted();
      else if (ch === '"') this.doubleQuoted();
      else if (ch === '$') this.append(this.dollar(), true);
      else if (ch === this.escape) {
        this.pos++;
        const next = this.src[this.pos];
        if (next === undefined) this.append(ch);
        else {
          this.append(next);
          this.pos++;
        }
      } else {
        this.append(ch);
        this.pos++;
      }
    }
    const text = this.word;
    if (stop === undefined) this.endWord();
    return text;
  }

  private singleQuoted(): void {
    this.pos++;
    const end = this.src.indexOf("'", this.pos);
    if (end < 0) throw new SubstitutionError(`unexpected end of statement while looking for matching single-quote in ${JSON.stringify(this.src)}`);
    this.append(this.src.slice(this.pos, end));
    this.inWord = true;
    this.pos = end + 1;
  }

  private doubleQuoted(): void {
    this.pos++;
    let out = '';
    for (;;) {
      const ch = this.src[this.pos];
      if (ch === undefined) throw new SubstitutionError(`unexpected end of statement while looking for matching double-quote in ${JSON.stringify(this.src)}`);
      if (ch === '"') {
        this.pos++;
        break;
      }
      if (ch === '$') out += this.dollar();
      else if (ch === this.escape) {
        const next = this.src[this.pos + 1];
        // Inside double quotes the escape only applies to ", $ and itself.
        if (next === '"' || next === '$' || next === this.escape) {
          out += next;
          this.pos += 2;
        } else {
          out += ch;
          this.pos++;
        }
      } else {
        out += ch;
        this.pos++;
      }
    }
    this.append(out);
    this.inWord = true;
  }

  /** At `$`: the expansion's text. */
  private dollar(): string {
    this.pos++;
    const ch = this.peek();
    if (ch === '{') {
      this.pos++;
      const name = this.name();
      if (name === '') throw new SubstitutionError(`missing variable name in ${JSON.stringify(this.src)}`);
      const next = this.peek();
      if (next === '}') {
        this.pos++;
        return this.vars.get(name) ?? '';
      }
      let colon = false;
      let op = next;
      if (op === ':') {
        colon = true;
        this.pos++;
        op = this.peek();
      }
      if (op !== '-' && op !== '+' && op !== '?') {
        throw new SubstitutionError(`unsupported modifier (${colon ? ':' : ''}${op ?? 'end'}) in substitution ${JSON.stringify(this.src)}`);
      }
      this.pos++;
      const word = this.nested();
      const value = this.vars.get(name);
      const isSet = value !== undefined && (!colon || value !== '');
      if (op === '-') return isSet ? value! : word;
      if (op === '+') return isSet ? word : '';
      if (!isSet) throw new SubstitutionError(`${name}: ${word || 'is not allowed to be unset'}`);
      return value!;
    }
    if (ch !== undefined && NAME_START.test(ch)) return this.vars.get(this.name()) ?? '';
    // `$` before anything else is literal.
    return '$';
  }

  /** The word after a modifier, up to the closing brace, itself substituted. */
  private nested(): string {
    const inner = new Lexer(this.src, this.vars, this.escape, false);
    inner.pos = this.pos;
    const text = inner.run('}');
    if (inner.peek() !== '}') throw new SubstitutionError(`missing '}' in ${JSON.stringify(this.src)}`);
    this.pos = inner.pos + 1;
    return text;
  }

  private name(): string {
    const start = this.pos;
    while (this.pos < this.src.length && NAME_CHAR.test(this.src[this.pos]!)) this.pos++;
    return this.src.slice(start, this.pos);
  }
}

/** Substitutes variables in `word` and removes quotes (Docker's `ProcessWord`). */
export function processWord(word: string, vars: Variables, escape = '\\'): string {
  return new Lexer(word, vars, escape, false).run();
}

/**
 * Splits `text` into words on unquoted whitespace, substituting variables;
 * unquoted expansions are split too (Docker's `ProcessWords`, used for
 * EXPOSE, VOLUME and similar lists).
 */
export function processWords(text: string, vars: Variables, escape = '\\'): string[] {
  const lexer = new Lexer(text, vars, escape, true);
  lexer.run();
  return lexer.words;
}

/**
 * Splits `text` on unquoted whitespace without substituting or removing quotes
 * (Docker's `parseWords`), for `KEY=VALUE` lists (ENV, LABEL, ARG).
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === undefined && WHITESPACE.test(ch)) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      word += ch + text[i + 1]!;
      i++;
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
    word += ch;
  }
  if (word !== '') words.push(word);
  return words;
}

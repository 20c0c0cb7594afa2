/**
 * Label and field selectors, parsed and matched as apimachinery does
 * (`k8s.io/apimachinery/pkg/labels` and `.../fields`): the same grammar, the same
 * validation, the same error texts, so kubectl users see the messages they know.
 * Pure: no I/O. Syntax errors are thrown as 400 `ApiError`s (`badRequest`).
 */
import { badRequest } from '../errors.ts';

/** A parsed `labelSelector`. */
export interface LabelSelector {
  /** True when the selector has no requirements and so matches everything. */
  readonly empty: boolean;
  /** Whether an object with these labels is selected; missing labels are no labels. */
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
  /** The canonical form: requirements sorted by key, values sorted, as kube prints it. */
  toString(): string;
}

/** One `field=value` or `field!=value` term of a field selector (`==` is reported as `=`). */
export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

/** A parsed `fieldSelector`. */
export interface FieldSelector {
  /** True when the selector has no terms and so matches everything. */
  readonly empty: boolean;
  /** The terms, sorted as kube sorts them (by their text). */
  readonly requirements: readonly FieldRequirement[];
  /**
   * Whether every term holds for `obj`. A field is read by its dotted path; a missing
   * field reads as `""`; numbers and booleans compare by their decimal/`true` text.
   */
  matches(obj: object): boolean;
  /** The value of a `metadata.name=` (or `==`) term, if there is one: the selector names one object. */
  exactName(): string | undefined;
}

// ---------------------------------------------------------------------------
// Validation, with apimachinery's messages (`util/validation`).

const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const QUALIFIED_NAME = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const LABEL_VALUE = new RegExp(`^${LABEL_VALUE_FMT}$`);
const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);

/** apimachinery's `RegexError`, including its double space before each "or". */
const regexError = (msg: string, fmt: string, ...examples: string[]): string =>
  examples.length === 0
    ? `${msg} (regex used for validation is '${fmt}')`
    : `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;

const QUALIFIED_NAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** `validation.IsQualifiedName`: the problems with a label key, empty when it is valid. */
function qualifiedNameErrors(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else {
      if (prefix.length > 253) errs.push('prefix part must be no more than 253 characters');
      if (!DNS1123_SUBDOMAIN.test(prefix))
        errs.push(
          'prefix part ' +
            regexError(
              "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
              DNS1123_SUBDOMAIN_FMT,
              'example.com',
            ),
        );
    }
  } else {
    return [
      'a qualified name ' +
        regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc') +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  if (!QUALIFIED_NAME.test(name)) errs.push('name part ' + regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc'));
  return errs;
}

/** `validation.IsValidLabelValue`. */
function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(value))
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  return errs;
}

/** `field.Invalid(path, value, detail).Error()`; the parser's path is nil, printed `<nil>`. */
const invalidText = (path: string, value: string, detail: string): string => `${path}: Invalid value: ${JSON.stringify(value)}: ${detail}`;

// ---------------------------------------------------------------------------
// Label selector lexer and parser (`labels/selector.go`).

type Tok =
  | 'id'
  | 'in'
  | 'notin'
  | '('
  | ')'
  | ','
  | '!'
  | '='
  | '=='
  | '!='
  | '>'
  | '<'
  | 'eos'
  | 'error';

interface Item {
  readonly tok: Tok;
  readonly lit: string;
}

const SYMBOLS: Record<string, Tok> = { ')': ')', ',': ',', '!': '!', '==': '==', '=': '=', '>': '>', '<': '<', '!=': '!=', '(': '(' };
const isWhitespace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isSpecial = (c: string): boolean => '=!(),><'.includes(c);

function lex(s: string): Item[] {
  const out: Item[] = [];
  let i = 0;
  for (;;) {
    while (i < s.length && isWhitespace(s[i]!)) i++;
    if (i >= s.length) {
      out.push({ tok: 'eos', lit: '' });
      return out;
    }
    if (isSpecial(s[i]!)) {
      // Longest run of special characters that is still a known symbol.
      let buf = '';
      let last: Item | undefined;
      while (i < s.length && isSpecial(s[i]!)) {
        buf += s[i]!;
        const t = SYMBOLS[buf];
        if (t) {
          last = { tok: t, lit: buf };
          i++;
        } else if (last) break;
        else i++;
      }
      out.push(last ?? { tok: 'error', lit: `error expected: keyword found '${buf}'` });
      continue;
    }
    let j = i;
    while (j < s.length && !isWhitespace(s[j]!) && !isSpecial(s[j]!)) j++;
    const word = s.slice(i, j);
    i = j;
    out.push({ tok: word === 'in' ? 'in' : word === 'notin' ? 'notin' : 'id', lit: word });
  }
}

type Operator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | 'gt' | 'lt';

interface Requirement {
  readonly key: string;
  readonly op: Operator;
  /** Sorted, without duplicates. */
  readonly values: readonly string[];
}

class SelectorParser {
  private pos = 0;
  constructor(private readonly items: readonly Item[]) {}

  /** In the `Values` context the keywords `in` and `notin` are plain identifiers. */
  private lookahead(values = true): Item {
    const it = this.items[this.pos]!;
    return values && (it.tok === 'in' || it.tok === 'notin') ? { tok: 'id', lit: it.lit } : it;
  }

  private consume(values = true): Item {
    const it = this.lookahead(values);
    if (this.pos < this.items.length - 1) this.pos++;
    return it;
  }

  parse(): Requirement[] {
    const reqs: Requirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead();
      if (tok === 'eos') return reqs;
      if (tok !== 'id' && tok !== '!') throw new Error(`found '${lit}', expected: !, identifier, or 'end of string'`);
      let r: Requirement;
      try {
        r = this.requirement();
      } catch (e) {
        throw new Error(`unable to parse requirement: ${(e as Error).message}`);
      }
      reqs.push(r);
      const next = this.consume();
      if (next.tok === 'eos') return reqs;
      if (next.tok !== ',') throw new Error(`found '${next.lit}', expected: ',' or 'end of string'`);
      const after = this.lookahead();
      if (after.tok !== 'id' && after.tok !== '!') throw new Error(`found '${after.lit}', expected: identifier after ','`);
    }
  }

  private requirement(): Requirement {
    let { tok, lit } = this.consume();
    let op: Operator | undefined;
    if (tok === '!') {
      op = '!';
      ({ tok, lit } = this.consume());
    }
    if (tok !== 'id') throw new Error(`found '${lit}', expected: identifier`);
    const key = lit;
    const keyErrs = qualifiedNameErrors(key);
    if (keyErrs.length) throw new Error(invalidText('<nil>', key, keyErrs.join('; ')));
    const t = this.lookahead().tok;
    if (op === '!') return newRequirement(key, '!', []);
    if (t === 'eos' || t === ',') return newRequirement(key, 'exists', []);

    const o = this.consume(false);
    const ops: Partial<Record<Tok, Operator>> = { in: 'in', notin: 'notin', '=': '=', '==': '==', '!=': '!=', '>': 'gt', '<': 'lt' };
    op = ops[o.tok];
    if (!op) throw new Error(`found '${o.lit}', expected: in, notin, =, ==, !=, gt, lt`);
    const values = op === 'in' || op === 'notin' ? this.valueSet() : this.exactValue();
    return newRequirement(key, op, values);
  }

  private valueSet(): string[] {
    const open = this.consume();
    if (open.tok !== '(') throw new Error(`found '${open.lit}' expected: '('`);
    const first = this.lookahead();
    if (first.tok === ')') {
      this.consume();
      return [''];
    }
    if (first.tok !== 'id' && first.tok !== ',') throw new Error(`found '${first.lit}', expected: ',', ')' or identifier`);
    const s = new Set<string>();
    for (;;) {
      const it = this.consume();
      if (it.tok === 'id') {
        s.add(it.lit);
        const n = this.lookahead();
        if (n.tok === ',') continue;
        if (n.tok === ')') break;
        throw new Error(`found '${n.lit}', expected: ',' or ')'`);
      } else if (it.tok === ',') {
        if (s.size === 0) s.add(''); // "(,"
        const n = this.lookahead();
        if (n.tok === ')') {
          s.add(''); // ",)"
          break;
        }
        if (n.tok === ',') {
          this.consume();
          s.add(''); // ",,"
        }
      } else throw new Error(`found '${it.lit}', expected: ',', or identifier`);
    }
    const close = this.consume();
    if (close.tok !== ')') throw new Error(`found '${first.lit}', expected: ')'`);
    return [...s];
  }

  private exactValue(): string[] {
    const t = this.lookahead();
    if (t.tok === 'eos' || t.tok === ',') return [''];
    const it = this.consume();
    if (it.tok === 'id') return [it.lit];
    throw new Error(`found '${it.lit}', expected: identifier`);
  }
}

/** `labels.NewRequirement`: checks the values against the operator; several errors print as `[a, b]`. */
function newRequirement(key: string, op: Operator, vals: string[]): Requirement {
  const errs: string[] = [];
  const values = [...new Set(vals)].sort();
  if ((op === 'gt' || op === 'lt') && values.length !== 1)
    errs.push(invalidText('values', values.join(','), "for 'Gt', 'Lt' operators, exactly one value is required"));
  if (op === 'gt' || op === 'lt')
    values.forEach((v, i) => {
      if (!/^[+-]?\d+$/.test(v)) errs.push(invalidText(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
    });
  values.forEach((v, i) => {
    const e = labelValueErrors(v);
    if (e.length) errs.push(invalidText(`values[${i}][${key}]`, v, e.join('; ')));
  });
  if (errs.length === 1) throw new Error(errs[0]);
  if (errs.length > 1) throw new Error(`[${errs.join(', ')}]`);
  return { key, op, values };
}

function requirementMatches(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels[r.key]! : undefined;
  switch (r.op) {
    case '=':
    case '==':
    case 'in':
      return has && r.values.includes(v!);
    case '!=':
    case 'notin':
      return !has || !r.values.includes(v!);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || !/^[+-]?\d+$/.test(v!)) return false;
      const a = BigInt(v!);
      const b = BigInt(r.values[0]!);
      return r.op === 'gt' ? a > b : a < b;
    }
  }
}

function requirementString(r: Requirement): string {
  switch (r.op) {
    case 'exists':
      return r.key;
    case '!':
      return `!${r.key}`;
    case 'in':
    case 'notin':
      return `${r.key} ${r.op} (${r.values.join(',')})`;
    case 'gt':
      return `${r.key}>${r.values[0]}`;
    case 'lt':
      return `${r.key}<${r.values[0]}`;
    default:
      return `${r.key}${r.op}${r.values[0]}`;
  }
}

/**
 * Parses a label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`
 * (and kube's `k>1`, `k<1`), joined by commas outside parentheses, with any whitespace
 * between tokens. Keys may carry a DNS prefix (`app.kubernetes.io/name`). The empty
 * string selects everything.
 *
 * @throws ApiError 400 BadRequest with apimachinery's text, e.g.
 *   `unable to parse requirement: <nil>: Invalid value: "-x": name part must consist of …`
 *   or `found ')', expected: !, identifier, or 'end of string'`.
 */
export function parseLabelSelector(s: string): LabelSelector {
  let reqs: Requirement[];
  try {
    reqs = new SelectorParser(lex(s)).parse();
  } catch (e) {
    throw badRequest((e as Error).message);
  }
  // Stable sort by key, as kube's `ByKey`.
  reqs = reqs.map((r, i) => [r, i] as const).sort(([a, i], [b, j]) => (a.key < b.key ? -1 : a.key > b.key ? 1 : i - j)).map(([r]) => r);
  const text = reqs.map(requirementString).join(',');
  return {
    empty: reqs.length === 0,
    matches: (labels) => reqs.every((r) => requirementMatches(r, labels ?? {})),
    toString: () => text,
  };
}

// ---------------------------------------------------------------------------
// Field selectors (`fields/selector.go`).

/** Splits on commas that are not escaped with a backslash. */
function splitTerms(s: string): string[] {
  if (s.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** The first `!=`, `==` or `=` splits the term; the field part cannot be escaped. */
function splitTerm(term: string): { lhs: string; op: '=' | '==' | '!='; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '='] as const) if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
  }
  return undefined;
}

/** Undoes `\\`, `\,` and `\=`; a bare `,` or `=` in a value is an error, as in kube. */
function unescapeValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') throw badRequest(`invalid field selector: invalid escape sequence: \\${c}`);
      out += c;
      inSlash = false;
    } else if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') throw badRequest(`invalid field selector: unescaped character in value: ${c}`);
    else out += c;
  }
  if (inSlash) throw badRequest('invalid field selector: invalid escape sequence: \\');
  return out;
}

/** Reads a dotted path; missing reads as `""`, scalars as their text, objects as JSON. */
function fieldValue(obj: object, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '';
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'number' || typeof cur === 'boolean' || typeof cur === 'bigint') return String(cur);
  return JSON.stringify(cur);
}

const ALWAYS_SELECTABLE = ['metadata.name', 'metadata.namespace'];

/**
 * Parses a field selector: `f=v`, `f==v`, `f!=v` joined by commas; `\,`, `\=` and `\\`
 * escape those characters in values. Surrounding whitespace of a field name is ignored.
 * `metadata.name` and `metadata.namespace` are always selectable; any other field must
 * be listed in `allowed` (a resource's `selectableFields`).
 *
 * @throws ApiError 400 `field label not supported: <f>` for other fields, or
 *   `invalid selector: '<s>'; can't understand '<term>'` for a term with no operator.
 */
export function parseFieldSelector(s: string, allowed: readonly string[]): FieldSelector {
  const parts = splitTerms(s).sort();
  const requirements: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === '') continue;
    const t = splitTerm(part);
    if (!t) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const field = t.lhs.trim();
    const value = unescapeValue(t.rhs);
    if (!ALWAYS_SELECTABLE.includes(field) && !allowed.includes(field)) throw badRequest(`field label not supported: ${field}`);
    requirements.push({ field, op: t.op === '!=' ? '!=' : '=', value });
  }
  return {
    empty: requirements.length === 0,
    requirements,
    matches: (obj) => requirements.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === '=')),
    exactName: () => requirements.find((r) => r.field === 'metadata.name' && r.op === '=')?.value,
  };
}

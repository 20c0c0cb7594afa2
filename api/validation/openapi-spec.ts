/**
 * Loading `openapi.yaml`, the single source of the API's schemas, and walking its
 * component schemas. Shared by the validator, the served OpenAPI documents and the
 * generators in `scripts/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** An OpenAPI 3.0 schema object, as parsed from YAML. Loose on purpose: it is data. */
export type SchemaObject = { [key: string]: any };

/** The parts of an OpenAPI 3.0 document that berth reads. */
export interface OpenApiSpec {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, unknown>;
  components: { schemas: Record<string, SchemaObject> };
}

/**
 * Absolute path of `openapi.yaml` at the repository root: the nearest one above this
 * module (the sources sit two levels below the root, the `dist/` bundle one).
 */
export const OPENAPI_PATH: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'openapi.yaml');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('openapi.yaml not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
})();

/** The `$ref` prefix of component schemas in `openapi.yaml`. */
export const COMPONENT_REF_PREFIX = '#/components/schemas/';

/**
 * Reads and parses `openapi.yaml` (or another file of the same shape).
 * Returns a fresh object on every call: callers may mutate it.
 * Throws if the file is missing or has no `components.schemas`.
 */
export function loadOpenApiSpec(path: string = OPENAPI_PATH): OpenApiSpec {
  const spec = parse(readFileSync(path, 'utf8')) as OpenApiSpec;
  if (!spec?.components?.schemas) throw new Error(`${path}: no components.schemas`);
  return spec;
}

/** The component name a `$ref` points to, or undefined for other refs. */
export function refName(ref: unknown): string | undefined {
  return typeof ref === 'string' && ref.startsWith(COMPONENT_REF_PREFIX) ? ref.slice(COMPONENT_REF_PREFIX.length) : undefined;
}

/** Calls `visit` on every `$ref` to a component schema found anywhere under `node`. */
export function forEachRef(node: unknown, visit: (name: string) => void): void {
  if (Array.isArray(node)) {
    for (const v of node) forEachRef(v, visit);
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      const name = k === '$ref' ? refName(v) : undefined;
      if (name !== undefined) visit(name);
      else forEachRef(v, visit);
    }
  }
}

/**
 * The component schemas reachable from `roots` through `$ref`s, roots included,
 * in discovery order. Throws on a `$ref` to a schema that does not exist.
 */
export function refClosure(schemas: Record<string, SchemaObject>, roots: Iterable<string>): string[] {
  const seen = new Set<string>();
  const walk = (name: string, from: string): void => {
    if (seen.has(name)) return;
    if (!schemas[name]) throw new Error(`openapi.yaml: ${from} refers to missing schema ${name}`);
    seen.add(name);
    forEachRef(schemas[name], (n) => walk(n, name));
  };
  for (const r of roots) walk(r, 'root');
  return [...seen];
}

/** Deep copy of `node` with every component `$ref` passed through `rename`. */
export function rewriteRefs<T>(node: T, rename: (name: string) => string): T {
  if (Array.isArray(node)) return node.map((v) => rewriteRefs(v, rename)) as T;
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      const name = k === '$ref' ? refName(v) : undefined;
      out[k] = name !== undefined ? rename(name) : rewriteRefs(v, rename);
    }
    return out as T;
  }
  return node;
}

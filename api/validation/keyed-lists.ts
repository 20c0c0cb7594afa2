/**
 * The keyed lists of a kind: arrays its schema in `openapi.yaml` marks
 * `x-kubernetes-list-type: map` with `x-kubernetes-list-map-keys`, found by walking the
 * schema from the kind down. Server-side apply merges such lists item by item (matched
 * on the key fields) instead of replacing them whole, and names items in
 * `managedFields` as `k:{"containerPort":80,"protocol":"TCP"}`. A key field an item
 * leaves out takes its schema `default`, as structured-merge-diff does, so an applied
 * `{containerPort: 80}` is the stored `{containerPort: 80, protocol: TCP}`.
 */
import { refName, type SchemaObject } from './openapi-spec.ts';

/** A keyed list: its key fields, and the defaults of those that have one. */
export interface KeyedList {
  readonly keys: readonly string[];
  readonly keyDefaults: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The keyed lists reachable from component schema `root`, by field path from the
 * object's root with list items unnamed (`spec.ports`, `spec.template.spec.env`,
 * `metadata.ownerReferences`, `status.conditions`).
 */
export function keyedListsOf(schemas: Record<string, SchemaObject>, root: string): Map<string, KeyedList> {
  const out = new Map<string, KeyedList>();
  const walk = (node: SchemaObject | undefined, path: readonly string[], stack: readonly string[]): void => {
    if (!node || typeof node !== 'object') return;
    const ref = refName(node.$ref);
    if (ref !== undefined) {
      if (stack.includes(ref)) return; // a recursive schema: its lists were found on the first pass
      walk(schemas[ref], path, [...stack, ref]);
      return;
    }
    for (const part of node.allOf ?? []) walk(part, path, stack);
    if (node.type === 'array' || node.items) {
      const item = resolve(schemas, node.items);
      const keys = node['x-kubernetes-list-map-keys'];
      if (node['x-kubernetes-list-type'] === 'map' && Array.isArray(keys) && keys.length) {
        const keyDefaults: Record<string, string | number | boolean> = {};
        for (const k of keys as string[]) {
          const d = resolve(schemas, item?.properties?.[k])?.default;
          if (['string', 'number', 'boolean'].includes(typeof d)) keyDefaults[k] = d;
        }
        out.set(path.join('.'), { keys: keys as string[], keyDefaults });
      }
      walk(node.items, path, stack);
      return;
    }
    for (const [name, prop] of Object.entries((node.properties ?? {}) as Record<string, SchemaObject>)) walk(prop, [...path, name], stack);
  };
  walk({ $ref: `#/components/schemas/${root}` }, [], []);
  return out;
}

/** `node` with a `$ref` (or a lone `allOf: [$ref]`) followed to the component schema. */
function resolve(schemas: Record<string, SchemaObject>, node: SchemaObject | undefined): SchemaObject | undefined {
  const ref = refName(node?.$ref) ?? (node?.allOf?.length === 1 ? refName(node.allOf[0]?.$ref) : undefined);
  return ref !== undefined ? schemas[ref] : node;
}

import { describe, expect, it } from 'vitest';
import { keyedListsOf } from './keyed-lists.ts';
import { loadOpenApiSpec } from './openapi-spec.ts';

describe('keyedListsOf', () => {
  const schemas = loadOpenApiSpec().components.schemas;

  it("finds a kind's keyed lists in openapi.yaml, through $ref and allOf, with the defaults of their key fields", () => {
    const container = keyedListsOf(schemas, 'Container');
    expect(container.get('spec.ports')).toEqual({ keys: ['containerPort', 'protocol'], keyDefaults: { protocol: 'TCP' } });
    expect(container.get('spec.env')).toEqual({ keys: ['name'], keyDefaults: {} });
    expect(container.get('spec.volumeMounts')?.keys).toEqual(['mountPath']);
    expect(container.get('metadata.ownerReferences')?.keys).toEqual(['uid']);
    expect(container.get('status.conditions')?.keys).toEqual(['type']);
    expect(container.has('spec.command')).toBe(false); // atomic
    expect(keyedListsOf(schemas, 'Service').get('spec.template.spec.ports')?.keyDefaults).toEqual({ protocol: 'TCP' });
  });

  it('walks a recursive schema once', () => {
    const lists = keyedListsOf(
      {
        Tree: {
          type: 'object',
          properties: {
            children: { type: 'array', items: { $ref: '#/components/schemas/Tree' }, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] },
            id: { type: 'string', default: 'root' },
          },
        },
      },
      'Tree',
    );
    expect([...lists]).toEqual([['children', { keys: ['id'], keyDefaults: { id: 'root' } }]]);
  });
});

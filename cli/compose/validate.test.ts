import { describe, expect, it } from 'vitest';
import { ComposeError } from './interpolate.ts';
import { coerceToSchema, validateCompose } from './validate.ts';

describe('coerceToSchema', () => {
  const schema = {
    type: 'object',
    properties: {
      count: { type: 'integer' },
      ratio: { type: 'number' },
      flag: { type: 'boolean' },
      either: { type: ['integer', 'string'] },
      port: { oneOf: [{ type: 'string' }, { $ref: '#/definitions/port' }] },
      list: { type: 'array', items: { $ref: '#/definitions/port' } },
      anything: {},
    },
    patternProperties: { '^x-': { type: 'integer' } },
    additionalProperties: { type: 'boolean' },
    definitions: { port: { type: 'object', properties: { target: { type: 'integer' }, name: { type: 'string' } } } },
  };

  it('converts strings where the schema takes no string, following $ref, oneOf, items and patterns', () => {
    expect(coerceToSchema({
      count: '3', ratio: '0.25', flag: 'TRUE', port: { target: '80', name: '80' }, list: [{ target: '-1' }], 'x-n': '+7', other: 'false',
    }, schema)).toEqual({ count: 3, ratio: 0.25, flag: true, port: { target: 80, name: '80' }, list: [{ target: -1 }], 'x-n': 7, other: false });
  });

  it('leaves strings where a string is allowed, or that are not of the type', () => {
    const input = { either: '5', port: '8080', anything: '1', count: 'three', ratio: '1e', flag: 'yes', list: ['80'] };
    expect(coerceToSchema(input, schema)).toEqual(input);
  });

  it('does not mutate its input', () => {
    const input = { count: '1', port: { target: '2' } };
    coerceToSchema(input, schema);
    expect(input).toEqual({ count: '1', port: { target: '2' } });
  });
});

describe('validateCompose with the Compose schema', () => {
  it('returns the document with the converted values', () => {
    const doc = { name: 'app', services: { web: { image: 'busybox', ports: [{ target: '80', published: '8080' }, '9000:90'], deploy: { replicas: '2' }, tty: 'false' } } };
    expect(validateCompose(doc, 'compose.yaml')).toEqual({
      name: 'app',
      services: { web: { image: 'busybox', ports: [{ target: 80, published: 8080 }, '9000:90'], deploy: { replicas: 2 }, tty: false } },
    });
  });

  it('refuses what is still of the wrong type, naming the file and the key', () => {
    expect(() => validateCompose({ services: { web: { image: 'busybox', deploy: { replicas: '1.5' } } } }, 'a.yaml, b.yaml'))
      .toThrow(new ComposeError('validating a.yaml, b.yaml:\n  services.web.deploy.replicas: must be integer'));
  });
});

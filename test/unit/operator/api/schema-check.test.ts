import { structuralProblems, valueProblems } from '../../../../operator/api/schema-check';
import type { JSONSchemaProps } from '../../../../operator/api/schema-builder';

const described = (s: JSONSchemaProps): JSONSchemaProps => ({ description: 'd', ...s });

describe('structuralProblems', () => {
  it('accepts a structural schema', () => {
    expect(
      structuralProblems({
        type: 'object',
        properties: {
          metadata: { type: 'object' },
          a: described({ type: 'object', properties: { b: described({ type: 'string', default: 'x', enum: ['x', 'y'] }) } }),
        },
      }),
    ).toEqual([]);
  });

  it('finds an object without properties, a map with properties, an array without items', () => {
    expect(
      structuralProblems({
        type: 'object',
        properties: {
          bare: described({ type: 'object' }),
          both: described({ type: 'object', properties: {}, additionalProperties: { type: 'string' } }),
          list: described({ type: 'array' }),
          untyped: { description: 'd' },
        },
      }),
    ).toEqual([
      'bare: an object needs properties, additionalProperties or x-kubernetes-preserve-unknown-fields',
      'both: properties and additionalProperties cannot both be set',
      'list: an array needs items',
      'untyped: type is required',
    ]);
  });

  it('finds defaults and enum values that do not fit, and missing descriptions', () => {
    expect(
      structuralProblems({
        type: 'object',
        properties: {
          n: described({ type: 'integer', minimum: 1, default: 0 }),
          e: described({ type: 'string', pattern: '^a', enum: ['b'] }),
          o: described({ type: 'object', properties: { r: described({ type: 'string' }) }, required: ['r'], default: {} }),
          nodesc: { type: 'string' },
        },
      }),
    ).toEqual([
      'n default: must be at least 1',
      'e enum value: must match ^a',
      'o default.r: is required',
      'nodesc: description is missing',
    ]);
  });

  it('requires list-map keys to be required or defaulted', () => {
    expect(
      structuralProblems({
        type: 'object',
        properties: {
          l: described({
            type: 'array',
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['name'],
            items: { type: 'object', properties: { name: described({ type: 'string' }) } },
          }),
        },
      }),
    ).toEqual(['l: list map key name must be a required or defaulted property of the items']);
  });
});

describe('valueProblems', () => {
  const schema: JSONSchemaProps = {
    type: 'object',
    properties: {
      s: { type: 'string', maxLength: 3 },
      i: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], pattern: '^[0-9]+%$', minimum: 0 },
      m: { type: 'object', additionalProperties: { type: 'integer' } },
      p: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      t: { type: 'string', format: 'date-time' },
    },
    required: ['s'],
  };

  it('accepts a fitting value, anything under preserve-unknown', () => {
    expect(valueProblems(schema, { s: 'abc', i: '50%', m: { a: 1 }, p: { any: [1] }, t: '2024-05-01T10:00:00Z' })).toEqual([]);
    expect(valueProblems(schema, { s: 'a', i: 3 })).toEqual([]);
  });

  it('names each problem by path', () => {
    expect(valueProblems(schema, { s: 'abcd', i: -1, m: { a: 'x' }, t: 'yesterday', x: 1 })).toEqual([
      '<value>.s: must be at most 3 characters',
      '<value>.i: must be at least 0',
      '<value>.m["a"]: must be an integer',
      '<value>.t: must be an RFC 3339 date-time',
      '<value>.x: unknown field',
    ]);
    expect(valueProblems(schema, { i: 1.5 })).toEqual(['<value>.s: is required', '<value>.i: must be an integer or a string']);
  });
});

import { applyDefaults } from '../../../../operator/api/schema-defaults';
import type { JSONSchemaProps } from '../../../../operator/api/schema-builder';

const schema: JSONSchemaProps = {
  type: 'object',
  properties: {
    a: { type: 'integer', default: 1 },
    inner: { type: 'object', default: {}, properties: { b: { type: 'string', default: 'x' }, c: { type: 'string' } } },
    list: { type: 'array', items: { type: 'object', properties: { d: { type: 'boolean', default: true } } } },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
  },
};

describe('applyDefaults', () => {
  it('fills missing fields, then recurses into defaulted objects, as the API server does', () => {
    expect(applyDefaults(schema, {})).toEqual({ a: 1, inner: { b: 'x' } });
  });

  it('keeps given values and defaults inside arrays', () => {
    expect(applyDefaults(schema, { a: 5, inner: { c: 'y' }, list: [{}, { d: false }], labels: { k: 'v' } })).toEqual({
      a: 5,
      inner: { b: 'x', c: 'y' },
      list: [{ d: true }, { d: false }],
      labels: { k: 'v' },
    });
  });

  it('does not modify its input', () => {
    const input = { inner: {} };
    applyDefaults(schema, input);
    expect(input).toEqual({ inner: {} });
  });
});

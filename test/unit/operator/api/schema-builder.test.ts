import {
  arr,
  bool,
  duration,
  int,
  intOrString,
  map,
  obj,
  preserveUnknown,
  quantity,
  str,
  type Infer,
  type InferInput,
} from '../../../../operator/api/schema-builder';

describe('schema builder', () => {
  it('turns leaf options into OpenAPI keywords', () => {
    expect(str({ description: 'd', enum: ['a', 'b'], default: 'a' }).props).toEqual({
      description: 'd',
      type: 'string',
      enum: ['a', 'b'],
      default: 'a',
    });
    expect(int({ minimum: 1, maximum: 9, format: 'int32' }).props).toEqual({
      type: 'integer',
      format: 'int32',
      minimum: 1,
      maximum: 9,
    });
    expect(bool({ default: false }).props).toEqual({ type: 'boolean', default: false });
    expect(duration().props).toMatchObject({ type: 'string', maxLength: 32 });
  });

  it('lists required fields and records each field presence', () => {
    const s = obj({ a: str({ required: true }), b: int({ default: 1 }), c: bool() });
    expect(s.props.required).toEqual(['a']);
    expect(Object.keys(s.props.properties ?? {})).toEqual(['a', 'b', 'c']);
    expect(str({ required: true }).presence).toBe('required');
    expect(int({ default: 1 }).presence).toBe('defaulted');
    expect(bool().presence).toBe('optional');
  });

  it('writes an object default with its fields defaults filled in', () => {
    const s = obj({ a: int({ default: 1 }), b: obj({ c: str({ default: 'x' }) }, { default: {} }) }, { default: {} });
    expect(s.props.default).toEqual({ a: 1, b: { c: 'x' } });
  });

  it('refuses a field that is both required and defaulted', () => {
    expect(() => str({ required: true, default: 'x' })).toThrow(
      expect.objectContaining({ code: 'ERR_SCHEMA_DEFINITION', message: expect.stringMatching(/both required and defaulted/) }),
    );
  });

  it('marks int-or-string, quantity and preserve-unknown fields as Kubernetes does', () => {
    expect(intOrString({ pattern: '^[0-9]+%$' }).props).toEqual({
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
      pattern: '^[0-9]+%$',
    });
    expect(quantity().props['x-kubernetes-int-or-string']).toBe(true);
    expect(preserveUnknown<{ x: number }>().props).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
    expect(map(str()).props).toEqual({ type: 'object', additionalProperties: { type: 'string' } });
    expect(arr(obj({ name: str({ required: true }) }), { listType: 'map', listMapKeys: ['name'] }).props).toMatchObject({
      type: 'array',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    });
  });

  it('infers the defaulted and the input types from the same values', () => {
    const s = obj({
      kind: str({ enum: ['A', 'B'], default: 'A' }),
      name: str({ required: true }),
      count: int(),
      tags: map(str()),
    });
    type Out = Infer<typeof s>;
    type In = InferInput<typeof s>;
    const out: Out = { kind: 'B', name: 'n' };
    const input: In = { name: 'n' };
    // @ts-expect-error a defaulted field is always present once read back
    const missingDefault: Out = { name: 'n' };
    // @ts-expect-error an enum admits only its values
    const badEnum: In = { name: 'n', kind: 'C' };
    // @ts-expect-error a required field must be written
    const missingRequired: In = {};
    expect([out, input, missingDefault, badEnum, missingRequired]).toHaveLength(5);
  });
});

/* eslint-disable @typescript-eslint/no-empty-object-type -- `{}` is the type of "no options given" in the builders' generic defaults, which the conditional types below read key by key */
/**
 * A small typed builder for CRD structural schemas. Each builder returns the
 * OpenAPI v3 fragment the API server validates with and, as a phantom type,
 * the TypeScript type of the values it admits, so the CRD and the operator's
 * types come from one description and cannot drift apart.
 *
 * Two types are inferred: `Infer` is the value as the operator reads it,
 * after the API server applied the defaults (a defaulted field is always
 * present); `InferInput` is what a user may write (only `required` fields
 * must be given).
 */
import { applyDefaults } from './schema-defaults';

/** A schema built wrong: a bug in the operator's own definitions, thrown when the module loads. */
export class SchemaDefinitionError extends Error {
  override readonly name = 'SchemaDefinitionError';
  readonly code = 'ERR_SCHEMA_DEFINITION';
}

/** `x-kubernetes-validations` entry: a CEL rule the API server evaluates on write. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** Relative JSONPath of the field the error names, such as `.renewInterval`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** JSONSchemaProps as the API server reads it (wire key names, not client-node's). */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  default?: unknown;
  enum?: readonly unknown[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'granular' | 'atomic';
  'x-kubernetes-validations'?: ValidationRule[];
}

/** Whether a field of an object must be given, may be left out, or is filled in by a default. */
export type Presence = 'optional' | 'required' | 'defaulted';

export interface Schema<Out, In = Out, P extends Presence = Presence> {
  readonly props: JSONSchemaProps;
  readonly presence: P;
  /** Phantom: never set at runtime. */
  readonly __out?: Out;
  readonly __in?: In;
}

export type AnySchema = Schema<unknown, unknown, Presence>;
export type Infer<S> = S extends Schema<infer Out, unknown, Presence> ? Out : never;
export type InferInput<S> = S extends Schema<unknown, infer In, Presence> ? In : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type KeysWith<F, P extends Presence> = { [K in keyof F]: F[K] extends Schema<unknown, unknown, P> ? K : never }[keyof F];

type ObjOut<F> = Simplify<{ [K in KeysWith<F, 'required' | 'defaulted'>]: Infer<F[K]> } & { [K in KeysWith<F, 'optional'>]?: Infer<F[K]> }>;
type ObjIn<F> = Simplify<
  { [K in KeysWith<F, 'required'>]: InferInput<F[K]> } & {
    [K in KeysWith<F, 'optional' | 'defaulted'>]?: InferInput<F[K]>;
  }
>;

/** Options every builder takes. */
export interface CommonOptions {
  description?: string;
  /** The field must be given; exclusive with `default`. */
  required?: boolean;
  validations?: readonly ValidationRule[];
}

type PresenceOf<O> = O extends { required: true } ? 'required' : O extends { default: unknown } ? 'defaulted' : 'optional';

function common(o: CommonOptions & { default?: unknown }): { props: JSONSchemaProps; presence: Presence } {
  if (o.required === true && o.default !== undefined) {
    throw new SchemaDefinitionError('a schema field cannot be both required and defaulted');
  }
  const props: JSONSchemaProps = {};
  if (o.description !== undefined) props.description = o.description;
  if (o.default !== undefined) props.default = structuredClone(o.default);
  if (o.validations !== undefined && o.validations.length > 0) {
    props['x-kubernetes-validations'] = o.validations.map((v) => ({ ...v }));
  }
  return { props, presence: o.required === true ? 'required' : o.default !== undefined ? 'defaulted' : 'optional' };
}

function make<Out, In, P extends Presence>(
  base: { props: JSONSchemaProps; presence: Presence },
  extra: JSONSchemaProps,
): Schema<Out, In, P> {
  // Description, then type and shape, then default and rules: the order the generated YAML reads best in.
  const { description, ...rest } = base.props;
  const props: JSONSchemaProps = { ...(description === undefined ? {} : { description }), ...extra, ...rest };
  return { props, presence: base.presence as P };
}

export interface StrOptions extends CommonOptions {
  default?: string;
  enum?: readonly string[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  format?: string;
}

type StrOut<O> = O extends { enum: readonly (infer E extends string)[] } ? E : string;

export function str<const O extends StrOptions = {}>(o: O = {} as O): Schema<StrOut<O>, StrOut<O>, PresenceOf<O>> {
  const extra: JSONSchemaProps = { type: 'string' };
  if (o.enum !== undefined) extra.enum = [...o.enum];
  if (o.format !== undefined) extra.format = o.format;
  if (o.pattern !== undefined) extra.pattern = o.pattern;
  if (o.minLength !== undefined) extra.minLength = o.minLength;
  if (o.maxLength !== undefined) extra.maxLength = o.maxLength;
  return make(common(o), extra);
}

export interface IntOptions extends CommonOptions {
  default?: number;
  minimum?: number;
  maximum?: number;
  format?: 'int32' | 'int64';
}

export function int<const O extends IntOptions = {}>(o: O = {} as O): Schema<number, number, PresenceOf<O>> {
  const extra: JSONSchemaProps = { type: 'integer' };
  if (o.format !== undefined) extra.format = o.format;
  if (o.minimum !== undefined) extra.minimum = o.minimum;
  if (o.maximum !== undefined) extra.maximum = o.maximum;
  return make(common(o), extra);
}

export interface BoolOptions extends CommonOptions {
  default?: boolean;
}

export function bool<const O extends BoolOptions = {}>(o: O = {} as O): Schema<boolean, boolean, PresenceOf<O>> {
  return make(common(o), { type: 'boolean' });
}

export interface ObjOptions extends CommonOptions {
  /**
   * Usually `{}`: the API server applies nested defaults only inside an
   * object that is present, so a defaulted parent makes its children's
   * defaults apply even when the user leaves the whole block out.
   */
  default?: Record<string, unknown>;
}

export function obj<const F extends Readonly<Record<string, AnySchema>>, const O extends ObjOptions = {}>(
  fields: F,
  o: O = {} as O,
): Schema<ObjOut<F>, ObjIn<F>, PresenceOf<O>> {
  const properties: Record<string, JSONSchemaProps> = {};
  const required: string[] = [];
  for (const [key, field] of Object.entries(fields)) {
    properties[key] = field.props;
    if (field.presence === 'required') required.push(key);
  }
  const extra: JSONSchemaProps = { type: 'object', properties };
  if (required.length > 0) extra.required = required;
  const base = common(o);
  // The API server checks an object's default against the object's CEL
  // rules before it applies the nested defaults, so write the default whole.
  if (base.props.default !== undefined) base.props.default = applyDefaults(extra, base.props.default);
  return make(base, extra);
}

export interface ArrOptions extends CommonOptions {
  default?: readonly unknown[];
  minItems?: number;
  maxItems?: number;
  listType?: 'atomic' | 'set' | 'map';
  /** With `listType: 'map'`: the item fields that identify an item. */
  listMapKeys?: readonly string[];
}

export function arr<const S extends AnySchema, const O extends ArrOptions = {}>(
  items: S,
  o: O = {} as O,
): Schema<Infer<S>[], InferInput<S>[], PresenceOf<O>> {
  const extra: JSONSchemaProps = { type: 'array', items: items.props };
  if (o.minItems !== undefined) extra.minItems = o.minItems;
  if (o.maxItems !== undefined) extra.maxItems = o.maxItems;
  if (o.listType !== undefined) extra['x-kubernetes-list-type'] = o.listType;
  if (o.listMapKeys !== undefined) extra['x-kubernetes-list-map-keys'] = [...o.listMapKeys];
  return make(common(o), extra);
}

export interface MapOptions extends CommonOptions {
  default?: Readonly<Record<string, unknown>>;
  maxProperties?: number;
}

/** An object with arbitrary keys and values of one schema (labels, annotations). */
export function map<const S extends AnySchema, const O extends MapOptions = {}>(
  values: S,
  o: O = {} as O,
): Schema<Record<string, Infer<S>>, Record<string, InferInput<S>>, PresenceOf<O>> {
  const extra: JSONSchemaProps = { type: 'object', additionalProperties: values.props };
  if (o.maxProperties !== undefined) extra.maxProperties = o.maxProperties;
  return make(common(o), extra);
}

export interface IntOrStringOptions extends CommonOptions {
  default?: number | string;
  /** Applies to the string form only. */
  pattern?: string;
  /** Applies to the integer form only. */
  minimum?: number;
}

/** Kubernetes' IntOrString (`maxUnavailable: 1` or `"25%"`). */
export function intOrString<const O extends IntOrStringOptions = {}>(
  o: O = {} as O,
): Schema<number | string, number | string, PresenceOf<O>> {
  const extra: JSONSchemaProps = {
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
  };
  if (o.pattern !== undefined) extra.pattern = o.pattern;
  if (o.minimum !== undefined) extra.minimum = o.minimum;
  return make(common(o), extra);
}

// The pattern Kubernetes itself publishes for resource.Quantity.
const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

export interface QuantityOptions extends CommonOptions {
  default?: number | string;
}

/** A resource quantity (`500m`, `128Mi`, `2`). */
export function quantity<const O extends QuantityOptions = {}>(o: O = {} as O): Schema<number | string, number | string, PresenceOf<O>> {
  return make(common(o), {
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    'x-kubernetes-int-or-string': true,
  });
}

// Go's time.ParseDuration syntax without sign, which CEL's duration() also
// parses, so rules can compare durations. "0" alone is left out: write "0s".
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$';
// Bounded so the API server can estimate the cost of CEL rules on it.
const DURATION_MAX_LENGTH = 32;

export interface DurationOptions extends CommonOptions {
  default?: string;
}

/** A Go duration string (`15s`, `1m30s`). */
export function duration<const O extends DurationOptions = {}>(o: O = {} as O): Schema<string, string, PresenceOf<O>> {
  return make(common(o), { type: 'string', pattern: DURATION_PATTERN, maxLength: DURATION_MAX_LENGTH });
}

export interface PreserveUnknownOptions {
  description?: string;
  validations?: readonly ValidationRule[];
}

/**
 * An object the API server stores as given, typed as `T`: for fields that
 * take Kubernetes' own types (affinity, tolerations), whose schemas are too
 * large to copy and which the StatefulSet's own validation checks anyway.
 * Always optional.
 */
export function preserveUnknown<T>(o: PreserveUnknownOptions = {}): Schema<T, T, 'optional'> {
  return make(common(o), { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
}

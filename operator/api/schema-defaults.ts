/**
 * Structural defaulting as the API server does it: a missing property with a
 * default gets a copy of it, then defaulting recurses into every value
 * present, the ones just defaulted included. Used where the API server is not
 * in the loop (tests, the reference docs); the operator reads objects the API
 * server has already defaulted.
 */
import type { JSONSchemaProps } from './schema-builder';

export function applyDefaults<T>(schema: JSONSchemaProps, value: T): T {
  return defaultValue(schema, structuredClone(value)) as T;
}

function defaultValue(schema: JSONSchemaProps, value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = schema.items;
    return items === undefined ? value : value.map((v) => defaultValue(items, v));
  }
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  if (schema.properties !== undefined) {
    for (const [key, prop] of Object.entries(schema.properties)) {
      if (record[key] === undefined && prop.default !== undefined) record[key] = structuredClone(prop.default);
      if (record[key] !== undefined) record[key] = defaultValue(prop, record[key]);
    }
  } else if (schema.additionalProperties !== undefined) {
    for (const key of Object.keys(record)) record[key] = defaultValue(schema.additionalProperties, record[key]);
  }
  return record;
}

/**
 * Checks of our own schemas without an API server: that a schema is
 * structural (the API server refuses a CRD otherwise) and that a value fits
 * a schema (defaults, examples, test fixtures). CEL rules are not evaluated
 * here; the API server does that.
 */
import { applyDefaults } from './schema-defaults';
import type { JSONSchemaProps } from './schema-builder';

// RFC 3339 as metav1.Time serialises it.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Problems that would make the API server refuse the schema, each prefixed with its path. */
export function structuralProblems(root: JSONSchemaProps): string[] {
  const problems: string[] = [];
  walk(root, '', problems, true);
  return problems;
}

function walk(s: JSONSchemaProps, path: string, out: string[], isRoot = false): void {
  const at = path === '' ? '<root>' : path;
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;

  if (intOrString) {
    if (s.type !== undefined) out.push(`${at}: x-kubernetes-int-or-string must not have a type`);
    const types = (s.anyOf ?? []).map((a) => a.type).join(',');
    if (types !== 'integer,string') out.push(`${at}: x-kubernetes-int-or-string needs anyOf [integer, string]`);
  } else {
    if (s.type === undefined && !preserve) out.push(`${at}: type is required`);
    if (s.anyOf !== undefined) out.push(`${at}: anyOf is only used with x-kubernetes-int-or-string`);
  }

  if (s.type === 'object') {
    if (s.properties !== undefined && s.additionalProperties !== undefined) {
      out.push(`${at}: properties and additionalProperties cannot both be set`);
    }
    if (s.properties === undefined && s.additionalProperties === undefined && !preserve) {
      out.push(`${at}: an object needs properties, additionalProperties or x-kubernetes-preserve-unknown-fields`);
    }
  }
  if (s.type === 'array' && s.items === undefined) out.push(`${at}: an array needs items`);

  for (const key of s.required ?? []) {
    if (s.properties?.[key] === undefined) out.push(`${at}: required field ${key} is not a property`);
  }

  if (s['x-kubernetes-list-type'] === 'map') {
    const item = s.items;
    const keys = s['x-kubernetes-list-map-keys'] ?? [];
    if (keys.length === 0) out.push(`${at}: listType map needs x-kubernetes-list-map-keys`);
    for (const key of keys) {
      const prop = item?.properties?.[key];
      if (prop === undefined || (!(item?.required ?? []).includes(key) && prop.default === undefined)) {
        out.push(`${at}: list map key ${key} must be a required or defaulted property of the items`);
      }
    }
  }

  for (const value of s.enum ?? []) {
    const { enum: _enum, ...withoutEnum } = s;
    for (const p of valueProblems(withoutEnum, value, `${at} enum value`)) out.push(p);
  }
  if (s.default !== undefined) {
    const { default: def, ...withoutDefault } = s;
    for (const p of valueProblems(withoutDefault, applyDefaults(withoutDefault, def), `${at} default`)) out.push(p);
  }
  if (s.pattern !== undefined) {
    try {
      new RegExp(s.pattern);
    } catch {
      out.push(`${at}: pattern does not compile`);
    }
  }

  for (const [key, prop] of Object.entries(s.properties ?? {})) {
    const child = path === '' ? key : `${path}.${key}`;
    // The API server owns metadata; a CRD may only say it is an object.
    if (isRoot && key === 'metadata') continue;
    if (prop.description === undefined || prop.description === '') out.push(`${child}: description is missing`);
    walk(prop, child, out);
  }
  if (s.additionalProperties !== undefined) walk(s.additionalProperties, `${path}{}`, out);
  if (s.items !== undefined) walk(s.items, `${path}[]`, out);
}

/**
 * Why `value` does not fit `schema`, each prefixed with `path`; empty when it
 * fits. Unknown fields are problems here, where the API server would drop
 * them silently.
 */
export function valueProblems(schema: JSONSchemaProps, value: unknown, path = '<value>'): string[] {
  const out: string[] = [];
  check(schema, value, path, out);
  return out;
}

function check(s: JSONSchemaProps, v: unknown, path: string, out: string[]): void {
  if (v === undefined) return;
  if (s['x-kubernetes-int-or-string'] === true) {
    if (typeof v === 'string') checkString(s, v, path, out);
    else if (typeof v === 'number' && Number.isInteger(v)) checkNumber(s, v, path, out);
    else out.push(`${path}: must be an integer or a string`);
    return;
  }
  if (s.enum !== undefined && !s.enum.includes(v)) {
    out.push(`${path}: must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string') out.push(`${path}: must be a string`);
      else checkString(s, v, path, out);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) out.push(`${path}: must be an integer`);
      else checkNumber(s, v, path, out);
      return;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) out.push(`${path}: must be a number`);
      else checkNumber(s, v, path, out);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') out.push(`${path}: must be a boolean`);
      return;
    case 'array':
      if (!Array.isArray(v)) out.push(`${path}: must be an array`);
      else checkArray(s, v, path, out);
      return;
    case 'object':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) out.push(`${path}: must be an object`);
      else checkObject(s, v as Record<string, unknown>, path, out);
      return;
    default:
      return;
  }
}

function checkString(s: JSONSchemaProps, v: string, path: string, out: string[]): void {
  const length = [...v].length;
  if (s.minLength !== undefined && length < s.minLength) out.push(`${path}: must be at least ${s.minLength} characters`);
  if (s.maxLength !== undefined && length > s.maxLength) out.push(`${path}: must be at most ${s.maxLength} characters`);
  if (s.pattern !== undefined && !new RegExp(s.pattern).test(v)) out.push(`${path}: must match ${s.pattern}`);
  if (s.format === 'date-time' && !DATE_TIME.test(v)) out.push(`${path}: must be an RFC 3339 date-time`);
}

function checkNumber(s: JSONSchemaProps, v: number, path: string, out: string[]): void {
  if (s.minimum !== undefined && v < s.minimum) out.push(`${path}: must be at least ${s.minimum}`);
  if (s.maximum !== undefined && v > s.maximum) out.push(`${path}: must be at most ${s.maximum}`);
}

function checkArray(s: JSONSchemaProps, v: readonly unknown[], path: string, out: string[]): void {
  if (s.minItems !== undefined && v.length < s.minItems) out.push(`${path}: must have at least ${s.minItems} items`);
  if (s.maxItems !== undefined && v.length > s.maxItems) out.push(`${path}: must have at most ${s.maxItems} items`);
  const items = s.items;
  if (items !== undefined) v.forEach((item, i) => check(items, item, `${path}[${i}]`, out));
  const keys = s['x-kubernetes-list-map-keys'];
  if (s['x-kubernetes-list-type'] === 'map' && keys !== undefined) {
    const seen = new Set<string>();
    for (const item of v) {
      const id = JSON.stringify(keys.map((k) => (item as Record<string, unknown> | null)?.[k]));
      if (seen.has(id)) out.push(`${path}: duplicate item with ${keys.join(', ')} ${id}`);
      seen.add(id);
    }
  }
}

function checkObject(s: JSONSchemaProps, v: Record<string, unknown>, path: string, out: string[]): void {
  if (s['x-kubernetes-preserve-unknown-fields'] === true && s.properties === undefined) return;
  for (const key of s.required ?? []) {
    if (v[key] === undefined) out.push(`${path}.${key}: is required`);
  }
  if (s.properties !== undefined) {
    for (const [key, child] of Object.entries(v)) {
      const prop = s.properties[key];
      if (prop === undefined) {
        if (s['x-kubernetes-preserve-unknown-fields'] !== true) out.push(`${path}.${key}: unknown field`);
        continue;
      }
      check(prop, child, `${path}.${key}`, out);
    }
  } else if (s.additionalProperties !== undefined) {
    const values = s.additionalProperties;
    const entries = Object.entries(v);
    if (s.maxProperties !== undefined && entries.length > s.maxProperties) {
      out.push(`${path}: must have at most ${s.maxProperties} entries`);
    }
    for (const [key, child] of entries) check(values, child, `${path}[${JSON.stringify(key)}]`, out);
  }
}

/**
 * One declarative description per config, from which the flags, the YAML
 * keys, the help text, the defaults and the type checks are all derived, so
 * they cannot drift apart. A spec is a tree keyed by the YAML names Piko
 * uses (`proxy.access_log.level`); the flag is the same path with `_`
 * turned into `-` (`--proxy.access-log.level`), which holds for every Piko
 * flag.
 *
 * The typed object a spec produces has camelCase keys, and duration keys get
 * an `Ms` suffix (`proxy.timeout` becomes `proxy.timeoutMs`, a number of
 * milliseconds).
 */
import { formatDuration, parseDuration } from './duration';
import { ConfigError } from './errors';

export type LeafKind = 'string' | 'boolean' | 'duration' | 'integer' | 'string-list';
export type LeafValue = string | boolean | number | readonly string[];

export interface LeafSpec {
  readonly kind: LeafKind;
  /** Durations in milliseconds. Lists always default to empty. */
  readonly default: LeafValue;
  /** One or two sentences for `--help`. */
  readonly description: string;
  /** `false` keeps the key out of the flags (YAML only). */
  readonly flag?: false;
  /** Placeholder in help (`<addr>`); derived from the kind when absent. */
  readonly arg?: string;
  readonly choices?: readonly string[];
  /** A string left out of the typed object when empty (`advertiseAddr?`). */
  readonly optional?: boolean;
  /** Must be given in each YAML list item (Piko's listener `timeout`). */
  readonly required?: boolean;
  /** Lower bound for integers and durations (durations default to 0). */
  readonly min?: number;
  /** An integer or duration that must be above 0 (Piko's "missing grace period"). */
  readonly positive?: boolean;
}

export interface GroupSpec {
  readonly kind: 'group';
  readonly fields: Readonly<Record<string, Spec>>;
}

/** A YAML-only list of objects (`listeners`, `ports`, `upstream.tenants`). */
export interface ListSpec {
  readonly kind: 'list';
  readonly item: GroupSpec;
}

export type Spec = LeafSpec | GroupSpec | ListSpec;

/** Values as decoded from YAML or flags, keyed by YAML names. */
export type RawValue = LeafValue | RawObject | readonly RawObject[];
export interface RawObject {
  [key: string]: RawValue;
}

type LeafExtras = Omit<LeafSpec, 'kind' | 'default' | 'description'>;

export const str = (def: string, description: string, extra: LeafExtras = {}): LeafSpec => ({
  kind: 'string',
  default: def,
  description,
  ...extra,
});
export const bool = (def: boolean, description: string, extra: LeafExtras = {}): LeafSpec => ({
  kind: 'boolean',
  default: def,
  description,
  ...extra,
});
export const duration = (defMs: number, description: string, extra: LeafExtras = {}): LeafSpec => ({
  kind: 'duration',
  default: defMs,
  description,
  ...extra,
});
export const int = (def: number, description: string, extra: LeafExtras = {}): LeafSpec => ({
  kind: 'integer',
  default: def,
  description,
  ...extra,
});
export const strList = (description: string, extra: LeafExtras = {}): LeafSpec => ({
  kind: 'string-list',
  default: [],
  description,
  ...extra,
});
export const group = (fields: Record<string, Spec>): GroupSpec => ({ kind: 'group', fields });
export const listOf = (item: GroupSpec): ListSpec => ({ kind: 'list', item });

export const isLeaf = (spec: Spec): spec is LeafSpec => spec.kind !== 'group' && spec.kind !== 'list';

/** A leaf reachable from a flag. `path` uses YAML names, `flag` has no dashes in front. */
export interface FlagLeaf {
  readonly path: string;
  readonly flag: string;
  readonly leaf: LeafSpec;
}

/** Every flag of a spec in declaration order; lists are YAML only. */
export function flagLeaves(spec: GroupSpec): FlagLeaf[] {
  const out: FlagLeaf[] = [];
  const walk = (g: GroupSpec, prefix: string): void => {
    for (const [key, child] of Object.entries(g.fields)) {
      const path = prefix + key;
      if (child.kind === 'group') walk(child, path + '.');
      else if (isLeaf(child) && child.flag !== false) out.push({ path, flag: path.replace(/_/g, '-'), leaf: child });
    }
  };
  walk(spec, '');
  return out;
}

/** The leaf at a dotted path, or undefined. */
export function leafAt(spec: GroupSpec, path: string): LeafSpec | undefined {
  let node: Spec | undefined = spec;
  for (const key of path.split('.')) {
    if (node === undefined || node.kind !== 'group') return undefined;
    node = node.fields[key];
  }
  return node !== undefined && isLeaf(node) ? node : undefined;
}

export function defaultsOf(spec: GroupSpec): RawObject {
  const out: RawObject = {};
  for (const [key, child] of Object.entries(spec.fields)) {
    if (child.kind === 'group') out[key] = defaultsOf(child);
    else if (child.kind === 'list') out[key] = [];
    else out[key] = Array.isArray(child.default) ? [...(child.default as string[])] : child.default;
  }
  return out;
}

/** Sets a dotted path, creating groups on the way. */
export function setPath(tree: RawObject, path: string, value: RawValue): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as RawObject;
  }
  node[keys[keys.length - 1]!] = value;
}

/**
 * `over` laid on `base`: objects merge key by key, anything else (scalars,
 * lists) is replaced whole, as Go's YAML decoder does when it decodes on top
 * of a struct already filled from flags.
 */
export function mergeRaw(base: RawObject, over: RawObject): RawObject {
  const out: RawObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isRawObject(prev) && isRawObject(value) ? mergeRaw(prev, value) : value;
  }
  return out;
}

export function isRawObject(value: RawValue | undefined): value is RawObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Human name of a kind, for "must be a ..." messages. */
export function kindName(kind: LeafKind): string {
  switch (kind) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'duration':
      return 'a duration';
    case 'integer':
      return 'an integer';
    case 'string-list':
      return 'a list of strings';
  }
}

/** The help placeholder for a leaf: `<duration>`, `<list>`... */
export function argName(leaf: LeafSpec): string {
  if (leaf.arg !== undefined) return leaf.arg;
  switch (leaf.kind) {
    case 'duration':
      return '<duration>';
    case 'integer':
      return '<int>';
    case 'string-list':
      return '<list>';
    default:
      return '<string>';
  }
}

/**
 * The default as pflag prints it in help, or undefined when it shows none
 * (pflag hides zero values: empty strings and lists, false, 0, 0s).
 */
export function formatDefault(leaf: LeafSpec): string | undefined {
  const d = leaf.default;
  if (d === 0) return undefined;
  if (leaf.kind === 'duration') return formatDuration(d as number);
  if (leaf.kind === 'string') return d === '' ? undefined : JSON.stringify(d);
  if (leaf.kind === 'string-list') return (d as readonly string[]).length === 0 ? undefined : (d as string[]).join(',');
  if (leaf.kind === 'boolean') return d ? 'true' : undefined;
  return String(d);
}

/**
 * Checks that apply wherever a value comes from: choices, lower bounds and
 * non-empty strings. A string whose default is non-empty and that is not
 * `optional` must stay non-empty (Piko's "missing bind addr").
 */
export function checkLeafValue(leaf: LeafSpec, value: LeafValue, label: string): string | undefined {
  if (leaf.kind === 'string') {
    const s = value as string;
    if (leaf.choices !== undefined && !leaf.choices.includes(s)) {
      return `${label} must be one of ${leaf.choices.join(', ')}, got ${JSON.stringify(s)}`;
    }
    if (s === '' && (leaf.required === true || (leaf.optional !== true && leaf.default !== ''))) {
      return `${label} must not be empty`;
    }
  }
  if (leaf.kind === 'duration' || leaf.kind === 'integer') {
    const n = value as number;
    if (leaf.positive === true && n <= 0) return `${label} must be greater than 0`;
    const min = leaf.min ?? (leaf.kind === 'duration' ? 0 : undefined);
    if (min !== undefined && n < min) {
      const shown = leaf.kind === 'duration' ? formatDuration(min) : String(min);
      return min === 0 ? `${label} must not be negative` : `${label} must be at least ${shown}`;
    }
  }
  return undefined;
}

// Go's strconv.ParseBool, which pflag uses for `--flag=value`.
const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export function parseBoolWord(text: string): boolean | undefined {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return undefined;
}

/**
 * Parses one flag argument for a leaf. Lists take comma-separated values
 * and the flag may repeat (pflag's StringSlice); `previous` is what earlier
 * occurrences gave.
 */
export function parseFlagValue(leaf: LeafSpec, text: string, label: string, previous?: LeafValue): LeafValue {
  let value: LeafValue;
  switch (leaf.kind) {
    case 'string':
      value = text;
      break;
    case 'boolean': {
      const b = parseBoolWord(text);
      if (b === undefined) throw new ConfigError(`${label} must be a boolean, got ${JSON.stringify(text)}`);
      value = b;
      break;
    }
    case 'duration':
      try {
        value = parseDuration(text);
      } catch (err) {
        throw new ConfigError(`${label} must be a duration: ${(err as Error).message}`, { cause: err });
      }
      break;
    case 'integer':
      if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
        throw new ConfigError(`${label} must be an integer, got ${JSON.stringify(text)}`);
      }
      value = Number(text);
      break;
    case 'string-list': {
      const items = text === '' ? [] : text.split(',').map((s) => s.trim());
      value = [...((previous as readonly string[] | undefined) ?? []), ...items];
      break;
    }
  }
  const problem = checkLeafValue(leaf, value, label);
  if (problem !== undefined) throw new ConfigError(problem);
  return value;
}

const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * The typed shape of a raw tree: camelCase keys, `Ms` on durations, optional
 * empty strings left out. Callers cast the result to their interface; the
 * default-config tests pin that shape.
 */
export function toTyped(spec: GroupSpec, raw: RawObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(spec.fields)) {
    const value = raw[key];
    if (child.kind === 'group') {
      out[camel(key)] = toTyped(child, isRawObject(value) ? value : {});
    } else if (child.kind === 'list') {
      out[camel(key)] = ((value as readonly RawObject[] | undefined) ?? []).map((item) => toTyped(child.item, item));
    } else if (child.kind === 'duration') {
      out[camel(key) + 'Ms'] = value;
    } else if (child.kind === 'string-list') {
      out[camel(key)] = [...((value as readonly string[] | undefined) ?? [])];
    } else if (!(child.kind === 'string' && child.optional === true && value === '')) {
      out[camel(key)] = value;
    }
  }
  return out;
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

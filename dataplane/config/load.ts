/**
 * Piko's loading model: defaults, then flags, then the YAML file decoded on
 * top (so a key present in the file beats the same flag), with unknown keys
 * rejected. No environment variables are read except through
 * `--config.expand-env` substitution in the file text.
 */
import { ConfigError } from './errors';
import {
  checkLeafValue,
  defaultsOf,
  flagLeaves,
  kindName,
  mergeRaw,
  setPath,
  type GroupSpec,
  type LeafSpec,
  type LeafValue,
  type RawObject,
  type RawValue,
} from './schema';

export interface LoadOptions {
  /** Values given as flags, keyed by YAML path (`proxy.timeout`); durations in ms. */
  flags?: Readonly<Record<string, LeafValue>>;
  /** `--config.path`: the YAML file to decode on top of the flags. */
  configPath?: string;
  /** `--config.expand-env`: substitute `${VAR}`, `$VAR`, `${VAR:default}` in the file text. */
  expandEnv?: boolean;
  /** Source of the substitutions; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * Top-level keys that replace whatever the file says, already decoded.
   * Listeners or ports given as CLI arguments do this, as in Piko.
   */
  replace?: Readonly<Record<string, RawValue>>;
}

/** Defaults → flags → YAML → replacements, as an untyped tree keyed by YAML names. */
export function loadRaw(spec: GroupSpec, options: LoadOptions = {}): RawObject {
  let raw = defaultsOf(spec);
  const flags: RawObject = {};
  const known = new Map(flagLeaves(spec).map((f) => [f.path, f]));
  for (const [path, value] of Object.entries(options.flags ?? {})) {
    const entry = known.get(path);
    if (entry === undefined) throw new ConfigError(`unknown flag --${path.replace(/_/g, '-')}`, { path });
    checkFlagValue(entry.leaf, value, `--${entry.flag}`);
    setPath(flags, path, Array.isArray(value) ? [...(value as string[])] : value);
  }
  raw = mergeRaw(raw, flags);
  if (options.configPath !== undefined && options.configPath !== '') {
    // Loaded only for a file: the yaml package adds several MB of RSS to a process that has none.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the lazy load above
    const { readYamlConfig } = require('./yaml-file') as typeof import('./yaml-file');
    raw = mergeRaw(raw, readYamlConfig(spec, options.configPath, options.expandEnv === true, options.env ?? process.env));
  }
  for (const [key, value] of Object.entries(options.replace ?? {})) {
    if (!(key in spec.fields)) throw new ConfigError(`unknown key ${key}`, { path: key });
    raw[key] = value;
  }
  return raw;
}

/** Throws unless a flag value given programmatically fits its leaf. */
export function checkFlagValue(leaf: LeafSpec, value: LeafValue, label: string): void {
  const ok =
    leaf.kind === 'string-list'
      ? Array.isArray(value) && value.every((v) => typeof v === 'string')
      : leaf.kind === 'string'
        ? typeof value === 'string'
        : leaf.kind === 'boolean'
          ? typeof value === 'boolean'
          : typeof value === 'number' && Number.isFinite(value) && (leaf.kind !== 'integer' || Number.isInteger(value));
  if (!ok) throw new ConfigError(`${label} must be ${kindName(leaf.kind)}`);
  const problem = checkLeafValue(leaf, value, label);
  if (problem !== undefined) throw new ConfigError(problem);
}

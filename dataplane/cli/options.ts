/**
 * Turns config spec leaves into commander options and reads back what the
 * user gave. Only options present on the command line are returned:
 * defaults come from the spec, so the loader can lay the YAML file over
 * exactly the flags that were set.
 */
import { Option, type Command } from 'commander';
import { ConfigError } from '../config/errors';
import { argName, formatDefault, parseBoolWord, parseFlagValue, type FlagLeaf, type LeafValue } from '../config/schema';

export class FlagSet {
  private readonly attributes = new Map<string, FlagLeaf>();

  constructor(readonly flags: readonly FlagLeaf[]) {}

  /** Adds one option per flag; booleans also get a hidden `--no-` twin for `--flag=false`. */
  addTo(cmd: Command): this {
    for (const f of this.flags) {
      const label = `--${f.flag}`;
      const shown = formatDefault(f.leaf);
      const description = shown === undefined ? f.leaf.description : `${f.leaf.description} (default ${shown})`;
      if (f.leaf.kind === 'boolean') {
        const option = new Option(label, description);
        cmd.addOption(option);
        cmd.addOption(new Option(`--no-${f.flag}`).hideHelp());
        this.attributes.set(option.attributeName(), f);
      } else {
        const option = new Option(`${label} ${argName(f.leaf)}`, description).argParser((value: string, previous: LeafValue | undefined) =>
          parseFlagValue(f.leaf, value, label, previous),
        );
        cmd.addOption(option);
        this.attributes.set(option.attributeName(), f);
      }
    }
    return this;
  }

  /** The flags given on the command line of `cmd`, keyed by YAML path. */
  values(cmd: Command): Record<string, LeafValue> {
    const opts = cmd.opts<Record<string, unknown>>();
    const out: Record<string, LeafValue> = {};
    for (const [attribute, f] of this.attributes) {
      const value = opts[attribute];
      if (value !== undefined) out[f.path] = value as LeafValue;
    }
    return out;
  }
}

export interface ConfigSource {
  configPath?: string;
  expandEnv: boolean;
}

/** Piko's `--config.path` and `--config.expand-env`. */
export function addConfigOptions(cmd: Command): void {
  cmd.addOption(new Option('--config.path <path>', 'YAML config file; its keys override the same flags.'));
  cmd.addOption(
    new Option(
      '--config.expand-env',
      'Substitute ${VAR}, $VAR and ${VAR:default} in the config file with environment variables (undefined ones become empty).',
    ),
  );
  cmd.addOption(new Option('--no-config.expand-env').hideHelp());
}

export function configSource(cmd: Command): ConfigSource {
  const opts = cmd.opts<Record<string, unknown>>();
  const path = opts['config.path'];
  return {
    ...(typeof path === 'string' ? { configPath: path } : {}),
    expandEnv: opts['config.expandEnv'] === true,
  };
}

/** Long names of every boolean option in a command tree (with the dashes). */
export function booleanFlags(root: Command): Set<string> {
  const out = new Set<string>();
  const walk = (cmd: Command): void => {
    for (const option of cmd.options) {
      if (option.isBoolean() && !option.negate && option.long !== undefined) out.add(option.long);
    }
    cmd.commands.forEach(walk);
  };
  walk(root);
  return out;
}

/**
 * pflag accepts `--flag=false` for booleans; commander does not. Rewrites
 * `--flag=<bool>` into `--flag` or `--no-flag` (Go's ParseBool words), up to
 * a `--` terminator.
 */
export function normaliseBooleanArgs(argv: readonly string[], booleans: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let done = false;
  for (const arg of argv) {
    if (done || !arg.startsWith('--')) {
      out.push(arg);
      continue;
    }
    if (arg === '--') {
      done = true;
      out.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (eq < 0 || !booleans.has(name)) {
      out.push(arg);
      continue;
    }
    const value = parseBoolWord(arg.slice(eq + 1));
    if (value === undefined) {
      throw new ConfigError(`${name} must be a boolean, got ${JSON.stringify(arg.slice(eq + 1))}`);
    }
    out.push(value ? name : `--no-${name.slice(2)}`);
  }
  return out;
}

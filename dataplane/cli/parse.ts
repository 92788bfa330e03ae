/**
 * Flag parsing as pure functions: the real command tree is built with run
 * functions that only capture the config, so tests cover exactly what the
 * CLI does without spawning a process.
 */
import { CommanderError } from 'commander';
import type { AgentConfig } from '../config/agent-config';
import { ConfigError } from '../config/errors';
import type { ForwardConfig } from '../config/forward-config';
import type { ServerConfig } from '../config/server-config';
import { booleanFlags, normaliseBooleanArgs } from './options';
import { createProgram, type CliDeps } from './program';

export interface ParseOptions {
  /** Substitutions for `--config.expand-env`; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

/** `argv` follows `piko server`, e.g. `['--proxy.bind-addr', ':9000']`. */
export function parseServerCommand(argv: readonly string[], options: ParseOptions = {}): ServerConfig {
  return capture('server', argv, options, 'server');
}

/** `argv` follows `piko agent`, e.g. `['http', 'my-endpoint', '3000', '--timeout', '5s']`. */
export function parseAgentCommand(argv: readonly string[], options: ParseOptions = {}): AgentConfig {
  return capture('agent', argv, options, 'agent');
}

/** `argv` follows `piko forward`, e.g. `['tcp', '3000', 'my-endpoint']`. */
export function parseForwardCommand(argv: readonly string[], options: ParseOptions = {}): ForwardConfig {
  return capture('forward', argv, options, 'forward');
}

type Captured = { server: ServerConfig; agent: AgentConfig; forward: ForwardConfig };

function capture<K extends keyof Captured>(command: string, argv: readonly string[], options: ParseOptions, kind: K): Captured[K] {
  const got: Partial<Captured> = {};
  let stderr = '';
  const deps: CliDeps = {
    runServer: async (c) => void (got.server = c),
    runAgent: async (c) => void (got.agent = c),
    runForward: async (c) => void (got.forward = c),
    writeOut: () => undefined,
    writeErr: (s) => void (stderr += s),
    ...(options.env === undefined ? {} : { env: options.env }),
  };
  const program = createProgram(deps);
  try {
    // Actions build the config synchronously before their first await, so
    // the synchronous parse has captured it (or thrown) when it returns.
    void program.parse(normaliseBooleanArgs([command, ...argv], booleanFlags(program)), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      throw new ConfigError((stderr.trim() || err.message).replace(/^error: /, ''), { cause: err });
    }
    throw err;
  }
  const config = got[kind];
  if (config === undefined) throw new ConfigError(`piko ${command} ${argv.join(' ')} runs no ${kind}`);
  return config as Captured[K];
}

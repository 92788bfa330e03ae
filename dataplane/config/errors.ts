export interface ConfigErrorOptions {
  /**
   * The config key at fault as spelled in YAML (`proxy.timeout`,
   * `listeners[0].addr`); empty when the error concerns the whole file.
   */
  path?: string;
  /** The YAML file the value came from, when it came from one. */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  cause?: unknown;
}

/**
 * Any configuration the process cannot start with: an unreadable or invalid
 * YAML file, an unknown key, a value of the wrong type, a failed check. The
 * message is meant for the user as is (the CLI prints `error: <message>`).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_CONFIG';
  readonly path: string;
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, options: ConfigErrorOptions = {}) {
    const where =
      options.file === undefined ? '' : options.line === undefined ? ` (${options.file})` : ` (${options.file} line ${options.line})`;
    super(message + where, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = options.path ?? '';
    this.file = options.file;
    this.line = options.line;
  }
}

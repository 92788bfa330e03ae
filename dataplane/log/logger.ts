import winston from 'winston';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: LogLevel;
  /**
   * Subsystems that log at every level whatever `level` says (Piko's
   * `--log.subsystems`), matched exactly against the `subsystem` field.
   */
  subsystems?: readonly string[];
  /** JSON (production) or a readable single line for a terminal. */
  format?: 'json' | 'text';
  /** Where records go; stderr by default, like Piko. */
  stream?: NodeJS.WritableStream;
}

// winston's own level order, named once so the subsystem filter can compare.
const SEVERITY: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * Builds the one logger of a process. Subsystems take a child:
 * `logger.child({ subsystem: 'proxy' })`. Field keys are camelCase and
 * stable; messages are short and lower case; tokens are never logged.
 */
export function createLogger(options: LoggerOptions): Logger {
  const enabled = new Set(options.subsystems ?? []);
  const threshold = SEVERITY[options.level];
  // The logger itself runs at debug so that enabled subsystems get every
  // level; this filter drops what the configured level excludes.
  const levelFilter = winston.format((info) => {
    const severity = SEVERITY[info.level as LogLevel] ?? 0;
    if (severity <= threshold) return info;
    const subsystem = typeof info.subsystem === 'string' ? info.subsystem : undefined;
    return subsystem !== undefined && enabled.has(subsystem) ? info : false;
  });
  const format =
    options.format === 'text'
      ? winston.format.combine(
          levelFilter(),
          winston.format.timestamp(),
          winston.format.printf((info) => {
            const { level, message, timestamp, subsystem, ...rest } = info;
            const fields = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
            return `${String(timestamp)} ${level} ${subsystem ? `[${String(subsystem)}] ` : ''}${String(message)}${fields}`;
          }),
        )
      : winston.format.combine(levelFilter(), winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: 'debug',
    format,
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
  });
}

/** A logger that discards everything, for tests and library users. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

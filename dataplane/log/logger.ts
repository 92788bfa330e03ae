import winston from 'winston';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type Logger = winston.Logger;

export type LogFormat = 'auto' | 'console' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'console', 'json'];

export interface LoggerOptions {
  level: LogLevel;
  /**
   * Subsystems that log at every level whatever `level` says (Piko's
   * `--log.subsystems`), matched exactly against the `subsystem` field.
   */
  subsystems?: readonly string[];
  /**
   * JSON (production, what log collectors parse), or console: coloured, aligned, one line per
   * event with the same fields, for a person at a terminal. `auto` (the default) picks console
   * when the stream is a terminal and JSON otherwise, as a pod's stderr is.
   */
  format?: LogFormat;
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
  const stream = options.stream ?? process.stderr;
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  const consoleFormat = options.format === 'console' || ((options.format ?? 'auto') === 'auto' && tty);
  const format = consoleFormat
    ? winston.format.combine(
        levelFilter(),
        winston.format.printf((info) => consoleLine(info, tty && process.env['NO_COLOR'] === undefined)),
      )
    : winston.format.combine(levelFilter(), winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: 'debug',
    format,
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that discards everything, for tests and library users. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

const LEVEL_TAGS: Record<LogLevel, { tag: string; colour: string }> = {
  debug: { tag: 'DBG', colour: '\x1b[90m' },
  info: { tag: 'INF', colour: '\x1b[32m' },
  warn: { tag: 'WRN', colour: '\x1b[33m' },
  error: { tag: 'ERR', colour: '\x1b[31m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Messages are padded to this width so the fields after them line up. */
const MESSAGE_WIDTH = 32;

/**
 * `18:04:05.123 INF proxy    request                          method=GET status=200`: the time,
 * the level, the subsystem, the message, then every field as key=value (quoted when it holds a
 * space, JSON when it is not a string).
 */
function consoleLine(info: winston.Logform.TransformableInfo, colour: boolean): string {
  const { level, message, subsystem, timestamp: _timestamp, ...rest } = info;
  // An access record reads as a request line, as ngrok's agent prints one: `POST /orders 201 3.2ms`.
  const { request, ...fields } = rest as { request?: unknown } & Record<string, unknown>;
  const exchange = accessLine(request);
  const now = new Date();
  const time = `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, '0')}`;
  const tag = LEVEL_TAGS[level as LogLevel] ?? { tag: level.toUpperCase().slice(0, 3), colour: '' };
  const sub = typeof subsystem === 'string' ? subsystem : '';
  const text = exchange === undefined ? String(message) : `${String(message)} ${exchange}`;
  if (exchange === undefined && request !== undefined) fields['request'] = request;
  // The rest of the record (host, proto, headers) follows, so console and JSON carry the same fields.
  if (exchange !== undefined) {
    for (const [key, value] of Object.entries(request as Record<string, unknown>)) {
      if (!['method', 'path', 'status', 'duration'].includes(key)) fields[key] = value;
    }
  }
  const pairs = Object.entries(fields)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${colour ? DIM : ''}${key}=${colour ? RESET : ''}${fieldValue(value)}`);
  const head = [
    colour ? `${DIM}${time}${RESET}` : time,
    colour ? `${tag.colour}${tag.tag}${RESET}` : tag.tag,
    sub.padEnd(8),
    pairs.length > 0 ? text.padEnd(MESSAGE_WIDTH) : text,
  ].join(' ');
  return pairs.length > 0 ? `${head} ${pairs.join(' ')}` : head;
}

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

/** `POST /orders 201 3.2ms` for an access log record's `request`; undefined for anything else. */
function accessLine(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const r = request as { method?: unknown; path?: unknown; status?: unknown; duration?: unknown };
  if (typeof r.method !== 'string' || typeof r.path !== 'string' || typeof r.status !== 'number') return undefined;
  return `${r.method} ${r.path} ${r.status}${typeof r.duration === 'string' ? ` ${r.duration}` : ''}`;
}

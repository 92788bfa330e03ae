/**
 * What the SDK logs through: the four levels and child loggers, which a winston logger (the
 * agent's) and most other loggers already are. The SDK itself needs no logging library, so an
 * application that installs it gets none.
 */
export interface ClientLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
  child(meta: Record<string, unknown>): ClientLogger;
}

const SILENT: ClientLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => SILENT,
};

/** The logger of an application that gave none. */
export function silentClientLogger(): ClientLogger {
  return SILENT;
}

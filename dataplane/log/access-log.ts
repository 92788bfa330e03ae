import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Logger, LogLevel } from './logger';

export interface HeaderListConfig {
  allowList: string[];
  blockList: string[];
}

/** Piko's `access_log` block (server proxy and agent HTTP listeners). */
export interface AccessLogConfig {
  level: LogLevel;
  disable: boolean;
  requestHeaders: HeaderListConfig;
  responseHeaders: HeaderListConfig;
}

export interface AccessLogRecord {
  method: string;
  host: string;
  /** The URL path; a query string, if passed, is dropped as Piko does. */
  path: string;
  /** As Go prints it, e.g. `HTTP/1.1`. */
  proto: string;
  status: number;
  durationMs: number;
  requestHeaders: IncomingHttpHeaders;
  responseHeaders: OutgoingHttpHeaders;
  endpointId?: string;
}

export interface AccessLogger {
  log(record: AccessLogRecord): void;
}

/** The shape of the `request` field, byte for byte Piko's `loggedRequest`. */
export interface LoggedRequest {
  proto: string;
  method: string;
  host: string;
  path: string;
  request_headers: Record<string, string[]>;
  response_headers: Record<string, string[]>;
  status: number;
  duration: string;
}

export const REDACTED = '[REDACTED]';

// Piko logs these verbatim when no list removes them, which writes bearer
// tokens and session cookies into the log. A cookie is a credential as a
// token is, so all are redacted whatever the allow list says; the header
// name stays so the record still shows that the client authenticated.
const ALWAYS_REDACTED: ReadonlySet<string> = new Set([
  'authorization',
  'x-piko-authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
]);

/** Headers as records show them: every credential header's values replaced by REDACTED. */
export function redactHeaders(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    out[canonicalHeaderKey(name)] = ALWAYS_REDACTED.has(name) ? values.map(() => REDACTED) : values;
  }
  return out;
}

// Piko's own routes (`/_piko/v1/...`) are plumbing, not user traffic.
const INTERNAL_PATH_PREFIX = '/_piko';

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Builds the access logger of one HTTP proxy. `logger` should already carry
 * its subsystem (Piko: `proxy.access` on the server, `proxy.http.access` on
 * the agent). Records go out at the configured level, raised to warn for
 * 5xx, so a quiet access log still shows failing upstreams.
 */
export function createAccessLogger(logger: Logger, cfg: AccessLogConfig): AccessLogger {
  // Piko returns before building the record when disabled: nothing at all is
  // logged, not even at debug.
  if (cfg.disable) return { log: () => undefined };

  const filterRequest = headerFilter(cfg.requestHeaders);
  const filterResponse = headerFilter(cfg.responseHeaders);
  const level = cfg.level;

  return {
    log(record) {
      const path = stripQuery(record.path);
      if (path.startsWith(INTERNAL_PATH_PREFIX)) return;

      const request: LoggedRequest = {
        proto: record.proto,
        method: record.method,
        host: record.host,
        path,
        request_headers: filterRequest(record.requestHeaders),
        response_headers: filterResponse(record.responseHeaders),
        status: record.status,
        duration: formatGoDuration(record.durationMs),
      };
      const recordLevel = record.status >= 500 && SEVERITY[level] < SEVERITY.warn ? 'warn' : level;
      const fields: { request: LoggedRequest; endpointId?: string } = { request };
      if (record.endpointId !== undefined) fields.endpointId = record.endpointId;
      logger.log(recordLevel, 'request', fields);
    },
  };
}

type HeaderFilter = (headers: IncomingHttpHeaders | OutgoingHttpHeaders) => Record<string, string[]>;

function headerFilter(lists: HeaderListConfig): HeaderFilter {
  const allow = new Set(lists.allowList.map((h) => h.toLowerCase()));
  const block = new Set(lists.blockList.map((h) => h.toLowerCase()));
  // Allow and block are mutually exclusive by validation; if both arrive
  // anyway, the allow list wins as in Piko, which is also the safer reading.
  const keep = allow.size > 0 ? (name: string) => allow.has(name) : block.size > 0 ? (name: string) => !block.has(name) : () => true;

  return (headers) => redactHeaders(Object.fromEntries(Object.entries(headers).filter(([name]) => keep(name.toLowerCase()))));
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Go's textproto.CanonicalMIMEHeaderKey (`content-type` → `Content-Type`),
 * so records key headers exactly as Piko's do. Names that are not valid
 * tokens are left as they are, as Go does.
 */
export function canonicalHeaderKey(name: string): string {
  if (!TOKEN_CHAR.test(name)) return name;
  let upper = true;
  let out = '';
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch.toLowerCase();
    upper = ch === '-';
  }
  return out;
}

const NS_PER_US = 1_000;
const NS_PER_MS = 1_000_000;
const NS_PER_S = 1_000_000_000;

/**
 * Go's time.Duration.String for a duration in milliseconds: `0s`, `850ns`,
 * `1.5µs`, `1.234ms`, `2.5s`, `1m30s`, `1h0m0.5s`. Fractional milliseconds
 * are kept to the nanosecond.
 */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '0s';
  let ns = Math.round(Math.abs(ms) * NS_PER_MS);
  const sign = ms < 0 && ns > 0 ? '-' : '';
  if (ns === 0) return '0s';
  if (ns < NS_PER_S) {
    if (ns < NS_PER_US) return `${sign}${ns}ns`;
    if (ns < NS_PER_MS) return `${sign}${fraction(ns, 3)}µs`;
    return `${sign}${fraction(ns, 6)}ms`;
  }
  const seconds = fraction(ns % (60 * NS_PER_S), 9);
  ns = Math.floor(ns / (60 * NS_PER_S));
  if (ns === 0) return `${sign}${seconds}s`;
  const minutes = ns % 60;
  const hours = Math.floor(ns / 60);
  return hours > 0 ? `${sign}${hours}h${minutes}m${seconds}s` : `${sign}${minutes}m${seconds}s`;
}

// `value / 10^precision` printed with trailing zeros (and a bare point)
// dropped, as Go's fmtFrac does.
function fraction(value: number, precision: number): string {
  const scale = 10 ** precision;
  const whole = Math.floor(value / scale);
  const frac = (value % scale).toString().padStart(precision, '0').replace(/0+$/, '');
  return frac === '' ? `${whole}` : `${whole}.${frac}`;
}

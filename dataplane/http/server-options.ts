import type http from 'node:http';
import { clampDelay } from '../time/timer';

export interface HttpServerLimits {
  /** Whole request, body included; 0 = none. */
  readTimeoutMs: number;
  /** Request line and headers; 0 = none. */
  readHeaderTimeoutMs: number;
  /** Keep-alive wait for the next request. */
  idleTimeoutMs: number;
  maxHeaderBytes: number;
}

// Node checks its header and request deadlines on a sweep, every 30 s by
// default, so a 10 s timeout fired anywhere up to 40 s. A tenth of the
// shortest deadline keeps the error under 10%; the floor bounds the cost of
// the sweep, which walks every open connection.
const MIN_CHECK_INTERVAL_MS = 250;
const MAX_CHECK_INTERVAL_MS = 30_000;

/**
 * `http.Server` options for our limits, in the shape Node accepts: Node
 * refuses a header timeout above the request timeout (a Go server allows
 * it, so Piko's flags do), and delays past 24.8 days overflow its timers.
 */
export function httpServerOptions(limits: HttpServerLimits): http.ServerOptions {
  const requestTimeout = clampDelay(limits.readTimeoutMs);
  let headersTimeout = clampDelay(limits.readHeaderTimeoutMs);
  // The whole request includes its headers, so the shorter limit binds both.
  if (requestTimeout > 0 && (headersTimeout === 0 || headersTimeout > requestTimeout)) headersTimeout = requestTimeout;
  const deadlines = [requestTimeout, headersTimeout].filter((ms) => ms > 0);
  const shortest = deadlines.length > 0 ? Math.min(...deadlines) : MAX_CHECK_INTERVAL_MS * 10;
  return {
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: clampDelay(limits.idleTimeoutMs),
    maxHeaderSize: limits.maxHeaderBytes,
    connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(shortest / 10))),
  };
}

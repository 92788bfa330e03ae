import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones Go's reverse proxy also drops.
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The header names a Connection header lists, lower-cased: hop-by-hop for this message too. */
export function connectionTokens(value: string | string[] | undefined): Set<string> {
  const tokens = new Set<string>();
  if (value === undefined) return tokens;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '') tokens.add(token);
  }
  return tokens;
}

/**
 * A copy of request headers for the next hop: hop-by-hop headers, any the
 * Connection header names and any in `alsoDrop` removed.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders, alsoDrop: ReadonlySet<string> = new Set()): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || alsoDrop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** X-Forwarded-For with this hop's client appended. */
export function appendForwardedFor(headers: IncomingHttpHeaders, remoteAddress: string): string {
  const prior = headers['x-forwarded-for'];
  return prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remoteAddress}` : remoteAddress;
}

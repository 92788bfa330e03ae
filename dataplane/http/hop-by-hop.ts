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

const NOTHING: ReadonlySet<string> = new Set();

/**
 * A copy of request headers for the next hop: hop-by-hop headers, any the
 * Connection header names and any in `alsoDrop` removed. `TE: trailers`
 * stays, as Go's reverse proxy keeps it: it tells the upstream that the
 * trailers it sends will be relayed.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders, alsoDrop: ReadonlySet<string> = NOTHING): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || alsoDrop.has(name)) continue;
    out[name] = value;
  }
  const te = headers.te;
  if (typeof te === 'string' && connectionTokens(te).has('trailers')) out.te = 'trailers';
  return out;
}

/**
 * Response headers as a flat raw list (duplicates such as Set-Cookie kept),
 * hop-by-hop ones and any the Connection header names removed; on a 101,
 * Connection and Upgrade stay, since they are the answer.
 */
export function downstreamResponseHeaders(rawHeaders: readonly string[], keepUpgrade: boolean): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === 'connection') {
      named ??= new Set();
      for (const token of connectionTokens(rawHeaders[i + 1])) named.add(token);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    const upgradeHeader = keepUpgrade && (lower === 'connection' || lower === 'upgrade');
    if (upgradeHeader || !(HOP_BY_HOP.has(lower) || named?.has(lower))) out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

/** X-Forwarded-For with this hop's client appended. */
export function appendForwardedFor(headers: IncomingHttpHeaders, remoteAddress: string): string {
  const prior = headers['x-forwarded-for'];
  return prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${remoteAddress}` : remoteAddress;
}

import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The endpoint a proxied HTTP request is for, by Piko's rules: a non-empty
 * `x-piko-endpoint` header wins; otherwise the first label of a multi-label
 * Host that is not an IP address. Case is kept; no domain suffix is checked.
 */
export function endpointIdFromHeaders(headers: IncomingHttpHeaders): string | undefined {
  const explicit = headers['x-piko-endpoint'];
  const value = Array.isArray(explicit) ? explicit[0] : explicit;
  if (value !== undefined && value !== '') return value;
  const host = headers.host;
  if (host === undefined || host === '') return undefined;
  const hostname = stripPort(host);
  if (hostname === '' || isIP(hostname) !== 0) return undefined;
  const dot = hostname.indexOf('.');
  if (dot < 0) return undefined;
  return hostname.slice(0, dot) || undefined;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    // [v6]:port or [v6]
    const close = host.indexOf(']');
    return close < 0 ? host : host.slice(1, close);
  }
  const colon = host.lastIndexOf(':');
  // More than one colon without brackets is a bare IPv6 address, not host:port.
  if (colon < 0 || host.indexOf(':') !== colon) return host;
  return host.slice(0, colon);
}

/** The endpoint of a `/_piko/v1/tcp/<endpoint>` path, or undefined for any other path. */
export function endpointIdFromTcpPath(url: string): string | undefined {
  const prefix = '/_piko/v1/tcp/';
  if (!url.startsWith(prefix)) return undefined;
  const end = url.indexOf('?');
  const segment = url.slice(prefix.length, end < 0 ? undefined : end);
  if (segment === '' || segment.includes('/')) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

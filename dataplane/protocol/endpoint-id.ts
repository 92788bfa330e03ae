import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { ENDPOINT_HEADER, TCP_PATH } from './wire';
import { hostnameOf } from '../net/host-port';

/**
 * Endpoint IDs: what a valid one is, and where a request names it. Shared by the config, the
 * proxy, the upstream server and the SDK.
 *
 * Piko accepts any string. We are stricter: an ID travels in URL paths
 * (`/piko/v1/upstream/:id`), in a header and in a Host label, and later in
 * Kubernetes object names and metrics labels, where `/`, spaces or control
 * characters would be ambiguous or unsafe. The set is RFC 3986's
 * "unreserved" characters, which need no escaping anywhere.
 */

export const MAX_ENDPOINT_ID_LENGTH = 128;

const ALLOWED = /^[A-Za-z0-9._~-]$/;

/** An error message for an invalid endpoint ID, or undefined when it is valid. */
export function validateEndpointId(id: string): string | undefined {
  if (id.length === 0) return 'endpoint id is empty';
  for (const ch of id) {
    if (!ALLOWED.test(ch)) {
      const shown = JSON.stringify(ch);
      return `endpoint id ${JSON.stringify(id)} contains ${shown}; only letters, digits and . _ ~ - are allowed`;
    }
  }
  if (id.length > MAX_ENDPOINT_ID_LENGTH) {
    return `endpoint id is ${id.length} characters long; the limit is ${MAX_ENDPOINT_ID_LENGTH}`;
  }
  return undefined;
}

/**
 * The endpoint a proxied HTTP request is for, by Piko's rules: a non-empty
 * `x-piko-endpoint` header wins; otherwise the first label of a multi-label
 * Host that is not an IP address. Case is kept; no domain suffix is checked.
 */
export function endpointIdFromHeaders(headers: IncomingHttpHeaders): string | undefined {
  const explicit = headers[ENDPOINT_HEADER];
  const value = Array.isArray(explicit) ? explicit[0] : explicit;
  if (value !== undefined && value !== '') return value;
  const host = headers.host;
  if (host === undefined || host === '') return undefined;
  const hostname = hostnameOf(host);
  if (hostname === '' || isIP(hostname) !== 0) return undefined;
  const dot = hostname.indexOf('.');
  if (dot < 0) return undefined;
  return hostname.slice(0, dot) || undefined;
}

/** The endpoint of a `/_piko/v1/tcp/<endpoint>` path, or undefined for any other path. */
export function endpointIdFromTcpPath(url: string): string | undefined {
  const prefix = TCP_PATH;
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

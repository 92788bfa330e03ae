import { TCP_PATH, UPSTREAM_PATH } from '../protocol/wire';
import { ClientError } from './errors';

export const DEFAULT_UPSTREAM_URL = 'http://localhost:8001';
export const DEFAULT_PROXY_URL = 'http://localhost:8000';

/** The WebSocket URL a listener connects to: `<base>/piko/v1/upstream/<id>` on the upstream port. */
export function upstreamUrl(base: string, endpointId: string): string {
  return endpointUrl(base, UPSTREAM_PATH, endpointId);
}

/** The WebSocket URL `dial` connects to: `<base>/_piko/v1/tcp/<id>` on the proxy port. */
export function tcpUrl(base: string, endpointId: string): string {
  return endpointUrl(base, TCP_PATH, endpointId);
}

/**
 * Piko appends the route to whatever path the base has, so a path prefix
 * (a server behind a path-routing load balancer) is kept. Unlike Piko, a
 * trailing slash on the base is dropped rather than producing `//piko`,
 * which no server routes. http maps to ws and https to wss.
 */
function endpointUrl(base: string, route: string, endpointId: string): string {
  if (endpointId === '') throw new ClientError('ERR_CLIENT_INVALID_ARGUMENT', 'endpoint id is empty');
  let url: URL;
  try {
    url = new URL(base);
  } catch (cause) {
    throw new ClientError('ERR_CLIENT_INVALID_ARGUMENT', `invalid server url ${JSON.stringify(base)}`, { cause });
  }
  switch (url.protocol) {
    case 'http:':
      url.protocol = 'ws:';
      break;
    case 'https:':
      url.protocol = 'wss:';
      break;
    case 'ws:':
    case 'wss:':
      break;
    default:
      throw new ClientError('ERR_CLIENT_INVALID_ARGUMENT', `server url ${JSON.stringify(base)} must use http, https, ws or wss`);
  }
  // The ID is one path segment on the server; escaping keeps a `/` or `?` in it from changing the route.
  url.pathname = url.pathname.replace(/\/+$/, '') + route + encodeURIComponent(endpointId);
  return url.toString();
}

/** The URL without credentials, for logs and error messages. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.username === '' && url.password === '') return raw;
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return '(invalid url)';
  }
}

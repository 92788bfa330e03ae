import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { appendForwardedFor, endToEndHeaders } from '../http/hop-by-hop';

// The agent forwards as Go's httputil.ReverseProxy does, which the server's
// header rules (dataplane/proxy/headers.ts) do not match: keep-alive toward
// the local service, no X-Forwarded-Proto/Host, no x-piko-forward of its own.

/**
 * Headers for the request to the local service: hop-by-hop headers (and
 * any named in Connection) removed, `TE: trailers` kept, the client's
 * address appended to X-Forwarded-For, Host kept as the client sent it
 * (or, as Go sends it, the service's own when the client sent none).
 */
export function localRequestHeaders(headers: IncomingHttpHeaders, remoteAddress: string | undefined, target: URL): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers);
  if (remoteAddress !== undefined) {
    out['x-forwarded-for'] = appendForwardedFor(headers, remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress);
  }
  out.host ??= target.host;
  return out;
}

/**
 * The local request target: the listener URL's path joined with the
 * request's, and both queries kept, as Go's NewSingleHostReverseProxy does
 * (`http://svc/api` + `/users?id=1` is `/api/users?id=1`).
 */
export function localRequestPath(target: URL, requestUrl: string): string {
  const q = requestUrl.indexOf('?');
  const path = q < 0 ? requestUrl : requestUrl.slice(0, q);
  const query = q < 0 ? '' : requestUrl.slice(q + 1);
  const base = target.pathname;
  const aSlash = base.endsWith('/');
  const bSlash = path.startsWith('/');
  const joined = aSlash && bSlash ? base + path.slice(1) : !aSlash && !bSlash ? `${base}/${path}` : base + path;
  const targetQuery = target.search.startsWith('?') ? target.search.slice(1) : target.search;
  const merged = targetQuery === '' || query === '' ? targetQuery + query : `${targetQuery}&${query}`;
  return merged === '' ? joined : `${joined}?${merged}`;
}

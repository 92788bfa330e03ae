import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { appendForwardedFor, endToEndHeaders } from '../http/hop-by-hop';

// The agent forwards as Go's httputil.ReverseProxy does, which the server's
// header rules (dataplane/proxy/headers.ts) do not match: keep-alive toward
// the local service, no X-Forwarded-Proto/Host, no x-piko-forward of its own.

/**
 * Headers for the request to the local service: hop-by-hop headers (and
 * any named in Connection) removed, `TE: trailers` kept, the client's
 * address appended to X-Forwarded-For, Host kept as the client sent it.
 * For an upgrade, Connection and Upgrade are set again.
 */
export function localRequestHeaders(
  headers: IncomingHttpHeaders,
  remoteAddress: string | undefined,
  upgrade: string | undefined,
): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers);
  // Go keeps this one hop-by-hop header: it tells the service trailers are welcome.
  const te = headers.te;
  if (typeof te === 'string' && te.toLowerCase() === 'trailers') out.te = 'trailers';
  if (remoteAddress !== undefined) {
    out['x-forwarded-for'] = appendForwardedFor(headers, remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress);
  }
  if (upgrade !== undefined) {
    out.connection = 'Upgrade';
    out.upgrade = upgrade;
  }
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

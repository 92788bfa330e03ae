import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { appendForwardedFor, endToEndHeaders } from '../http/hop-by-hop';
import { FORWARDED_HEADER } from '../protocol/wire';
import { FORWARD_AUTH_HEADER } from './remote/forward-auth';

// The inter-node credential is for this hop only; the upstream app never sees it.
const THIS_HOP_ONLY: ReadonlySet<string> = new Set([FORWARD_AUTH_HEADER]);

export interface ForwardedContext {
  /** The client's address as this hop saw it. */
  remoteAddress: string | undefined;
  /** Scheme the client used to reach this hop. */
  proto: 'http' | 'https';
}

/**
 * The headers a proxied request carries upstream: hop-by-hop ones removed
 * (and any the client named in Connection), X-Forwarded-For appended,
 * X-Forwarded-Proto/Host set when no earlier hop set them, and Piko's
 * `x-piko-forward` marker. Connection and Upgrade are the reverse proxy's.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, ctx: ForwardedContext): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, THIS_HOP_ONLY);
  if (ctx.remoteAddress !== undefined) out['x-forwarded-for'] = appendForwardedFor(headers, ctx.remoteAddress);
  if (headers['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = ctx.proto;
  if (headers['x-forwarded-host'] === undefined && headers.host !== undefined) out['x-forwarded-host'] = headers.host;
  out[FORWARDED_HEADER] = 'true';
  return out;
}

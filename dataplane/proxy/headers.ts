import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { appendForwardedFor, connectionTokens, endToEndHeaders, HOP_BY_HOP } from '../http/hop-by-hop';
import { FORWARDED_HEADER } from '../protocol/wire';
import { FORWARD_AUTH_HEADER } from './remote/forward-auth';

// The inter-node credential is for this hop only; the upstream app never sees it.
const THIS_HOP_ONLY: ReadonlySet<string> = new Set([FORWARD_AUTH_HEADER]);

export interface ForwardedContext {
  /** The client's address as this hop saw it. */
  remoteAddress: string | undefined;
  /** Scheme the client used to reach this hop. */
  proto: 'http' | 'https';
  /** Keep Connection/Upgrade: the request is a protocol upgrade. */
  upgrade: boolean;
}

/**
 * The headers a proxied request carries upstream: hop-by-hop ones removed
 * (and any the client named in Connection), X-Forwarded-For appended,
 * X-Forwarded-Proto/Host set when no earlier hop set them, Piko's
 * `x-piko-forward` marker, and one request per stream.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, ctx: ForwardedContext): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, THIS_HOP_ONLY);
  if (ctx.remoteAddress !== undefined) out['x-forwarded-for'] = appendForwardedFor(headers, ctx.remoteAddress);
  if (headers['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = ctx.proto;
  if (headers['x-forwarded-host'] === undefined && headers.host !== undefined) out['x-forwarded-host'] = headers.host;
  out[FORWARDED_HEADER] = 'true';
  if (ctx.upgrade && headers.upgrade !== undefined) {
    out.connection = 'Upgrade';
    out.upgrade = headers.upgrade;
  } else {
    // One request per stream: a multiplexed tunnel makes keep-alive pointless.
    out.connection = 'close';
  }
  return out;
}

/** Response headers as a flat raw list (duplicates such as Set-Cookie kept), hop-by-hop removed. */
export function downstreamResponseHeaders(rawHeaders: readonly string[], keepUpgrade: boolean): string[] {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === 'connection') {
      for (const token of connectionTokens(rawHeaders[i + 1])) named.add(token);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    const keep = keepUpgrade
      ? lower === 'connection' || lower === 'upgrade' || !(HOP_BY_HOP.has(lower) || named.has(lower))
      : !(HOP_BY_HOP.has(lower) || named.has(lower));
    if (keep) out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

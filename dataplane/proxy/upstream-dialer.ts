import type { LocalUpstreams } from '../registry/local-upstreams';
import type { Upstream } from '../registry/upstream';
import { isTunnelError } from '../tunnel/errors';
import type { TunnelStream } from '../tunnel/stream';
import { ProxyError } from '../http/proxy-error';

export interface DialResult {
  stream: TunnelStream;
  upstream: Upstream;
}

/**
 * Opens a stream to one of the endpoint's local upstreams, round robin. A
 * stream that fails to open carried no byte of the request (we wait for the
 * upstream's ACK before writing), so the next upstream is tried: a request
 * racing an upstream's GoAway lands on another one instead of failing.
 * With `early` the stream comes back before the ACK (see Session.open); a
 * refusal is then the caller's to act on.
 */
export async function dialLocalUpstream(upstreams: LocalUpstreams, endpointId: string, early = false): Promise<DialResult> {
  const candidates = upstreams.candidates(endpointId);
  let lastError: unknown;
  for (const upstream of candidates) {
    if (!upstream.available) continue;
    try {
      return { stream: await upstream.open({ early }), upstream };
    } catch (err) {
      if (!isTunnelError(err)) throw err;
      lastError = err;
    }
  }
  if (lastError === undefined) throw new ProxyError('ERR_NO_UPSTREAM', { detail: endpointId });
  throw new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: lastError, detail: endpointId });
}

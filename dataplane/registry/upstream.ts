import type { TunnelStream } from '../tunnel/stream';

/** One connected upstream listener: a tunnel session registered on an endpoint. */
export interface Upstream {
  /** Unique per connection, for logs and status. */
  readonly id: string;
  readonly endpointId: string;
  /** False once the upstream said GoAway or its session ended. */
  readonly available: boolean;
  /**
   * Opens a stream to the upstream; resolves once the upstream accepted it,
   * or at once with `early` (Session.open: a refusal then comes as an
   * ERR_YAMUX_STREAM_REFUSED error on the stream).
   */
  open(options?: { early?: boolean }): Promise<TunnelStream>;
}

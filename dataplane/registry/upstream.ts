import type { TunnelStream } from '../tunnel/stream';

/** One connected upstream listener: a tunnel session registered on an endpoint. */
export interface Upstream {
  /** Unique per connection, for logs and status. */
  readonly id: string;
  readonly endpointId: string;
  /** False once the upstream said GoAway or its session ended. */
  readonly available: boolean;
  /** Opens a stream to the upstream; resolves once the upstream accepted it. */
  open(): Promise<TunnelStream>;
}

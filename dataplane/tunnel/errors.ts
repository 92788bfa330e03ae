/** Stable codes for every way a tunnel can fail; callers branch on these. */
export type TunnelErrorCode =
  | 'ERR_YAMUX_PROTOCOL' // the peer broke the framing rules
  | 'ERR_YAMUX_WINDOW_EXCEEDED' // the peer sent more than the window it was given
  | 'ERR_YAMUX_GOAWAY' // the peer asked us to stop opening streams
  | 'ERR_YAMUX_REMOTE_ERROR' // the peer ended the session with a GoAway error code
  | 'ERR_YAMUX_SESSION_CLOSED' // the session is gone
  | 'ERR_YAMUX_STREAM_RESET' // the peer reset the stream
  | 'ERR_YAMUX_STREAM_REFUSED' // the peer answered our SYN with RST
  | 'ERR_YAMUX_OPEN_TIMEOUT' // the peer did not acknowledge a new stream in time
  | 'ERR_YAMUX_KEEPALIVE_TIMEOUT' // the peer stopped answering pings
  | 'ERR_YAMUX_TOO_MANY_STREAMS' // a local or remote stream limit was reached
  | 'ERR_YAMUX_CONGESTED' // the peer does not read what we send to it
  | 'ERR_TRANSPORT'; // the WebSocket under the session failed

export class TunnelError extends Error {
  readonly code: TunnelErrorCode;

  constructor(code: TunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TunnelError';
    this.code = code;
  }
}

export function isTunnelError(err: unknown, code?: TunnelErrorCode): err is TunnelError {
  return err instanceof TunnelError && (code === undefined || err.code === code);
}

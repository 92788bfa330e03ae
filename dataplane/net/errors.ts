export type NetErrorCode =
  | 'ERR_INVALID_ADDRESS' // not host:port, or a port beyond 65535
  | 'ERR_LISTEN'; // the address is taken, not ours, or not permitted

/** An address the process cannot use; `field` is the flag or key that gave it, as in the message. */
export class NetError extends Error {
  override readonly name = 'NetError';
  constructor(
    readonly code: NetErrorCode,
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

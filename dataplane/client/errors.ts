import { STATUS_CODES } from 'node:http';

/** Stable codes for every way the SDK can fail; callers branch on these. */
export type ClientErrorCode =
  | 'ERR_CLIENT_INVALID_ARGUMENT' // a bad URL, endpoint ID or option
  | 'ERR_CLIENT_CONNECT' // no HTTP answer: refused, reset, TLS or proxy failure, handshake timeout
  | 'ERR_CLIENT_HTTP_STATUS' // the server answered the handshake with an HTTP error status
  | 'ERR_CLIENT_TIMEOUT' // the connect timeout elapsed before a connection was up
  | 'ERR_CLIENT_ABORTED' // the caller's AbortSignal fired
  | 'ERR_CLIENT_CLOSED' // the listener was closed while connecting
  | 'ERR_CLIENT_PROTOCOL' // the server broke the byte-stream protocol (a text message)
  | 'ERR_CLIENT_TOKEN_FILE'; // a token file is missing, unreadable, empty or too large

// Piko's agents retry these; anything else (401, 404, ...) will not get better by retrying.
const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;
  /** The HTTP status of a rejected handshake (`ERR_CLIENT_HTTP_STATUS`). */
  readonly status: number | undefined;
  /** The `error` field of the server's JSON body (Piko's message, e.g. `invalid token`). */
  readonly serverError: string | undefined;

  constructor(code: ClientErrorCode, message: string, options: { cause?: unknown; status?: number; serverError?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.serverError = options.serverError;
  }

  /**
   * Whether trying again may succeed: no HTTP answer at all, or one of the
   * statuses Piko treats as transient (408, 429, 500, 502, 503, 504).
   */
  get retryable(): boolean {
    if (this.code === 'ERR_CLIENT_CONNECT') return true;
    return this.code === 'ERR_CLIENT_HTTP_STATUS' && this.status !== undefined && RETRYABLE_STATUS.has(this.status);
  }
}

export function isClientError(err: unknown, code?: ClientErrorCode): err is ClientError {
  return err instanceof ClientError && (code === undefined || err.code === code);
}

/** `401 Unauthorized: invalid token`, from a rejected handshake. */
export function statusError(status: number, serverError: string | undefined): ClientError {
  const text = STATUS_CODES[status] ?? 'Error';
  const message = serverError ? `${status} ${text}: ${serverError}` : `${status} ${text}`;
  return new ClientError('ERR_CLIENT_HTTP_STATUS', `server answered ${message}`, {
    status,
    ...(serverError === undefined ? {} : { serverError }),
  });
}

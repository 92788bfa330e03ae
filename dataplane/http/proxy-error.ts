export type ProxyErrorCode =
  | 'ERR_MISSING_ENDPOINT'
  | 'ERR_INVALID_ENDPOINT'
  | 'ERR_FORWARD_UNAUTHORIZED'
  | 'ERR_NO_UPSTREAM'
  | 'ERR_UPSTREAM_UNREACHABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_REQUEST_TIMEOUT';

// Status and message as Piko answers them, so clients written for Piko keep working.
const RESPONSES: Record<ProxyErrorCode, { status: number; message: string }> = {
  ERR_MISSING_ENDPOINT: { status: 400, message: 'missing endpoint id' },
  ERR_INVALID_ENDPOINT: { status: 400, message: 'invalid endpoint id' },
  // A request forwarded by another node without a valid inter-node credential.
  ERR_FORWARD_UNAUTHORIZED: { status: 401, message: 'invalid forwarding credential' },
  ERR_NO_UPSTREAM: { status: 502, message: 'no available upstreams' },
  ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'upstream unreachable' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timeout' },
  // The client did not send its whole request within proxy.http.read-timeout.
  ERR_REQUEST_TIMEOUT: { status: 408, message: 'request timeout' },
};

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly status: number;

  constructor(code: ProxyErrorCode, options?: { cause?: unknown; detail?: string }) {
    const { status, message } = RESPONSES[code];
    super(options?.detail ? `${message}: ${options.detail}` : message, options);
    this.name = 'ProxyError';
    this.code = code;
    this.status = status;
  }

  /** What the client is told: Piko's message, without internal detail. */
  get publicMessage(): string {
    return RESPONSES[this.code].message;
  }
}

export function isProxyError(err: unknown, code?: ProxyErrorCode): err is ProxyError {
  return err instanceof ProxyError && (code === undefined || err.code === code);
}

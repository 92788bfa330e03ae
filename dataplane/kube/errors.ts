/**
 * The one error of a failed apiserver request, for the operator and the data plane alike:
 * callers branch on `code`, never on a status number or a message.
 */

export type KubeApiErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'GONE'
  | 'FORBIDDEN'
  | 'UNAUTHORIZED'
  | 'INVALID'
  | 'TOO_MANY_REQUESTS'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'SERVER_ERROR'
  | 'UNKNOWN';

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';

  constructor(
    readonly code: KubeApiErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const STATUS_CODES: Readonly<Record<number, KubeApiErrorCode>> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  410: 'GONE',
  422: 'INVALID',
  429: 'TOO_MANY_REQUESTS',
  503: 'UNAVAILABLE',
  504: 'TIMEOUT',
};

/** Maps an HTTP status of the apiserver to an error code. */
export function codeForStatus(status: number): KubeApiErrorCode {
  return STATUS_CODES[status] ?? (status >= 500 ? 'SERVER_ERROR' : 'UNKNOWN');
}

export function isApiError(err: unknown, code: KubeApiErrorCode): err is KubeApiError {
  return err instanceof KubeApiError && err.code === code;
}

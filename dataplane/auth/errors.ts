/** Stable codes for every way a request can fail authentication. */
export type AuthErrorCode =
  | 'ERR_AUTH_MISSING' // neither x-piko-authorization nor authorization
  | 'ERR_AUTH_INVALID_HEADER' // the header has no space
  | 'ERR_AUTH_UNSUPPORTED_TYPE' // the scheme is not exactly `Bearer`
  | 'ERR_AUTH_INVALID_TOKEN' // bad signature, algorithm or claims
  | 'ERR_AUTH_EXPIRED' // `exp` has passed
  | 'ERR_AUTH_UNKNOWN_TENANT' // tenant header unknown, or missing while tenants exist
  | 'ERR_AUTH_ENDPOINT_NOT_PERMITTED' // the token's piko.endpoints excludes the endpoint
  | 'ERR_AUTH_INTERNAL'; // the verifier itself failed (e.g. the JWKS cannot be fetched)

/**
 * The `error` text Piko sends for each code (reference 1.12). Piko answers
 * an internal failure with a bare 500 and no body; the text here is only for
 * logs.
 */
export const AUTH_ERROR_MESSAGES: Readonly<Record<AuthErrorCode, string>> = {
  ERR_AUTH_MISSING: 'missing authorization',
  ERR_AUTH_INVALID_HEADER: 'invalid authorization',
  ERR_AUTH_UNSUPPORTED_TYPE: 'unsupported auth type',
  ERR_AUTH_INVALID_TOKEN: 'invalid token',
  ERR_AUTH_EXPIRED: 'expired token',
  ERR_AUTH_UNKNOWN_TENANT: 'unknown tenant',
  ERR_AUTH_ENDPOINT_NOT_PERMITTED: 'endpoint not permitted',
  ERR_AUTH_INTERNAL: 'internal error',
};

/**
 * A request that failed authentication. `message` is exactly what Piko puts in
 * `{"error": ...}`, and `status` the HTTP status it answers with. 500 matters
 * beyond accuracy: the Go agent gives up on a 401 but retries a 500, so a
 * JWKS outage must not look like a bad token.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code: AuthErrorCode;
  readonly status: 401 | 500;

  constructor(code: AuthErrorCode, options?: { cause?: unknown }) {
    super(AUTH_ERROR_MESSAGES[code], options);
    this.code = code;
    this.status = code === 'ERR_AUTH_INTERNAL' ? 500 : 401;
  }
}

export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}

export type AuthConfigErrorCode =
  | 'ERR_AUTH_CONFIG_DISABLED' // a verifier was asked for with no key configured
  | 'ERR_AUTH_CONFIG_CONFLICT' // JWKS combined with a static key
  | 'ERR_AUTH_CONFIG_INVALID_KEY' // a PEM that is unreadable, of the wrong type or too weak
  | 'ERR_AUTH_CONFIG_INVALID_JWKS' // bad JWKS URL, durations, or an unreadable/invalid JWKS file
  | 'ERR_AUTH_CONFIG_INVALID_TENANT'; // a tenant without id or auth, or a duplicate id

/**
 * An auth block that cannot be turned into a verifier. `field` is the config
 * path at fault (`proxy.auth.rsa_public_key`), so start-up can say what to fix.
 */
export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';
  constructor(
    readonly code: AuthConfigErrorCode,
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

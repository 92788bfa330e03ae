import { types } from 'node:util';
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { authEnabled, validateAuthConfig, type AuthConfig } from './auth-config';
import { AuthConfigError, AuthError } from './errors';
import { createJwksResolver, JwksUnavailableError, type JwksResolver } from './jwks';
import { loadStaticKeys } from './static-keys';

/** An authenticated Piko token. */
export interface Token {
  /**
   * When the token expires. Absent when it has no `exp`, or when
   * `disableDisconnectOnExpiry` is set (as in Piko, which drops it so the
   * upstream server does not close the session).
   */
  expiry?: Date;
  /** The `piko.endpoints` claim: the endpoint IDs it may use; empty (with no prefixes) = all. */
  endpoints: readonly string[];
  /** Endpoint ID prefixes it may also use (ServiceAccount rules; JWTs have none). */
  endpointPrefixes?: readonly string[];
  /** Who presented it, for logs (a ServiceAccount; JWTs have none). */
  subject?: string;
  /** The tenant it was verified for (upstream port with tenants only). */
  tenantId?: string;
}

export interface TokenVerifier {
  /** Rejects with an AuthError only. */
  verify(token: string): Promise<Token>;
  close(): void;
}

export interface VerifierOptions {
  /** YAML path of the auth block, for config errors (`proxy.auth`). */
  field?: string;
  /** Clock in ms, for claims and the JWKS cache; injected by tests. */
  now?: () => number;
  /** Told when a JWKS (re)load fails; the last good key set stays in use. */
  onJwksError?: (err: Error) => void;
}

/**
 * A verifier for one auth block, following Piko's JWTVerifier: static keys
 * admit only their own algorithms; a JWKS (never mixed with static keys)
 * admits whatever its keys support. Throws AuthConfigError for a block that
 * is disabled or invalid.
 */
export function createVerifier(config: AuthConfig, options: VerifierOptions = {}): TokenVerifier {
  const field = options.field ?? 'auth';
  if (!authEnabled(config)) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_DISABLED', field, `${field} has no key or jwks endpoint`);
  }
  validateAuthConfig(config, field);
  const now = options.now ?? Date.now;

  let getKey: JWTVerifyGetKey;
  let algorithms: string[] | undefined;
  let jwks: JwksResolver | undefined;
  if (config.jwks?.endpoint) {
    const resolver = createJwksResolver(config.jwks, field, { now, onError: options.onJwksError });
    getKey = (header, token) => resolver.getKey(header, token);
    jwks = resolver;
  } else {
    const keys = loadStaticKeys(config, field);
    algorithms = [...keys.keys()];
    // jose has already refused any alg outside `algorithms`, so the lookup hits.
    getKey = async (header) => {
      const key = keys.get(header.alg);
      if (!key) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
      return key;
    };
  }

  let closed = false;
  return {
    async verify(token: string): Promise<Token> {
      if (closed) throw new AuthError('ERR_AUTH_INTERNAL', { cause: new Error('verifier closed') });
      const at = now();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          algorithms,
          audience: config.audience || undefined,
          issuer: config.issuer || undefined,
          currentDate: new Date(at),
        }));
      } catch (err) {
        throw classify(err, at);
      }
      const endpoints = parseEndpoints(payload['piko']);
      if (typeof payload.exp !== 'number' || config.disableDisconnectOnExpiry) return { expiry: undefined, endpoints };
      return { expiry: new Date(payload.exp * 1000), endpoints };
    },
    close(): void {
      closed = true;
      jwks?.close();
    },
  };
}

function classify(err: unknown, at: number): AuthError {
  if (err instanceof JwksUnavailableError) return new AuthError('ERR_AUTH_INTERNAL', { cause: err });
  const cause = describe(err);
  if (err instanceof errors.JWTExpired) return new AuthError('ERR_AUTH_EXPIRED', { cause });
  // Go's validator reports every failed claim and Piko answers `expired
  // token` whenever expiry is among them; jose stops at the first (aud, iss
  // and nbf are checked before exp), so look at exp ourselves.
  if (err instanceof errors.JWTClaimValidationFailed) {
    const exp = err.payload['exp'];
    if (typeof exp === 'number' && exp <= Math.floor(at / 1000)) return new AuthError('ERR_AUTH_EXPIRED', { cause });
  }
  return new AuthError('ERR_AUTH_INVALID_TOKEN', { cause });
}

/**
 * The failure as a bare Error: jose attaches the claims to claim errors and
 * JSON parse errors quote the decoded token, and neither may reach a log.
 */
function describe(err: unknown): Error {
  if (err instanceof errors.JOSEError) return new Error(`${err.code}: ${err.message}`);
  if (types.isNativeError(err)) return new Error(`${err.name}: ${err.message}`);
  return new Error('token verification failed');
}

/** `piko.endpoints`: absent or null means every endpoint; anything but strings is invalid. */
function parseEndpoints(piko: unknown): readonly string[] {
  if (piko === undefined || piko === null) return [];
  if (typeof piko !== 'object' || Array.isArray(piko)) throw invalidClaim('piko claim must be an object');
  const endpoints = (piko as Record<string, unknown>)['endpoints'];
  if (endpoints === undefined || endpoints === null) return [];
  if (!Array.isArray(endpoints) || !endpoints.every((e): e is string => typeof e === 'string')) {
    throw invalidClaim('piko.endpoints claim must be an array of strings');
  }
  return Object.freeze([...endpoints]);
}

function invalidClaim(message: string): AuthError {
  return new AuthError('ERR_AUTH_INVALID_TOKEN', { cause: new Error(message) });
}

import { fileURLToPath } from 'node:url';
import { AuthConfigError } from './errors';
import { loadStaticKeys } from './static-keys';

/** Where a JSON Web Key Set comes from and how long it is trusted. */
export interface JwksConfig {
  /** http://, https:// or file:// URL. */
  endpoint: string;
  /** How long a fetched set is used before it is fetched again; 0 = default. */
  cacheTtlMs: number;
  /** Limit on one fetch of an http(s) set; 0 = default. */
  timeoutMs: number;
}

/** One `auth:` block (proxy, upstream, admin or a tenant), as Piko spells it. */
export interface AuthConfig {
  hmacSecretKey?: string;
  /** PEM. */
  rsaPublicKey?: string;
  /** PEM. */
  ecdsaPublicKey?: string;
  audience?: string;
  issuer?: string;
  disableDisconnectOnExpiry: boolean;
  jwks?: JwksConfig;
}

/** Auth is on when any key or a JWKS endpoint is set, as in Piko. */
export function authEnabled(c: AuthConfig): boolean {
  return Boolean(c.hmacSecretKey || c.rsaPublicKey || c.ecdsaPublicKey || c.jwks?.endpoint);
}

/**
 * Rejects an auth block Piko would refuse to load, naming the YAML path under
 * `field` (e.g. `proxy.auth`). Pure: PEMs are parsed, a JWKS file is not read.
 */
export function validateAuthConfig(c: AuthConfig, field = 'auth'): void {
  loadStaticKeys(c, field);
  if (!c.jwks?.endpoint) return;
  if (c.hmacSecretKey || c.rsaPublicKey || c.ecdsaPublicKey) {
    // Piko refuses the mix so a forgotten static key cannot quietly widen
    // who is trusted once a JWKS is introduced.
    throw new AuthConfigError(
      'ERR_AUTH_CONFIG_CONFLICT',
      `${field}.jwks.endpoint`,
      `${field}.jwks.endpoint cannot be combined with hmac_secret_key, rsa_public_key or ecdsa_public_key`,
    );
  }
  jwksUrl(c.jwks.endpoint, `${field}.jwks.endpoint`);
  checkDuration(c.jwks.cacheTtlMs, `${field}.jwks.cache_ttl`);
  checkDuration(c.jwks.timeoutMs, `${field}.jwks.timeout`);
}

/** The parsed JWKS URL; file URLs must name a local absolute path. */
export function jwksUrl(endpoint: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_JWKS', field, `${field} must be a URL`, { cause });
  }
  if (url.protocol === 'file:') {
    try {
      fileURLToPath(url);
    } catch (cause) {
      throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_JWKS', field, `${field} must be a file:///absolute/path URL`, {
        cause,
      });
    }
  } else if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AuthConfigError(
      'ERR_AUTH_CONFIG_INVALID_JWKS',
      field,
      `${field} has unsupported scheme ${url.protocol.slice(0, -1)} (want http, https or file)`,
    );
  }
  return url;
}

function checkDuration(value: number, field: string): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_JWKS', field, `${field} must be a non-negative duration`);
  }
}

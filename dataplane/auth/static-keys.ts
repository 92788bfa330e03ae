import { createPublicKey, type KeyObject } from 'node:crypto';
import type { AuthConfig } from './auth-config';
import { AuthConfigError } from './errors';

/**
 * The configured static keys, by the JWT `alg` each may verify. Only these
 * algorithms are accepted, as Piko's `WithValidMethods`, so an HS256 token can
 * never be checked against an RSA public key used as an HMAC secret.
 */
export type StaticKeys = ReadonlyMap<string, KeyObject | Uint8Array>;

// ES256 is defined on P-256 only (and so on), so an ECDSA key admits exactly
// one algorithm; Go's ECDSA verifier rejects the other two the same way.
const EC_ALGORITHM: Readonly<Record<string, string>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

// jose refuses RS* keys under 2048 bits on every token; failing at start-up
// says so once instead of answering `invalid token` forever.
const MIN_RSA_BITS = 2048;

export function loadStaticKeys(c: AuthConfig, field: string): StaticKeys {
  const keys = new Map<string, KeyObject | Uint8Array>();
  if (c.hmacSecretKey) {
    const secret = new TextEncoder().encode(c.hmacSecretKey);
    for (const alg of ['HS256', 'HS384', 'HS512']) keys.set(alg, secret);
  }
  if (c.rsaPublicKey) {
    const key = parsePublicKey(c.rsaPublicKey, `${field}.rsa_public_key`, 'rsa');
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
      throw new AuthConfigError(
        'ERR_AUTH_CONFIG_INVALID_KEY',
        `${field}.rsa_public_key`,
        `${field}.rsa_public_key must be at least ${MIN_RSA_BITS} bits`,
      );
    }
    for (const alg of ['RS256', 'RS384', 'RS512']) keys.set(alg, key);
  }
  if (c.ecdsaPublicKey) {
    const key = parsePublicKey(c.ecdsaPublicKey, `${field}.ecdsa_public_key`, 'ec');
    const alg = EC_ALGORITHM[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!alg) {
      throw new AuthConfigError(
        'ERR_AUTH_CONFIG_INVALID_KEY',
        `${field}.ecdsa_public_key`,
        `${field}.ecdsa_public_key must be on curve P-256, P-384 or P-521`,
      );
    }
    keys.set(alg, key);
  }
  return keys;
}

function parsePublicKey(pem: string, field: string, type: 'rsa' | 'ec'): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_KEY', field, `${field} is not a PEM public key`, { cause });
  }
  if (key.asymmetricKeyType !== type) {
    throw new AuthConfigError(
      'ERR_AUTH_CONFIG_INVALID_KEY',
      field,
      `${field} is a ${key.asymmetricKeyType ?? 'unknown'} key, not ${type === 'rsa' ? 'RSA' : 'ECDSA'}`,
    );
  }
  return key;
}

import { generateKeyPair as generateNodeKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT, type JWK, type JWTPayload } from 'jose';

const generate = promisify(generateNodeKeyPair);

export const HMAC_SECRET = 'piko-test-secret-that-is-long-enough';

// KeyObjects rather than jose CryptoKeys: a CryptoKey is bound to one hash,
// and the tests sign RS256, RS384 and RS512 with the same key.
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key. */
  pem: string;
}

export type KeyKind = 'rsa' | 'rsa-1024' | 'P-256' | 'P-384' | 'P-521' | 'secp256k1';

export async function keyPair(kind: KeyKind): Promise<KeyPair> {
  const { privateKey, publicKey } =
    kind === 'rsa' || kind === 'rsa-1024'
      ? await generate('rsa', { modulusLength: kind === 'rsa' ? 2048 : 1024 })
      : await generate('ec', { namedCurve: kind });
  return { privateKey, publicKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function publicJwk(pair: KeyPair, kid: string, alg: string): JWK {
  return { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
}

export interface SignOptions {
  alg: string;
  kid?: string;
  /** Seconds since the epoch. */
  exp?: number;
  nbf?: number;
  aud?: string | string[];
  iss?: string;
}

export function sign(claims: JWTPayload, key: KeyObject | Uint8Array, opts: SignOptions): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg, ...(opts.kid ? { kid: opts.kid } : {}) });
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  if (opts.aud !== undefined) jwt.setAudience(opts.aud);
  if (opts.iss !== undefined) jwt.setIssuer(opts.iss);
  return jwt.sign(key);
}

export function hmacKey(secret = HMAC_SECRET): Uint8Array {
  return new TextEncoder().encode(secret);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

import { authEnabled, validateAuthConfig, type AuthConfig } from '../../../dataplane/auth/auth-config';
import { AuthConfigError } from '../../../dataplane/auth/errors';
import { keyPair, type KeyPair } from './jwt-fixtures';

function config(overrides: Partial<AuthConfig>): AuthConfig {
  return { disableDisconnectOnExpiry: false, ...overrides };
}

const jwks = (endpoint: string, cacheTtlMs = 0, timeoutMs = 0): AuthConfig['jwks'] => ({ endpoint, cacheTtlMs, timeoutMs });

function configError(fn: () => void): AuthConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthConfigError) return err;
    throw err;
  }
  throw new Error('expected an AuthConfigError');
}

let rsa: KeyPair;
let ec: KeyPair;

beforeAll(async () => {
  [rsa, ec] = await Promise.all([keyPair('rsa'), keyPair('P-256')]);
});

describe('authEnabled', () => {
  it.each([
    ['nothing set', {}, false],
    ['only audience and issuer', { audience: 'a', issuer: 'i' }, false],
    ['an empty jwks endpoint', { jwks: jwks('') }, false],
    ['an HMAC secret', { hmacSecretKey: 's' }, true],
    ['an RSA key', { rsaPublicKey: 'pem' }, true],
    ['an ECDSA key', { ecdsaPublicKey: 'pem' }, true],
    ['a jwks endpoint', { jwks: jwks('https://issuer.example/jwks.json') }, true],
  ])('is %s → %s', (_name, overrides, expected) => {
    expect(authEnabled(config(overrides))).toBe(expected);
  });
});

describe('validateAuthConfig', () => {
  it('accepts every static key together', () => {
    expect(() =>
      validateAuthConfig(config({ hmacSecretKey: 's', rsaPublicKey: rsa.pem, ecdsaPublicKey: ec.pem }), 'proxy.auth'),
    ).not.toThrow();
  });

  it.each(['https://issuer.example/jwks.json', 'http://127.0.0.1:9/jwks', 'file:///etc/piko/jwks.json'])(
    'accepts the jwks endpoint %s',
    (endpoint) => {
      expect(() => validateAuthConfig(config({ jwks: jwks(endpoint, 60_000, 5_000) }))).not.toThrow();
    },
  );

  it.each(['hmacSecretKey', 'rsaPublicKey', 'ecdsaPublicKey'] as const)('refuses a jwks endpoint combined with %s', (key) => {
    const value = { hmacSecretKey: 's', rsaPublicKey: rsa.pem, ecdsaPublicKey: ec.pem }[key];
    const err = configError(() =>
      validateAuthConfig(config({ [key]: value, jwks: jwks('https://issuer.example/jwks.json') }), 'proxy.auth'),
    );
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_CONFLICT', field: 'proxy.auth.jwks.endpoint' });
    expect(err.message).toContain('proxy.auth.jwks.endpoint');
  });

  it.each([
    ['an unsupported scheme', 'ftp://issuer.example/jwks.json', 'proxy.auth.jwks.endpoint'],
    ['a relative path', 'jwks.json', 'proxy.auth.jwks.endpoint'],
    ['a file URL with a host', 'file://remote-host/jwks.json', 'proxy.auth.jwks.endpoint'],
  ])('refuses %s as jwks endpoint', (_name, endpoint, field) => {
    const err = configError(() => validateAuthConfig(config({ jwks: jwks(endpoint) }), 'proxy.auth'));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_JWKS', field });
  });

  it.each([
    ['cache_ttl', jwks('https://i.example/jwks', -1, 0)],
    ['timeout', jwks('https://i.example/jwks', 0, Number.NaN)],
  ])('refuses a negative or non-numeric jwks %s', (name, block) => {
    const err = configError(() => validateAuthConfig(config({ jwks: block }), 'upstream.auth'));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_JWKS', field: `upstream.auth.jwks.${name}` });
  });

  it('names the field of an unreadable PEM', () => {
    const err = configError(() => validateAuthConfig(config({ ecdsaPublicKey: 'not a pem' }), 'admin.auth'));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_KEY', field: 'admin.auth.ecdsa_public_key' });
  });

  it('refuses an ECDSA key as rsa_public_key and an RSA key as ecdsa_public_key', () => {
    expect(configError(() => validateAuthConfig(config({ rsaPublicKey: ec.pem }), 'proxy.auth'))).toMatchObject({
      code: 'ERR_AUTH_CONFIG_INVALID_KEY',
      field: 'proxy.auth.rsa_public_key',
    });
    expect(configError(() => validateAuthConfig(config({ ecdsaPublicKey: rsa.pem }), 'proxy.auth'))).toMatchObject({
      code: 'ERR_AUTH_CONFIG_INVALID_KEY',
      field: 'proxy.auth.ecdsa_public_key',
    });
  });

  it('refuses an RSA key under 2048 bits, which jose cannot verify with', async () => {
    const weak = await keyPair('rsa-1024');
    const err = configError(() => validateAuthConfig(config({ rsaPublicKey: weak.pem }), 'proxy.auth'));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_KEY', field: 'proxy.auth.rsa_public_key' });
  });

  it('refuses an ECDSA key on a curve with no ES algorithm', async () => {
    const k1 = await keyPair('secp256k1');
    const err = configError(() => validateAuthConfig(config({ ecdsaPublicKey: k1.pem }), 'proxy.auth'));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_KEY', field: 'proxy.auth.ecdsa_public_key' });
  });

  it('accepts a PKCS#1 RSA public key, as Go does', () => {
    const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(() => validateAuthConfig(config({ rsaPublicKey: pkcs1 }))).not.toThrow();
  });
});

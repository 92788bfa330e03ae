import { inspect } from 'node:util';
import { UnsecuredJWT } from 'jose';
import type { AuthConfig } from '../../../dataplane/auth/auth-config';
import { AuthConfigError, AuthError } from '../../../dataplane/auth/errors';
import { createVerifier, type TokenVerifier } from '../../../dataplane/auth/verifier';
import { HMAC_SECRET, hmacKey, keyPair, nowSeconds, sign, type KeyPair } from './jwt-fixtures';

function config(overrides: Partial<AuthConfig>): AuthConfig {
  return { disableDisconnectOnExpiry: false, ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AuthError)) throw new Error(`expected an AuthError, got ${String(err)}`);
  return err;
}

let rsa: KeyPair;
let otherRsa: KeyPair;
let p256: KeyPair;
let p384: KeyPair;
let p521: KeyPair;
const verifiers: TokenVerifier[] = [];

function verifierFor(c: Partial<AuthConfig>): TokenVerifier {
  const v = createVerifier(config(c));
  verifiers.push(v);
  return v;
}

beforeAll(async () => {
  [rsa, otherRsa, p256, p384, p521] = await Promise.all([
    keyPair('rsa'),
    keyPair('rsa'),
    keyPair('P-256'),
    keyPair('P-384'),
    keyPair('P-521'),
  ]);
});

afterEach(() => {
  verifiers.splice(0).forEach((v) => v.close());
});

describe('createVerifier', () => {
  it('throws a coded config error when no key is configured', () => {
    expect(() => createVerifier(config({}), { field: 'proxy.auth' })).toThrow(
      expect.objectContaining({ code: 'ERR_AUTH_CONFIG_DISABLED', field: 'proxy.auth' }),
    );
  });

  it('throws a coded config error for an unreadable PEM', () => {
    expect(() => createVerifier(config({ rsaPublicKey: 'not a pem' }), { field: 'admin.auth' })).toThrow(AuthConfigError);
  });
});

describe('algorithms', () => {
  it.each(['HS256', 'HS384', 'HS512'])('accepts %s with the HMAC secret', async (alg) => {
    const token = await sign({}, hmacKey(), { alg });
    await expect(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token)).resolves.toEqual({
      expiry: undefined,
      endpoints: [],
    });
  });

  it.each(['RS256', 'RS384', 'RS512'])('accepts %s with the RSA public key', async (alg) => {
    const token = await sign({}, rsa.privateKey, { alg });
    await expect(verifierFor({ rsaPublicKey: rsa.pem }).verify(token)).resolves.toMatchObject({ endpoints: [] });
  });

  it('accepts ES256, ES384 and ES512 with a key on the matching curve', async () => {
    for (const [pair, alg] of [
      [p256, 'ES256'],
      [p384, 'ES384'],
      [p521, 'ES512'],
    ] as const) {
      const token = await sign({}, pair.privateKey, { alg });
      await expect(verifierFor({ ecdsaPublicKey: pair.pem }).verify(token)).resolves.toMatchObject({ endpoints: [] });
    }
  });

  it('accepts each configured key type when several are set', async () => {
    const v = verifierFor({ hmacSecretKey: HMAC_SECRET, rsaPublicKey: rsa.pem, ecdsaPublicKey: p256.pem });
    await expect(v.verify(await sign({}, hmacKey(), { alg: 'HS256' }))).resolves.toBeDefined();
    await expect(v.verify(await sign({}, rsa.privateKey, { alg: 'RS256' }))).resolves.toBeDefined();
    await expect(v.verify(await sign({}, p256.privateKey, { alg: 'ES256' }))).resolves.toBeDefined();
  });

  it('rejects a token signed with another HMAC secret', async () => {
    const token = await sign({}, hmacKey('another-secret'), { alg: 'HS256' });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err).toMatchObject({ code: 'ERR_AUTH_INVALID_TOKEN', message: 'invalid token', status: 401 });
  });

  it('rejects a token signed with another RSA key', async () => {
    const token = await sign({}, otherRsa.privateKey, { alg: 'RS256' });
    const err = await rejection(verifierFor({ rsaPublicKey: rsa.pem }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an HS256 token when only an RSA key is configured', async () => {
    const token = await sign({}, hmacKey(), { alg: 'HS256' });
    const err = await rejection(verifierFor({ rsaPublicKey: rsa.pem }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an HS256 token keyed with the RSA public PEM (key confusion)', async () => {
    const token = await sign({}, hmacKey(rsa.pem), { alg: 'HS256' });
    const err = await rejection(verifierFor({ rsaPublicKey: rsa.pem }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an RS256 token when only the HMAC secret is configured', async () => {
    const token = await sign({}, rsa.privateKey, { alg: 'RS256' });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an ES384 token against a P-256 key', async () => {
    const token = await sign({}, p384.privateKey, { alg: 'ES384' });
    const err = await rejection(verifierFor({ ecdsaPublicKey: p256.pem }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects an unsigned (alg none) token', async () => {
    const token = new UnsecuredJWT({}).encode();
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it.each(['', 'garbage', 'a.b.c', 'a.b'])('rejects the malformed token %j', async (token) => {
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });
});

describe('claims', () => {
  it('answers expired token once exp has passed', async () => {
    const token = await sign({}, hmacKey(), { alg: 'HS256', exp: nowSeconds() - 10 });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err).toMatchObject({ code: 'ERR_AUTH_EXPIRED', message: 'expired token', status: 401 });
  });

  it('answers expired token when exp has passed and the audience is also wrong, as Piko does', async () => {
    const token = await sign({}, hmacKey(), { alg: 'HS256', exp: nowSeconds() - 10, aud: 'other' });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET, audience: 'piko' }).verify(token));
    expect(err.code).toBe('ERR_AUTH_EXPIRED');
  });

  it('answers invalid token, not expired, when an expired token has a bad signature', async () => {
    const token = await sign({}, hmacKey('another-secret'), { alg: 'HS256', exp: nowSeconds() - 10 });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('rejects a token whose nbf is in the future', async () => {
    const token = await sign({}, hmacKey(), { alg: 'HS256', nbf: nowSeconds() + 600 });
    const err = await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token));
    expect(err.code).toBe('ERR_AUTH_INVALID_TOKEN');
  });

  it('returns the expiry of a token with exp', async () => {
    const exp = nowSeconds() + 600;
    const token = await sign({}, hmacKey(), { alg: 'HS256', exp });
    const verified = await verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token);
    expect(verified.expiry).toEqual(new Date(exp * 1000));
  });

  it('drops the expiry when disableDisconnectOnExpiry is set but still rejects expired tokens', async () => {
    const v = verifierFor({ hmacSecretKey: HMAC_SECRET, disableDisconnectOnExpiry: true });
    const live = await sign({}, hmacKey(), { alg: 'HS256', exp: nowSeconds() + 600 });
    expect((await v.verify(live)).expiry).toBeUndefined();
    const expired = await sign({}, hmacKey(), { alg: 'HS256', exp: nowSeconds() - 10 });
    expect((await rejection(v.verify(expired))).code).toBe('ERR_AUTH_EXPIRED');
  });

  it('checks the audience when configured', async () => {
    const v = verifierFor({ hmacSecretKey: HMAC_SECRET, audience: 'piko' });
    await expect(v.verify(await sign({}, hmacKey(), { alg: 'HS256', aud: 'piko' }))).resolves.toBeDefined();
    await expect(v.verify(await sign({}, hmacKey(), { alg: 'HS256', aud: ['x', 'piko'] }))).resolves.toBeDefined();
    for (const token of [await sign({}, hmacKey(), { alg: 'HS256', aud: 'other' }), await sign({}, hmacKey(), { alg: 'HS256' })]) {
      expect((await rejection(v.verify(token))).code).toBe('ERR_AUTH_INVALID_TOKEN');
    }
  });

  it('checks the issuer when configured', async () => {
    const v = verifierFor({ hmacSecretKey: HMAC_SECRET, issuer: 'https://issuer.example' });
    await expect(v.verify(await sign({}, hmacKey(), { alg: 'HS256', iss: 'https://issuer.example' }))).resolves.toBeDefined();
    for (const token of [
      await sign({}, hmacKey(), { alg: 'HS256', iss: 'https://evil.example' }),
      await sign({}, hmacKey(), { alg: 'HS256' }),
    ]) {
      expect((await rejection(v.verify(token))).code).toBe('ERR_AUTH_INVALID_TOKEN');
    }
  });

  it('ignores aud and iss when not configured', async () => {
    const token = await sign({}, hmacKey(), { alg: 'HS256', aud: 'anything', iss: 'anyone' });
    await expect(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token)).resolves.toBeDefined();
  });
});

describe('piko.endpoints', () => {
  it.each([
    ['no piko claim', {}, []],
    ['piko without endpoints', { piko: {} }, []],
    ['null piko', { piko: null }, []],
    ['null endpoints', { piko: { endpoints: null } }, []],
    ['empty endpoints', { piko: { endpoints: [] } }, []],
    ['a list', { piko: { endpoints: ['my-endpoint', 'other'] } }, ['my-endpoint', 'other']],
  ])('parses %s', async (_name, claims, endpoints) => {
    const token = await sign(claims, hmacKey(), { alg: 'HS256' });
    expect((await verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token)).endpoints).toEqual(endpoints);
  });

  it.each([
    ['a string', { piko: { endpoints: 'my-endpoint' } }],
    ['numbers', { piko: { endpoints: [1, 2] } }],
    ['a mixed list', { piko: { endpoints: ['ok', null] } }],
    ['an object', { piko: { endpoints: { a: 'b' } } }],
    ['piko as a string', { piko: 'endpoints' }],
    ['piko as a list', { piko: ['my-endpoint'] }],
  ])('answers invalid token when it is %s', async (_name, claims) => {
    const token = await sign(claims, hmacKey(), { alg: 'HS256' });
    expect((await rejection(verifierFor({ hmacSecretKey: HMAC_SECRET }).verify(token))).code).toBe('ERR_AUTH_INVALID_TOKEN');
  });
});

describe('errors', () => {
  it('never includes the token in what could be logged', async () => {
    const v = verifierFor({ hmacSecretKey: HMAC_SECRET, audience: 'piko', issuer: 'iss' });
    const tokens = [
      await sign({ secret: 'claim-value' }, hmacKey('another-secret'), { alg: 'HS256' }),
      await sign({ secret: 'claim-value' }, hmacKey(), { alg: 'HS256', exp: nowSeconds() - 10 }),
      await sign({ secret: 'claim-value' }, hmacKey(), { alg: 'HS256', aud: 'other' }),
      await sign({ secret: 'claim-value', piko: { endpoints: 7 } }, hmacKey(), { alg: 'HS256', aud: 'piko', iss: 'iss' }),
      'eyJ7bm90IGpzb24.eyJzZWNyZXQiOiJjbGFpbS12YWx1ZSJ9.c2ln',
    ];
    for (const token of tokens) {
      const err = await rejection(v.verify(token));
      const printed = inspect(err, { depth: 10 }) + JSON.stringify(err) + String(err.cause);
      for (const part of token.split('.')) expect(printed).not.toContain(part);
      expect(printed).not.toContain('claim-value');
    }
  });

  it('rejects with ERR_AUTH_INTERNAL once closed', async () => {
    const v = createVerifier(config({ hmacSecretKey: HMAC_SECRET }));
    v.close();
    const err = await rejection(v.verify(await sign({}, hmacKey(), { alg: 'HS256' })));
    expect(err).toMatchObject({ code: 'ERR_AUTH_INTERNAL', status: 500 });
  });
});

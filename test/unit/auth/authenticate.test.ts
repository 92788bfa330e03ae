import type { IncomingHttpHeaders } from 'node:http';
import { authenticate, endpointPermitted, extractTenantId, extractToken } from '../../../dataplane/auth/authenticate';
import { AuthError, type AuthErrorCode } from '../../../dataplane/auth/errors';
import { createVerifier, type Token, type TokenVerifier } from '../../../dataplane/auth/verifier';
import { HMAC_SECRET, hmacKey, sign } from './jwt-fixtures';

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AuthError)) throw new Error(`expected an AuthError, got ${String(err)}`);
  return err;
}

describe('extractToken', () => {
  it.each<[string, IncomingHttpHeaders, string]>([
    ['authorization', { authorization: 'Bearer abc' }, 'abc'],
    ['x-piko-authorization', { 'x-piko-authorization': 'Bearer abc' }, 'abc'],
    ['x-piko-authorization over authorization', { 'x-piko-authorization': 'Bearer piko', authorization: 'Basic app' }, 'piko'],
    ['authorization when x-piko-authorization is empty', { 'x-piko-authorization': '', authorization: 'Bearer abc' }, 'abc'],
    ['everything after the first space', { authorization: 'Bearer a b' }, 'a b'],
    ['an empty token', { authorization: 'Bearer ' }, ''],
    ['the first of repeated values', { 'x-piko-authorization': ['Bearer one', 'Bearer two'] }, 'one'],
  ])('reads %s', (_name, headers, token) => {
    expect(extractToken(headers)).toBe(token);
  });

  it.each<[string, IncomingHttpHeaders, AuthErrorCode, string]>([
    ['no header', {}, 'ERR_AUTH_MISSING', 'missing authorization'],
    ['empty headers', { authorization: '', 'x-piko-authorization': '' }, 'ERR_AUTH_MISSING', 'missing authorization'],
    ['no space', { authorization: 'Bearertoken' }, 'ERR_AUTH_INVALID_HEADER', 'invalid authorization'],
    ['Basic', { authorization: 'Basic xyz' }, 'ERR_AUTH_UNSUPPORTED_TYPE', 'unsupported auth type'],
    ['lower-case bearer', { authorization: 'bearer xyz' }, 'ERR_AUTH_UNSUPPORTED_TYPE', 'unsupported auth type'],
    ['a leading space', { authorization: ' Bearer xyz' }, 'ERR_AUTH_UNSUPPORTED_TYPE', 'unsupported auth type'],
    [
      'a bad x-piko-authorization even with a good authorization',
      { 'x-piko-authorization': 'Basic xyz', authorization: 'Bearer abc' },
      'ERR_AUTH_UNSUPPORTED_TYPE',
      'unsupported auth type',
    ],
  ])('rejects %s', (_name, headers, code, message) => {
    let caught: unknown;
    try {
      extractToken(headers);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AuthError);
    expect(caught).toMatchObject({ code, message, status: 401 });
  });
});

describe('extractTenantId', () => {
  it('reads x-piko-tenant-id and treats empty as absent', () => {
    expect(extractTenantId({ 'x-piko-tenant-id': 'acme' })).toBe('acme');
    expect(extractTenantId({ 'x-piko-tenant-id': '' })).toBeUndefined();
    expect(extractTenantId({})).toBeUndefined();
  });
});

describe('authenticate', () => {
  it('returns undefined without a verifier, whatever the headers', async () => {
    await expect(authenticate(undefined, {})).resolves.toBeUndefined();
    await expect(authenticate(undefined, { authorization: 'Basic xyz' })).resolves.toBeUndefined();
  });

  it('verifies the bearer token', async () => {
    const verifier = createVerifier({ hmacSecretKey: HMAC_SECRET, disableDisconnectOnExpiry: false });
    try {
      const token = await sign({ piko: { endpoints: ['e1'] } }, hmacKey(), { alg: 'HS256' });
      await expect(authenticate(verifier, { authorization: `Bearer ${token}` })).resolves.toEqual({
        expiry: undefined,
        endpoints: ['e1'],
      });
      expect((await rejection(authenticate(verifier, { authorization: 'Bearer nope' }))).code).toBe('ERR_AUTH_INVALID_TOKEN');
      expect((await rejection(authenticate(verifier, {}))).code).toBe('ERR_AUTH_MISSING');
    } finally {
      verifier.close();
    }
  });

  it('turns an unexpected verifier failure into ERR_AUTH_INTERNAL (500), as Piko does', async () => {
    const broken: TokenVerifier = {
      verify: () => Promise.reject(new Error('boom')),
      close: () => undefined,
    };
    const err = await rejection(authenticate(broken, { authorization: 'Bearer abc' }));
    expect(err).toMatchObject({ code: 'ERR_AUTH_INTERNAL', status: 500 });
  });
});

describe('endpointPermitted', () => {
  const token = (endpoints: string[]): Token => ({ endpoints });

  it.each<[string, Token | undefined, string, boolean]>([
    ['no token (auth off)', undefined, 'any', true],
    ['an empty list', token([]), 'any', true],
    ['a listed endpoint', token(['a', 'b']), 'b', true],
    ['an unlisted endpoint', token(['a', 'b']), 'c', false],
    ['a prefix of a listed endpoint', token(['my-endpoint']), 'my', false],
    ['a different case', token(['my-endpoint']), 'My-Endpoint', false],
    ['a wildcard-looking entry', token(['*']), 'anything', false],
  ])('%s → %s', (_name, t, endpointId, expected) => {
    expect(endpointPermitted(t, endpointId)).toBe(expected);
  });
});

import type { AuthConfig } from '../../../dataplane/auth/auth-config';
import { authenticateTenant } from '../../../dataplane/auth/authenticate';
import { AuthConfigError, AuthError } from '../../../dataplane/auth/errors';
import { createTenantVerifiers, type TenantVerifiers } from '../../../dataplane/auth/tenant-verifiers';
import { HMAC_SECRET, hmacKey, sign } from './jwt-fixtures';

const hmac = (secret: string): AuthConfig => ({ hmacSecretKey: secret, disableDisconnectOnExpiry: false });
const off: AuthConfig = { disableDisconnectOnExpiry: false };

function unknownTenant(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AuthError);
  expect(caught).toMatchObject({ code: 'ERR_AUTH_UNKNOWN_TENANT', message: 'unknown tenant', status: 401 });
}

function configError(fn: () => unknown): AuthConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthConfigError) return err;
    throw err;
  }
  throw new Error('expected an AuthConfigError');
}

const opened: TenantVerifiers[] = [];
function create(...args: Parameters<typeof createTenantVerifiers>): TenantVerifiers | undefined {
  const v = createTenantVerifiers(...args);
  if (v) opened.push(v);
  return v;
}

afterEach(() => {
  opened.splice(0).forEach((v) => v.close());
});

describe('createTenantVerifiers', () => {
  it('is undefined when the port has neither default auth nor tenants', () => {
    expect(create(undefined, [])).toBeUndefined();
    expect(create(off, [])).toBeUndefined();
  });

  it('uses the default verifier for requests without a tenant when no tenants exist', async () => {
    const verifiers = create(hmac(HMAC_SECRET), [])!;
    const token = await sign({}, hmacKey(), { alg: 'HS256' });
    await expect(verifiers.forTenant(undefined).verify(token)).resolves.toEqual({ expiry: undefined, endpoints: [] });
    unknownTenant(() => verifiers.forTenant('acme'));
  });

  it('once tenants exist, rejects requests without a tenant and verifies each tenant with its own keys', async () => {
    const verifiers = create(hmac(HMAC_SECRET), [
      { id: 'acme', auth: hmac('acme-secret') },
      { id: 'globex', auth: hmac('globex-secret') },
    ])!;
    unknownTenant(() => verifiers.forTenant(undefined));
    unknownTenant(() => verifiers.forTenant('initech'));

    const acmeToken = await sign({ piko: { endpoints: ['e1'] } }, hmacKey('acme-secret'), { alg: 'HS256' });
    await expect(verifiers.forTenant('acme').verify(acmeToken)).resolves.toEqual({
      expiry: undefined,
      endpoints: ['e1'],
      tenantId: 'acme',
    });
    await expect(verifiers.forTenant('globex').verify(acmeToken)).rejects.toMatchObject({
      code: 'ERR_AUTH_INVALID_TOKEN',
    });
  });

  it('works with tenants and no default auth', async () => {
    const verifiers = create(undefined, [{ id: 'acme', auth: hmac('acme-secret') }])!;
    const token = await sign({}, hmacKey('acme-secret'), { alg: 'HS256' });
    await expect(verifiers.forTenant('acme').verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    unknownTenant(() => verifiers.forTenant(undefined));
  });

  it.each<[string, { id: string; auth: AuthConfig }[], string]>([
    ['a tenant without id', [{ id: '', auth: hmac('s') }], 'upstream.tenants[0].id'],
    ['a tenant without auth', [{ id: 'acme', auth: off }], 'upstream.tenants[0].auth'],
    [
      'a repeated tenant id',
      [
        { id: 'acme', auth: hmac('s') },
        { id: 'acme', auth: hmac('t') },
      ],
      'upstream.tenants[1].id',
    ],
  ])('refuses %s', (_name, tenants, field) => {
    expect(configError(() => create(undefined, tenants))).toMatchObject({
      code: 'ERR_AUTH_CONFIG_INVALID_TENANT',
      field,
    });
  });

  it('names the tenant auth block of an invalid key', () => {
    const err = configError(() => create(undefined, [{ id: 'acme', auth: { rsaPublicKey: 'bad', disableDisconnectOnExpiry: false } }]));
    expect(err).toMatchObject({ code: 'ERR_AUTH_CONFIG_INVALID_KEY', field: 'upstream.tenants[0].auth.rsa_public_key' });
  });
});

describe('authenticateTenant', () => {
  it('reads the token before the tenant, as Piko does', async () => {
    const verifiers = create(undefined, [{ id: 'acme', auth: hmac('acme-secret') }]);
    await expect(authenticateTenant(verifiers, {})).rejects.toMatchObject({ code: 'ERR_AUTH_MISSING' });
    await expect(authenticateTenant(verifiers, { authorization: 'Bearer x' })).rejects.toMatchObject({
      code: 'ERR_AUTH_UNKNOWN_TENANT',
    });
  });

  it('verifies against the tenant named by x-piko-tenant-id', async () => {
    const verifiers = create(undefined, [{ id: 'acme', auth: hmac('acme-secret') }]);
    const token = await sign({}, hmacKey('acme-secret'), { alg: 'HS256' });
    await expect(authenticateTenant(verifiers, { authorization: `Bearer ${token}`, 'x-piko-tenant-id': 'acme' })).resolves.toMatchObject({
      tenantId: 'acme',
    });
  });

  it('returns undefined when the port has no auth', async () => {
    await expect(authenticateTenant(undefined, { 'x-piko-tenant-id': 'acme' })).resolves.toBeUndefined();
  });
});

describe('ServiceAccount tokens beside JWT keys and tenants', () => {
  const AUDIENCE = 'piko.dev/piko/piko';
  const accountToken = { expiry: undefined, endpoints: ['web'], subject: 'system:serviceaccount:a:web' };
  const accounts = (): { audience: string; verifier: { verify: (t: string) => Promise<typeof accountToken>; close: () => void } } => ({
    audience: AUDIENCE,
    verifier: { verify: () => Promise.resolve(accountToken), close: () => undefined },
  });
  const headers = (token: string, tenant?: string): Record<string, string> => ({
    authorization: `Bearer ${token}`,
    ...(tenant ? { 'x-piko-tenant-id': tenant } : {}),
  });

  it('sends tokens for the audience to the ServiceAccount verifier and every other token to the JWT keys', async () => {
    const v = create(hmac(HMAC_SECRET), [], { serviceAccounts: accounts() });
    const sa = await sign({}, hmacKey('another key'), { alg: 'HS256', aud: AUDIENCE });
    await expect(authenticateTenant(v, headers(sa))).resolves.toBe(accountToken);
    await expect(
      authenticateTenant(v, headers(await sign({ piko: { endpoints: ['x'] } }, hmacKey(), { alg: 'HS256' }))),
    ).resolves.toMatchObject({ endpoints: ['x'] });
    await expect(
      authenticateTenant(v, headers(await sign({}, hmacKey('another key'), { alg: 'HS256', aud: 'other' }))),
    ).rejects.toMatchObject({
      code: 'ERR_AUTH_INVALID_TOKEN',
    });
  });

  it('needs no JWT key, and with tenants admits ServiceAccounts only without a tenant header', async () => {
    const alone = create(undefined, [], { serviceAccounts: accounts() });
    await expect(authenticateTenant(alone, headers(await sign({}, hmacKey(), { alg: 'HS256' })))).rejects.toMatchObject({
      code: 'ERR_AUTH_INVALID_TOKEN',
    });
    const tenanted = create(off, [{ id: 'a', auth: hmac('tenant-a-secret-0123456789') }], { serviceAccounts: accounts() });
    await expect(authenticateTenant(tenanted, headers(await sign({}, hmacKey('x'), { alg: 'HS256', aud: AUDIENCE })))).resolves.toBe(
      accountToken,
    );
    await expect(authenticateTenant(tenanted, headers(await sign({}, hmacKey(), { alg: 'HS256' })))).rejects.toMatchObject({
      code: 'ERR_AUTH_UNKNOWN_TENANT',
    });
  });
});

import { authEnabled, validateAuthConfig, type AuthConfig } from './auth-config';
import { AuthConfigError, AuthError } from './errors';
import { claimsFor } from './service-account-verifier';
import { createVerifier, type Token, type TokenVerifier, type VerifierOptions } from './verifier';

/** One `upstream.tenants[]` entry (experimental in Piko). */
export interface TenantConfig {
  id: string;
  auth: AuthConfig;
}

export interface TenantVerifiers {
  /**
   * The verifier for a request's `x-piko-tenant-id` (undefined when the
   * header is absent). Throws AuthError `unknown tenant` for an unknown id,
   * and for no id once any tenant is configured: tenants replace the default
   * `upstream.auth`, they do not add to it. Tokens it returns carry tenantId.
   */
  forTenant(tenantId: string | undefined): TokenVerifier;
  close(): void;
}

export interface TenantVerifierOptions extends Omit<VerifierOptions, 'field'> {
  /** YAML path of the port (`upstream`); auth blocks are `<field>.auth`, `<field>.tenants[i].auth`. */
  field?: string;
  /**
   * Pods' ServiceAccount tokens, told apart from Piko JWTs by their audience, and accepted on a
   * connection without a tenant header beside (not instead of) the JWT keys. The TenantVerifiers
   * owns it and closes it.
   */
  serviceAccounts?: { audience: string; verifier: TokenVerifier };
}

/**
 * Verifiers for the upstream port, as Piko's MultiTenantVerifier. Undefined
 * when the port has no auth at all (default auth off and no tenants). Throws
 * AuthConfigError for a tenant without id or auth, or a repeated id.
 */
export function createTenantVerifiers(
  defaultAuth: AuthConfig | undefined,
  tenants: readonly TenantConfig[],
  options: TenantVerifierOptions = {},
): TenantVerifiers | undefined {
  const { field = 'upstream', serviceAccounts, ...verifierOptions } = options;
  const withAccounts = (fallback: TokenVerifier): TokenVerifier =>
    serviceAccounts === undefined ? fallback : byAudience(serviceAccounts.audience, serviceAccounts.verifier, fallback);
  const closeAccounts = (): void => serviceAccounts?.verifier.close();
  if (tenants.length === 0) {
    const jwt =
      defaultAuth && authEnabled(defaultAuth) ? createVerifier(defaultAuth, { ...verifierOptions, field: `${field}.auth` }) : undefined;
    if (!jwt && !serviceAccounts) return undefined;
    const verifier = withAccounts(jwt ?? refusing('ERR_AUTH_INVALID_TOKEN'));
    return {
      forTenant(tenantId) {
        if (tenantId !== undefined) throw new AuthError('ERR_AUTH_UNKNOWN_TENANT');
        return verifier;
      },
      close: () => {
        jwt?.close();
        closeAccounts();
      },
    };
  }

  // Unused once tenants exist, but a broken block should still fail start-up.
  if (defaultAuth && authEnabled(defaultAuth)) validateAuthConfig(defaultAuth, `${field}.auth`);
  const byId = new Map<string, TokenVerifier>();
  const closeAll = (): void => {
    byId.forEach((v) => v.close());
    closeAccounts();
  };
  try {
    tenants.forEach((tenant, i) => {
      const at = `${field}.tenants[${i}]`;
      checkTenant(tenant, at, byId);
      const verifier = createVerifier(tenant.auth, { ...verifierOptions, field: `${at}.auth` });
      byId.set(tenant.id, withTenant(verifier, tenant.id));
    });
  } catch (err) {
    closeAll();
    throw err;
  }
  const untenanted = serviceAccounts === undefined ? undefined : withAccounts(refusing('ERR_AUTH_UNKNOWN_TENANT'));
  return {
    forTenant(tenantId) {
      const verifier = tenantId === undefined ? untenanted : byId.get(tenantId);
      if (!verifier) throw new AuthError('ERR_AUTH_UNKNOWN_TENANT');
      return verifier;
    },
    close: closeAll,
  };
}

/**
 * ServiceAccount tokens (by their unverified audience) to `accounts`, every other token to
 * `other`. A view over both: the TenantVerifiers that made it owns and closes them.
 */
function byAudience(audience: string, accounts: TokenVerifier, other: TokenVerifier): TokenVerifier {
  return {
    verify: (token) => (claimsFor(token, audience) !== undefined ? accounts : other).verify(token),
    close: () => undefined,
  };
}

function refusing(code: 'ERR_AUTH_INVALID_TOKEN' | 'ERR_AUTH_UNKNOWN_TENANT'): TokenVerifier {
  return {
    verify: () => Promise.reject(new AuthError(code)),
    close: () => undefined,
  };
}

function checkTenant(tenant: TenantConfig, at: string, seen: ReadonlyMap<string, unknown>): void {
  if (!tenant.id) throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_TENANT', `${at}.id`, `${at}.id is required`);
  if (seen.has(tenant.id)) {
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_TENANT', `${at}.id`, `${at}.id ${tenant.id} is repeated`);
  }
  // An unauthenticated tenant would let anyone in under its id; Piko refuses it too.
  if (!authEnabled(tenant.auth)) {
    const message = `${at}.auth must set a key or jwks endpoint`;
    throw new AuthConfigError('ERR_AUTH_CONFIG_INVALID_TENANT', `${at}.auth`, message);
  }
}

function withTenant(verifier: TokenVerifier, tenantId: string): TokenVerifier {
  return {
    async verify(token: string): Promise<Token> {
      return { ...(await verifier.verify(token)), tenantId };
    },
    close: () => verifier.close(),
  };
}

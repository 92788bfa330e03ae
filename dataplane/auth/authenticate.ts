import type { IncomingHttpHeaders } from 'node:http';
import { AuthError } from './errors';
import type { TenantVerifiers } from './tenant-verifiers';
import type { Token, TokenVerifier } from './verifier';

// Listeners catch what authenticate throws; importing both from here is convenient.
export { AuthError, isAuthError } from './errors';

/** Checked before `authorization`, so a client can keep its own Authorization for the upstream app. */
export const PIKO_AUTHORIZATION_HEADER = 'x-piko-authorization';
/** Selects the tenant on the upstream port. */
export const PIKO_TENANT_HEADER = 'x-piko-tenant-id';

/**
 * The bearer token of a request, by Piko's rules: `x-piko-authorization`
 * first, else `authorization` (an empty header counts as absent, as with Go's
 * Header.Get); the scheme is the text before the first space and must be
 * exactly `Bearer`. Throws AuthError.
 */
export function extractToken(headers: IncomingHttpHeaders): string {
  const value = header(headers, PIKO_AUTHORIZATION_HEADER) || header(headers, 'authorization');
  if (!value) throw new AuthError('ERR_AUTH_MISSING');
  const space = value.indexOf(' ');
  if (space < 0) throw new AuthError('ERR_AUTH_INVALID_HEADER');
  if (value.slice(0, space) !== 'Bearer') throw new AuthError('ERR_AUTH_UNSUPPORTED_TYPE');
  return value.slice(space + 1);
}

/** The `x-piko-tenant-id` header, or undefined when absent or empty. */
export function extractTenantId(headers: IncomingHttpHeaders): string | undefined {
  return header(headers, PIKO_TENANT_HEADER) || undefined;
}

/**
 * Authenticates a request on a port with one verifier (proxy, admin).
 * Undefined verifier = auth off: resolves undefined whatever the headers.
 * Rejects with AuthError only.
 */
export async function authenticate(verifier: TokenVerifier | undefined, headers: IncomingHttpHeaders): Promise<Token | undefined> {
  if (!verifier) return undefined;
  return verifyOrInternal(verifier, extractToken(headers));
}

/**
 * Authenticates a request on the upstream port. The token is read before the
 * tenant, as in Piko, so a request with neither gets `missing authorization`.
 */
export async function authenticateTenant(verifiers: TenantVerifiers | undefined, headers: IncomingHttpHeaders): Promise<Token | undefined> {
  if (!verifiers) return undefined;
  const token = extractToken(headers);
  return verifyOrInternal(verifiers.forTenant(extractTenantId(headers)), token);
}

/**
 * Exact match against `piko.endpoints`, or a prefix of a ServiceAccount rule; no token (auth off)
 * or a token with neither permits all.
 */
export function endpointPermitted(token: Token | undefined, endpointId: string): boolean {
  if (!token) return true;
  const prefixes = token.endpointPrefixes ?? [];
  if (token.endpoints.length === 0 && prefixes.length === 0) return true;
  return token.endpoints.includes(endpointId) || prefixes.some((p) => endpointId.startsWith(p));
}

// Piko answers any error it does not recognise with a bare 500.
async function verifyOrInternal(verifier: TokenVerifier, token: string): Promise<Token> {
  try {
    return await verifier.verify(token);
  } catch (err) {
    throw err instanceof AuthError ? err : new AuthError('ERR_AUTH_INTERNAL', { cause: err });
  }
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

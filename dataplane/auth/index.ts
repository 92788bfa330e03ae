export { authEnabled, validateAuthConfig, type AuthConfig, type JwksConfig } from './auth-config';
export {
  authenticate,
  authenticateTenant,
  endpointPermitted,
  extractTenantId,
  extractToken,
  PIKO_AUTHORIZATION_HEADER,
  PIKO_TENANT_HEADER,
} from './authenticate';
export { AUTH_ERROR_MESSAGES, AuthConfigError, AuthError, isAuthError, type AuthConfigErrorCode, type AuthErrorCode } from './errors';
export { DEFAULT_JWKS_CACHE_TTL_MS, DEFAULT_JWKS_TIMEOUT_MS } from './jwks';
export { createTenantVerifiers, type TenantConfig, type TenantVerifierOptions, type TenantVerifiers } from './tenant-verifiers';
export { createVerifier, type Token, type TokenVerifier, type VerifierOptions } from './verifier';

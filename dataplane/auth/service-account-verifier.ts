/**
 * Upstream authentication by a pod's own identity: its projected ServiceAccount token, verified by
 * the apiserver (TokenReview) for an audience of this cluster, then mapped to the endpoints that
 * ServiceAccount may serve. No secret is shared with the agent's namespace.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import { AuthError } from './errors';
import type { Token, TokenVerifier } from './verifier';

/** One `upstream.service_accounts.rules[]` entry. */
export interface ServiceAccountRule {
  namespace: string;
  /** The ServiceAccount's name; empty = every ServiceAccount of the namespace. */
  name: string;
  /** Endpoint IDs it may listen on. */
  endpoints: string[];
  /** Or any endpoint ID with this prefix; empty = none by prefix. */
  endpointPrefix: string;
}

/** `upstream.service_accounts`. Off while `rules` is empty. */
export interface ServiceAccountAuthConfig {
  /** The audience the token must be issued for: agents request it in their projected volume. */
  audience: string;
  /** Longest a verified token is trusted without asking the apiserver again (never past its exp). */
  cacheTtlMs: number;
  rules: ServiceAccountRule[];
}

/** What the apiserver said of a token (TokenReview status, the fields we read). */
export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

/** Asks the apiserver about one token; rejects when it cannot be asked (outage, RBAC). */
export type TokenReviewer = (token: string, audiences: readonly string[], signal: AbortSignal) => Promise<TokenReviewStatus>;

export interface ServiceAccountVerifierOptions {
  review: TokenReviewer;
  /** Clock in ms; injected by tests. */
  now?: () => number;
  /** Verified tokens remembered at once; the oldest goes first. */
  maxCacheEntries?: number;
  /** TokenReviews under way at once; a token beyond it gets 500 (agents retry it). */
  maxInFlight?: number;
  /** Limit on one TokenReview. */
  reviewTimeoutMs?: number;
}

export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const DEFAULT_MAX_CACHE_ENTRIES = 10_000;
const DEFAULT_MAX_IN_FLIGHT = 32;
const DEFAULT_REVIEW_TIMEOUT_MS = 5_000;
// A Kubernetes token is a JWT of about 1 KiB; anything far larger is not one and is not sent on.
const MAX_TOKEN_LENGTH = 16 * 1024;

/** The claims of a token, unverified, when it looks like one issued for `audience`; else undefined. */
export function claimsFor(token: string, audience: string): JWTPayload | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    return undefined;
  }
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  return audiences.includes(audience) ? claims : undefined;
}

interface Cached {
  token: Token;
  /** Epoch ms after which the apiserver is asked again. */
  until: number;
}

/**
 * A TokenVerifier over TokenReview. The apiserver is the only judge of a token; the local decode
 * only keeps junk (not a JWT, wrong audience, past its exp) from costing it a request, and reads
 * the exp the apiserver has vouched for. Results are cached by the token's hash until the sooner
 * of its exp and `cacheTtlMs`, so reconnecting agents and apiserver hiccups cost nothing.
 */
export function createServiceAccountVerifier(config: ServiceAccountAuthConfig, options: ServiceAccountVerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const timeoutMs = options.reviewTimeoutMs ?? DEFAULT_REVIEW_TIMEOUT_MS;
  const cache = new Map<string, Cached>();
  // Agents of one Deployment restarting together present the same token: one review for all.
  const inFlight = new Map<string, Promise<Token>>();
  const closing = new AbortController();

  const review = async (key: string, token: string, exp: number): Promise<Token> => {
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(timeoutMs)]);
    let status: TokenReviewStatus;
    try {
      status = await options.review(token, [config.audience], signal);
    } catch (err) {
      throw new AuthError('ERR_AUTH_INTERNAL', { cause: err });
    }
    const result = judge(status, config, exp);
    const until = Math.min(exp * 1000, now() + config.cacheTtlMs);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { token: result, until });
    return result;
  };

  return {
    async verify(token: string): Promise<Token> {
      if (closing.signal.aborted) throw new AuthError('ERR_AUTH_INTERNAL', { cause: new Error('verifier closed') });
      const claims = claimsFor(token, config.audience);
      if (claims === undefined) throw invalid('not a token issued for audience ' + config.audience);
      const exp = claims.exp;
      // Kubernetes always sets exp on the tokens it projects; one without is not of its kind.
      if (typeof exp !== 'number') throw invalid('token has no exp');
      const at = now();
      if (exp * 1000 <= at) throw new AuthError('ERR_AUTH_EXPIRED');

      const key = createHash('sha256').update(token).digest('base64url');
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (hit.until > at) return hit.token;
        cache.delete(key);
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      if (inFlight.size >= maxInFlight) {
        throw new AuthError('ERR_AUTH_INTERNAL', { cause: new Error(`${maxInFlight} token reviews already under way`) });
      }
      const promise = review(key, token, exp).finally(() => inFlight.delete(key));
      inFlight.set(key, promise);
      return promise;
    },
    close(): void {
      closing.abort();
      cache.clear();
    },
  };
}

/** The Token of a review, or the AuthError it earns. */
function judge(status: TokenReviewStatus, config: ServiceAccountAuthConfig, exp: number): Token {
  // The apiserver's own wording (`status.error`) can quote the token's claims; keep it to the cause.
  if (status.authenticated !== true) throw invalid(`apiserver did not authenticate the token: ${status.error ?? 'no reason given'}`);
  // The apiserver answers for the intersection of the audiences asked for and the token's own.
  if (!(status.audiences ?? []).includes(config.audience)) throw invalid('apiserver did not confirm the audience');
  const username = status.user?.username ?? '';
  const account = parseServiceAccount(username);
  if (account === undefined) throw invalid(`${username || 'the token'} is not a ServiceAccount`);
  const rules = config.rules.filter((r) => r.namespace === account.namespace && (r.name === '' || r.name === account.name));
  if (rules.length === 0) throw new AuthError('ERR_AUTH_ENDPOINT_NOT_PERMITTED');
  const pod = status.user?.extra?.[POD_NAME_EXTRA]?.[0];
  return Object.freeze({
    expiry: new Date(exp * 1000),
    endpoints: Object.freeze(rules.flatMap((r) => r.endpoints)),
    endpointPrefixes: Object.freeze(rules.map((r) => r.endpointPrefix).filter((p) => p !== '')),
    subject: pod === undefined ? username : `${username} (pod ${account.namespace}/${pod})`,
  });
}

/** `system:serviceaccount:<namespace>:<name>`, split; undefined for any other user. */
export function parseServiceAccount(username: string): { namespace: string; name: string } | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return undefined;
  const [namespace, name, ...rest] = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (!namespace || !name || rest.length > 0) return undefined;
  return { namespace, name };
}

function invalid(reason: string): AuthError {
  return new AuthError('ERR_AUTH_INVALID_TOKEN', { cause: new Error(reason) });
}

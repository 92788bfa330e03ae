/**
 * The ServiceAccount verifier's own logic: what it sends to TokenReview, what it caches and for
 * how long, and how it maps identities to endpoints. The apiserver side is in
 * test/integration/server/service-account-auth.test.ts.
 */
import { SignJWT } from 'jose';
import { endpointPermitted } from '../../../dataplane/auth/authenticate';
import { isAuthError } from '../../../dataplane/auth/errors';
import {
  createServiceAccountVerifier,
  parseServiceAccount,
  type ServiceAccountAuthConfig,
  type TokenReviewStatus,
} from '../../../dataplane/auth/service-account-verifier';

const AUDIENCE = 'piko.dev/piko/piko';
const T0 = 1_800_000_000_000;
const CONFIG: ServiceAccountAuthConfig = {
  audience: AUDIENCE,
  cacheTtlMs: 60_000,
  rules: [
    { namespace: 'team-a', name: 'web', endpoints: ['web'], endpointPrefix: '' },
    { namespace: 'team-a', name: '', endpoints: [], endpointPrefix: 'a-' },
  ],
};

function token(claims: { aud?: string | string[]; exp?: number; sub?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ sub: claims.sub ?? 'system:serviceaccount:team-a:web' })
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience(claims.aud ?? AUDIENCE);
  if (claims.exp !== 0) jwt.setExpirationTime(claims.exp ?? T0 / 1000 + 600);
  return jwt.sign(new TextEncoder().encode('whatever signs it: the apiserver judges'));
}

const authenticated = (username = 'system:serviceaccount:team-a:web', extra?: Record<string, string[]>): TokenReviewStatus => ({
  authenticated: true,
  user: { username, ...(extra ? { extra } : {}) },
  audiences: [AUDIENCE],
});

function harness(answer: (token: string) => Promise<TokenReviewStatus> | TokenReviewStatus = () => authenticated()) {
  let now = T0;
  const reviews: { token: string; audiences: readonly string[] }[] = [];
  const verifier = createServiceAccountVerifier(CONFIG, {
    now: () => now,
    maxInFlight: 2,
    maxCacheEntries: 2,
    review: async (t, audiences) => {
      reviews.push({ token: t, audiences });
      return answer(t);
    },
  });
  return { verifier, reviews, advance: (ms: number) => (now += ms) };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isAuthError(err)) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('ServiceAccount verifier', () => {
  it('asks TokenReview for its audience and maps the account to the endpoints of every rule it matches', async () => {
    const h = harness(() => authenticated('system:serviceaccount:team-a:web', { 'authentication.kubernetes.io/pod-name': ['web-0'] }));
    const t = await token();
    const result = await h.verifier.verify(t);
    expect(h.reviews).toEqual([{ token: t, audiences: [AUDIENCE] }]);
    expect(result.endpoints).toEqual(['web']);
    expect(result.endpointPrefixes).toEqual(['a-']);
    expect(result.expiry).toEqual(new Date(T0 + 600_000));
    expect(result.subject).toBe('system:serviceaccount:team-a:web (pod team-a/web-0)');
    expect(endpointPermitted(result, 'web')).toBe(true);
    expect(endpointPermitted(result, 'a-orders')).toBe(true);
    expect(endpointPermitted(result, 'api')).toBe(false);
  });

  it('never sends the apiserver a token that is not a JWT, is for another audience, has no exp or has expired', async () => {
    const h = harness();
    expect(await code(h.verifier.verify('not-a-jwt'))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(await token({ aud: 'https://kubernetes.default.svc' })))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(await token({ exp: 0 })))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(await token({ exp: T0 / 1000 - 1 })))).toBe('ERR_AUTH_EXPIRED');
    expect(await code(h.verifier.verify('x'.repeat(20_000)))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(h.reviews).toHaveLength(0);
  });

  it('refuses what the apiserver refuses, a user that is not a ServiceAccount, an unconfirmed audience, and an account no rule names', async () => {
    const answers: TokenReviewStatus[] = [
      { authenticated: false, error: 'token has been invalidated' },
      authenticated('alice'),
      { ...authenticated(), audiences: [] },
      authenticated('system:serviceaccount:team-b:web'),
    ];
    const h = harness(() => answers.shift()!);
    const t = await token();
    expect(await code(h.verifier.verify(t))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(t))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(t))).toBe('ERR_AUTH_INVALID_TOKEN');
    expect(await code(h.verifier.verify(t))).toBe('ERR_AUTH_ENDPOINT_NOT_PERMITTED');
    // Refusals are not cached: a ServiceAccount granted a rule later is not kept out.
    expect(h.reviews).toHaveLength(4);
  });

  it('reuses a review until cache_ttl or the token exp, whichever is sooner', async () => {
    const h = harness();
    const long = await token();
    await h.verifier.verify(long);
    h.advance(59_000);
    await h.verifier.verify(long);
    expect(h.reviews).toHaveLength(1);
    h.advance(2_000);
    await h.verifier.verify(long);
    expect(h.reviews).toHaveLength(2);

    const short = await token({ exp: Math.floor((T0 + 61_000 + 10_000) / 1000) });
    await h.verifier.verify(short);
    h.advance(10_000);
    expect(await code(h.verifier.verify(short))).toBe('ERR_AUTH_EXPIRED');
    expect(h.reviews).toHaveLength(3);
  });

  it('holds at most maxCacheEntries reviews, dropping the oldest', async () => {
    const h = harness();
    const [a, b, c] = await Promise.all([token({ sub: 'a' }), token({ sub: 'b' }), token({ sub: 'c' })]);
    for (const t of [a, b, c, c, b]) await h.verifier.verify(t!);
    expect(h.reviews.map((r) => r.token)).toEqual([a, b, c]);
    await h.verifier.verify(a!);
    expect(h.reviews).toHaveLength(4);
  });

  it('sends one review for concurrent uses of a token, and answers 500 beyond maxInFlight distinct reviews', async () => {
    const release: (() => void)[] = [];
    let hold = true;
    const h = harness(() => (hold ? new Promise((resolve) => release.push(() => resolve(authenticated()))) : authenticated()));
    const [a, b, c] = await Promise.all([token({ sub: 'a' }), token({ sub: 'b' }), token({ sub: 'c' })]);
    const pending = [h.verifier.verify(a!), h.verifier.verify(a!), h.verifier.verify(b!)];
    expect(await code(h.verifier.verify(c!))).toBe('ERR_AUTH_INTERNAL');
    expect(h.reviews).toHaveLength(2);
    hold = false;
    release.forEach((r) => r());
    await Promise.all(pending);
    expect(await code(h.verifier.verify(c!))).toBe('accepted');
  });

  it('answers 500 when the apiserver cannot be asked, so agents retry instead of giving up', async () => {
    const h = harness(() => Promise.reject(new Error('connect ECONNREFUSED')));
    expect(await code(h.verifier.verify(await token()))).toBe('ERR_AUTH_INTERNAL');
  });

  it('parses only ServiceAccount usernames', () => {
    expect(parseServiceAccount('system:serviceaccount:ns:name')).toEqual({ namespace: 'ns', name: 'name' });
    for (const u of ['system:serviceaccount:ns', 'system:serviceaccount::name', 'system:serviceaccount:a:b:c', 'system:node:x', 'alice']) {
      expect(parseServiceAccount(u)).toBeUndefined();
    }
  });
});

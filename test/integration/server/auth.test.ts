import { once } from 'node:events';
import { SignJWT } from 'jose';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawUpstream, type RawUpstream } from '../../helpers/raw-upstream';

const PROXY_SECRET = 'proxy-secret-0123456789abcdef';
const UPSTREAM_SECRET = 'upstream-secret-0123456789abcdef';
const ADMIN_SECRET = 'admin-secret-0123456789abcdef';

function sign(secret: string, claims: Record<string, unknown> = {}, expSeconds = 3600): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds)
    .sign(new TextEncoder().encode(secret));
}

describe('auth on each port', () => {
  let srv: TestServer;
  const upstreams: RawUpstream[] = [];

  beforeAll(async () => {
    srv = await startTestServer({
      'proxy.auth.hmac_secret_key': PROXY_SECRET,
      'upstream.auth.hmac_secret_key': UPSTREAM_SECRET,
      'admin.auth.hmac_secret_key': ADMIN_SECRET,
    });
    const token = await sign(UPSTREAM_SECRET, { piko: { endpoints: ['secure'] } });
    upstreams.push(
      await connectRawUpstream(srv.upstreamUrl, 'secure', (_req, res) => res.end('secret data'), { authorization: `Bearer ${token}` }),
    );
    await waitForUpstreams(srv.server.upstreams, 'secure', 1);
  });

  afterAll(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await stopAllTestServers();
  });

  const proxied = (headers: Record<string, string>) =>
    request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'secure', ...headers } });

  it('proxy: refuses a request without a token', async () => {
    const res = await proxied({});
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'missing authorization' });
  });

  it('proxy: refuses a token signed with another key', async () => {
    const res = await proxied({ authorization: `Bearer ${await sign(UPSTREAM_SECRET)}` });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'invalid token' });
  });

  it('proxy: refuses an expired token', async () => {
    const res = await proxied({ authorization: `Bearer ${await sign(PROXY_SECRET, {}, -60)}` });
    expect(JSON.parse(res.body)).toEqual({ error: 'expired token' });
  });

  it('proxy: accepts a valid token, x-piko-authorization first, leaving Authorization to the app', async () => {
    const res = await proxied({ 'x-piko-authorization': `Bearer ${await sign(PROXY_SECRET)}`, authorization: 'Basic dXNlcjpwYXNz' });
    expect(res).toMatchObject({ status: 200, body: 'secret data' });
  });

  it('proxy: enforces piko.endpoints', async () => {
    const other = await proxied({ authorization: `Bearer ${await sign(PROXY_SECRET, { piko: { endpoints: ['other'] } })}` });
    expect(other.status).toBe(401);
    expect(JSON.parse(other.body)).toEqual({ error: 'endpoint not permitted' });
    const allowed = await proxied({ authorization: `Bearer ${await sign(PROXY_SECRET, { piko: { endpoints: ['other', 'secure'] } })}` });
    expect(allowed.status).toBe(200);
  });

  it('upstream: refuses a listener without a token, or with a token for another endpoint', async () => {
    await expect(connectRawUpstream(srv.upstreamUrl, 'secure', () => undefined)).rejects.toThrow('401');
    const token = await sign(UPSTREAM_SECRET, { piko: { endpoints: ['secure'] } });
    await expect(connectRawUpstream(srv.upstreamUrl, 'elsewhere', () => undefined, { authorization: `Bearer ${token}` })).rejects.toThrow(
      '401',
    );
  });

  it('upstream: closes the session when its token expires', async () => {
    const token = await sign(UPSTREAM_SECRET, {}, 1);
    const up = await connectRawUpstream(srv.upstreamUrl, 'short-lived', () => undefined, { authorization: `Bearer ${token}` });
    await waitForUpstreams(srv.server.upstreams, 'short-lived', 1);
    if (!up.session.closed) await once(up.session, 'close');
    expect(srv.server.upstreams.count('short-lived')).toBe(0);
  });

  it('upstream: stays connected with a token valid for longer than a Node timer can wait (60 days)', async () => {
    const token = await sign(UPSTREAM_SECRET, { piko: { endpoints: ['long-lived'] } }, 60 * 24 * 3600);
    const up = await connectRawUpstream(srv.upstreamUrl, 'long-lived', (_req, res) => res.end('still here'), {
      authorization: `Bearer ${token}`,
    });
    await waitForUpstreams(srv.server.upstreams, 'long-lived', 1);
    // A disconnect timer overflowing 2^31 ms fires after 1 ms: by the time a
    // ping has crossed the tunnel and a request has gone through, it would have.
    await up.session.ping(5_000);
    const res = await request(`${srv.proxyUrl}/`, {
      headers: { 'x-piko-endpoint': 'long-lived', authorization: `Bearer ${await sign(PROXY_SECRET)}` },
    });
    expect(res).toMatchObject({ status: 200, body: 'still here' });
    expect(up.session.closed).toBe(false);
    expect(srv.server.upstreams.count('long-lived')).toBe(1);
    await up.close();
    await waitForUpstreams(srv.server.upstreams, 'long-lived', 0);
  });

  it('admin: guards metrics and status, and accepts its own key only', async () => {
    expect((await request(`${srv.adminUrl}/metrics`)).status).toBe(401);
    const wrong = await request(`${srv.adminUrl}/metrics`, { headers: { authorization: `Bearer ${await sign(PROXY_SECRET)}` } });
    expect(wrong.status).toBe(401);
    const ok = await request(`${srv.adminUrl}/status/upstream/endpoints`, {
      headers: { authorization: `Bearer ${await sign(ADMIN_SECRET)}` },
    });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ secure: 1 });
  });
});

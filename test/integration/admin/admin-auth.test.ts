import { createHmac } from 'node:crypto';
import { createVerifier } from '../../../dataplane/auth/verifier';
import { request, startAdmin, type AdminUnderTest } from './admin-harness';

const SECRET = 'admin-test-secret-of-at-least-32-bytes!';

// An HS256 JWT built by hand, so this test does not depend on how jose signs.
function sign(key: string, expiresInSeconds = 3600): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ exp: Math.floor(Date.now() / 1000) + expiresInSeconds })}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

describe('admin server with auth', () => {
  let admin: AdminUnderTest;

  beforeEach(async () => {
    admin = await startAdmin({
      verifier: createVerifier({ hmacSecretKey: SECRET, disableDisconnectOnExpiry: false }),
    });
    admin.ready.value = true;
  });

  afterEach(async () => {
    await admin.close();
  });

  it('guards every route, probes and unknown paths included', async () => {
    for (const path of ['/health', '/ready', '/metrics', '/status/upstream/endpoints', '/nope']) {
      const res = await request(admin.port, path);
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body)).toEqual({ error: 'missing authorization' });
    }
  });

  it("serves the status page's own files without a token, but none of the data they show", async () => {
    for (const path of ['/', '/ui/status.js', '/ui/status.css']) expect((await request(admin.port, path)).status).toBe(200);
    const overview = await request(admin.port, '/status/overview');
    expect(overview.status).toBe(401);
    // Only reads: another method on a page path is guarded like any other route.
    expect((await request(admin.port, '/', { method: 'POST' })).status).toBe(401);
  });

  it("answers Piko's 401 messages for bad credentials", async () => {
    const cases: [string, string][] = [
      ['Bearer', 'invalid authorization'],
      ['Basic abc', 'unsupported auth type'],
      [`Bearer ${sign('some-other-secret-of-at-least-32-bytes')}`, 'invalid token'],
      [`Bearer ${sign(SECRET, -60)}`, 'expired token'],
    ];
    for (const [authorization, error] of cases) {
      const res = await request(admin.port, '/health', { headers: { authorization } });
      expect([res.status, JSON.parse(res.body)]).toEqual([401, { error }]);
    }
  });

  it('serves a request carrying a valid token in either header', async () => {
    const token = sign(SECRET);
    expect((await request(admin.port, '/health', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await request(admin.port, '/ready', { headers: { 'x-piko-authorization': `Bearer ${token}` } })).status).toBe(200);
    const nodes = await request(admin.port, '/status/cluster/nodes', { headers: { authorization: `Bearer ${token}` } });
    expect(nodes.status).toBe(200);
    const missing = await request(admin.port, '/nope', { headers: { authorization: `Bearer ${token}` } });
    expect(missing.status).toBe(404);
  });

  it('answers a bare 500 when the verifier itself fails', async () => {
    await admin.close();
    admin = await startAdmin({
      verifier: {
        verify: () => Promise.reject(new Error('jwks unavailable')),
        close: () => undefined,
      },
    });
    const res = await request(admin.port, '/health', { headers: { authorization: 'Bearer x' } });
    expect(res).toMatchObject({ status: 500, body: '' });
  });
});

/**
 * The JSON behind the status page, and the page's files as the admin port serves them. The
 * page itself is tested in a browser (status-page.browser.test.ts).
 */
import type { StatusProvider } from '../../../dataplane/admin/status-provider';
import { MAX_ENDPOINTS } from '../../../dataplane/admin/status-overview';
import { MY_ENDPOINT_TRAFFIC, request, startAdmin, status, type AdminUnderTest } from './admin-harness';

let admin: AdminUnderTest | undefined;
afterEach(async () => {
  await admin?.close();
  admin = undefined;
});

describe('GET /status/overview', () => {
  it("gathers the cluster's endpoints with the pods holding them, the nodes, this node's tunnels and the limits tripped", async () => {
    admin = await startAdmin();
    const res = await request(admin.port, '/status/overview');
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      node: { id: 'node-a', tunnels: 3, uptime_seconds: expect.any(Number) },
      endpoints: [
        { id: 'my-endpoint', upstreams: 2, nodes: [{ id: 'node-a', upstreams: 2 }], traffic: MY_ENDPOINT_TRAFFIC },
        { id: 'other', upstreams: 1, nodes: [{ id: 'node-a', upstreams: 1 }] },
      ],
      endpoints_omitted: 0,
      nodes: [
        { id: 'node-a', status: 'active', local: true, endpoints: 2, upstreams: 3, lease_age_seconds: expect.any(Number) },
        { id: 'node-b', status: 'unreachable', local: false },
      ],
      // Limits that never tripped are left out.
      limits_tripped: { 'upstream.max_connections': 2 },
      traffic_window_seconds: 30,
    });
    const nodes = body['nodes'] as { lease_age_seconds?: number }[];
    expect(nodes[0]?.lease_age_seconds).toBeGreaterThanOrEqual(4);
    expect(nodes[0]?.lease_age_seconds).toBeLessThan(60);
    // An endpoint with no requests in the window has no traffic figures rather than zeros.
    expect(Object.keys((body['endpoints'] as object[])[1]!)).not.toContain('traffic');
    expect(Object.keys(nodes[1]!)).not.toContain('lease_age_seconds');
    const filtered = JSON.parse((await request(admin.port, '/status/overview?q=oth')).body) as { endpoints: { id: string }[] };
    expect(filtered.endpoints.map((e) => e.id)).toEqual(['other']);
  });

  it('answers in bounded size however many endpoints the cluster has, the busiest first', async () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 5_000; i++) many[`ep-${i}`] = i === 4_321 ? 50 : 1;
    const big: StatusProvider = {
      ...status,
      localEndpoints: () => many,
      node: (id) => (id === 'local' ? { id: 'node-a', status: 'active', proxyAddr: '', adminAddr: '', endpoints: many } : undefined),
      nodes: () => [{ id: 'node-a', status: 'active', proxyAddr: '', adminAddr: '', endpoints: 5_000, upstreams: 5_049 }],
      // Every one busy: the largest answer there can be.
      traffic: () => ({ rps: 1234.56, error_rate: 0.1234, p50_ms: 1234.56, p95_ms: 1234.56, p99_ms: 1234.56, requests: 123_456 }),
    };
    admin = await startAdmin({ status: big });
    const res = await request(admin.port, '/status/overview');
    const body = JSON.parse(res.body) as { endpoints: { id: string }[]; endpoints_omitted: number };
    expect(body.endpoints).toHaveLength(MAX_ENDPOINTS);
    expect(body.endpoints[0]?.id).toBe('ep-4321');
    expect(body.endpoints_omitted).toBe(5_000 - MAX_ENDPOINTS);
    expect(res.body.length).toBeLessThan(128 * 1024);
    // A search longer than any endpoint ID is cut to 128 characters, not matched in full against each.
    const long = await request(admin.port, `/status/overview?q=${'ep-1'.repeat(2_500)}`);
    expect(long.status).toBe(200);
    expect(JSON.parse(long.body)).toMatchObject({ endpoints: [], endpoints_omitted: 0 });
  });
});

describe('GET /status/overview?since=', () => {
  it('waits for the next change when the page already has this version', async () => {
    const listeners = new Set<() => void>();
    const changing: StatusProvider = {
      ...status,
      onChange: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    };
    admin = await startAdmin({ status: changing });
    const first = JSON.parse((await request(admin.port, '/status/overview')).body) as { version: number };
    expect(first.version).toBe(0);
    let answered = false;
    const waiting = request(admin.port, '/status/overview?since=0').then((r) => {
      answered = true;
      return JSON.parse(r.body) as { version: number };
    });
    // Parked: a request for an older version is answered at once meanwhile.
    expect((await request(admin.port, '/status/overview?since=7')).status).toBe(200);
    expect(answered).toBe(false);
    for (const l of listeners) l();
    expect((await waiting).version).toBe(1);
  });
});

describe('the status page files', () => {
  it('are served with a Content-Security-Policy that allows nothing inline or from elsewhere', async () => {
    admin = await startAdmin();
    const page = await request(admin.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<script src="/ui/status.js" defer></script>');
    expect(page.body).not.toMatch(/<script>|\sstyle="|\son[a-z]+="/);
    const script = await request(admin.port, '/ui/status.js');
    expect(script).toMatchObject({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
    expect(script.body).toContain('/status/overview');
    expect((await request(admin.port, '/ui/status.css')).status).toBe(200);
    expect((await request(admin.port, '/ui/other.js')).status).toBe(404);
  });
});

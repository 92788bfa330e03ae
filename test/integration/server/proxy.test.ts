import { once } from 'node:events';
import http from 'node:http';
import { connectRawUpstream, type RawUpstream } from '../../helpers/raw-upstream';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, opts: http.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(opts.body);
  });
}

async function waitForUpstreams(server: TestServer, endpointId: string, count: number): Promise<void> {
  const table = server.server.upstreams;
  while (table.count(endpointId) !== count) await once(table, 'change');
}

describe('proxy through a tunnel', () => {
  let srv: TestServer;
  const upstreams: RawUpstream[] = [];

  beforeEach(async () => {
    srv = await startTestServer();
  });

  afterEach(async () => {
    await Promise.all(upstreams.splice(0).map((u) => u.close()));
    await stopAllTestServers();
  });

  it('answers 400 missing endpoint id when neither header names one', async () => {
    const res = await request(`${srv.proxyUrl}/`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'missing endpoint id' });
  });

  it('answers 502 no available upstreams for an endpoint nobody serves', async () => {
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'nobody' } });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toEqual({ error: 'no available upstreams' });
  });

  it('forwards GET and POST to the upstream, with forwarding headers', async () => {
    upstreams.push(
      await connectRawUpstream(srv.upstreamUrl, 'my-endpoint', (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              method: req.method,
              url: req.url,
              host: req.headers.host,
              xff: req.headers['x-forwarded-for'],
              forward: req.headers['x-piko-forward'],
              body: Buffer.concat(chunks).toString(),
            }),
          );
        });
      }),
    );
    await waitForUpstreams(srv, 'my-endpoint', 1);
    const get = await request(`${srv.proxyUrl}/a/b?c=d`, { headers: { host: 'my-endpoint.example.com' } });
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toEqual({
      method: 'GET',
      url: '/a/b?c=d',
      host: 'my-endpoint.example.com',
      xff: '127.0.0.1',
      forward: 'true',
      body: '',
    });
    const post = await request(`${srv.proxyUrl}/submit`, {
      method: 'POST',
      headers: { 'x-piko-endpoint': 'my-endpoint' },
      body: 'hello upstream',
    });
    expect(JSON.parse(post.body)).toMatchObject({ method: 'POST', body: 'hello upstream' });
  });

  it('counts the body bytes relayed in the response size metric, chunked bodies included', async () => {
    upstreams.push(
      await connectRawUpstream(srv.upstreamUrl, 'sized', (_req, res) => {
        // No Content-Length: the size is only known by counting.
        res.write('a'.repeat(1000));
        res.write('b'.repeat(2000));
        res.end('c'.repeat(500));
      }),
    );
    await waitForUpstreams(srv, 'sized', 1);
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'sized' } });
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.body.length).toBe(3500);
    const metrics = await request(`${srv.adminUrl}/metrics`);
    expect(metrics.body).toMatch(/^piko_proxy_response_size_bytes_sum 3500$/m);
    expect(metrics.body).toMatch(/^piko_proxy_response_size_bytes_count 1$/m);
  });

  it('balances requests round robin over two upstreams on one endpoint', async () => {
    for (const name of ['one', 'two']) {
      upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'lb', (_req, res) => res.end(name)));
    }
    await waitForUpstreams(srv, 'lb', 2);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'lb' } })).body);
    expect(seen.filter((s) => s === 'one')).toHaveLength(3);
    expect(seen.filter((s) => s === 'two')).toHaveLength(3);
  });

  it('answers 502 once the only upstream is gone, and recovers when one returns', async () => {
    const up = await connectRawUpstream(srv.upstreamUrl, 'flaky', (_req, res) => res.end('ok'));
    await waitForUpstreams(srv, 'flaky', 1);
    expect((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'flaky' } })).body).toBe('ok');
    await up.close();
    await waitForUpstreams(srv, 'flaky', 0);
    expect((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'flaky' } })).status).toBe(502);
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'flaky', (_req, res) => res.end('back')));
    await waitForUpstreams(srv, 'flaky', 1);
    expect((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'flaky' } })).body).toBe('back');
  });

  it('routes new requests away from an upstream that sent GoAway without failing any', async () => {
    const leaving = await connectRawUpstream(srv.upstreamUrl, 'drain', (_req, res) => res.end('leaving'));
    upstreams.push(leaving);
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'drain', (_req, res) => res.end('staying')));
    await waitForUpstreams(srv, 'drain', 2);
    leaving.session.goAway();
    await waitForUpstreams(srv, 'drain', 1);
    const bodies = await Promise.all(
      Array.from({ length: 20 }, () => request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'drain' } })),
    );
    expect(bodies.map((b) => b.status)).toEqual(Array(20).fill(200));
    expect(new Set(bodies.map((b) => b.body))).toEqual(new Set(['staying']));
  });

  it('tries the next upstream when one refuses the stream before any byte was sent', async () => {
    // This upstream's session refuses every stream (no stream listener: RST).
    const refusing = await connectRawUpstream(srv.upstreamUrl, 'retry', (_req, res) => res.end('never'));
    refusing.session.removeAllListeners('stream');
    upstreams.push(refusing);
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'retry', (_req, res) => res.end('served')));
    await waitForUpstreams(srv, 'retry', 2);
    const sent = async () =>
      Number(/^piko_upstreams_upstream_requests_total (\d+)$/m.exec((await request(`${srv.adminUrl}/metrics`)).body)?.[1]);
    const before = await sent();
    for (let i = 0; i < 4; i++) {
      // Without a body the request follows the SYN at once and goes again on a refusal;
      // with one it waits for the ACK and only then is sent.
      const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'retry' } });
      expect(res).toMatchObject({ status: 200, body: 'served' });
      const post = await request(`${srv.proxyUrl}/`, { method: 'POST', body: 'once', headers: { 'x-piko-endpoint': 'retry' } });
      expect(post).toMatchObject({ status: 200, body: 'served' });
    }
    // Each request once, however many streams it took.
    expect((await sent()) - before).toBe(8);
  });

  it('answers 504 upstream timeout when the upstream does not answer in time', async () => {
    await stopAllTestServers();
    srv = await startTestServer({ 'proxy.timeout': 200 });
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'slow', () => undefined));
    await waitForUpstreams(srv, 'slow', 1);
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'slow' } });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toEqual({ error: 'upstream timeout' });
  });

  it('holds a request for proxy.upstream-wait until an upstream appears, instead of failing it', async () => {
    await stopAllTestServers();
    srv = await startTestServer({ 'proxy.upstream_wait': 5000 });
    const pending = request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'late' } });
    // The request is in the router now; the upstream connects after it.
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'late', (_req, res) => res.end('worth the wait')));
    expect(await pending).toMatchObject({ status: 200, body: 'worth the wait' });
  });

  it('still answers 502 when the wait runs out', async () => {
    await stopAllTestServers();
    srv = await startTestServer({ 'proxy.upstream_wait': 100 });
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'never' } });
    expect(res.status).toBe(502);
  });

  it('refuses an upstream with an invalid endpoint id', async () => {
    await expect(connectRawUpstream(srv.upstreamUrl, 'bad%20id', () => undefined)).rejects.toThrow('upstream rejected with 400');
  });
});

import { goPikoBinary, startGoPikoAgent, stopAllGoPiko, type GoPikoProcess } from '../helpers/go-piko';
import { waitForUpstreams } from '../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/piko-server';
import { GO_BUILD_TIMEOUT_MS, hashedRequest, MIB, patternSha256, patternStream, startInteropService, type InteropService } from './support';

/**
 * Flow control against the Go yamux client: a body far larger than one
 * 256 KiB window in each direction, and many streams at once on one session.
 * Our side must never overrun the Go agent's window (Go would tear the
 * session down with GoAway(protocol error)) and must grant window back as it
 * reads, or the Go agent stalls.
 */
describe('flow control with one Go agent session on our server', () => {
  let srv: TestServer;
  let service: InteropService;
  let agent: GoPikoProcess;

  beforeAll(async () => {
    goPikoBinary();
    // The agent's own per-request timeout (10 s by default) would cut a slow 100 MiB transfer on a busy machine.
    [srv, service] = await Promise.all([
      startTestServer({ 'proxy.timeout': 60_000, 'proxy.http.read_timeout': 60_000 }),
      startInteropService(),
    ]);
    agent = await startGoPikoAgent([
      'http',
      'bulk',
      String(service.port),
      '--connect.url',
      srv.upstreamUrl,
      '--timeout',
      '60s',
      '--access-log=false',
    ]);
    await waitForUpstreams(srv.server.upstreams, 'bulk', 1);
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllGoPiko();
    await stopAllTestServers();
    await service?.close();
  });

  const headers = { 'x-piko-endpoint': 'bulk' };

  it('uploads 100 MiB through the Go agent intact', async () => {
    const size = 100 * MIB;
    const reply = await hashedRequest(`${srv.proxyUrl}/digest?reply=0`, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(size) },
      body: patternStream(size, 101),
    });

    expect(reply.status).toBe(200);
    expect(reply.headers['x-request-bytes']).toBe(String(size));
    expect(reply.headers['x-request-sha256']).toBe(patternSha256(size, 101));
  }, 60_000);

  it('downloads 100 MiB through the Go agent intact', async () => {
    const size = 100 * MIB;
    const reply = await hashedRequest(`${srv.proxyUrl}/pattern?size=${size}&seed=102`, { headers });

    expect(reply.status).toBe(200);
    expect(reply.headers['content-length']).toBe(String(size));
    expect(reply.body).toEqual({ bytes: size, sha256: patternSha256(size, 102) });
  }, 60_000);

  it('carries 200 concurrent streams, each past one window both ways, on the one session', async () => {
    // Just over one window each way, so every stream needs window updates in both directions.
    const up = 300 * 1024;
    const down = 290 * 1024;
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        hashedRequest(`${srv.proxyUrl}/digest?reply=${down}&seed=${1000 + i}`, {
          method: 'POST',
          headers: { ...headers, 'content-length': String(up) },
          body: patternStream(up, 2000 + i),
        }),
      ),
    );

    const bad = replies
      .map((r, i) => ({ i, r }))
      .filter(
        ({ i, r }) =>
          r.status !== 200 ||
          r.headers['x-request-sha256'] !== patternSha256(up, 2000 + i) ||
          r.body.sha256 !== patternSha256(down, 1000 + i) ||
          r.body.bytes !== down,
      )
      .map(({ i, r }) => `#${i}: ${r.status} ${r.body.bytes} bytes`);
    expect(bad).toEqual([]);
    // Still the one session: the Go agent never reconnected.
    expect(srv.server.upstreams.count('bulk')).toBe(1);
    expect(agent.logs()).not.toMatch(/reconnecting|disconnected/);
  }, 60_000);
});

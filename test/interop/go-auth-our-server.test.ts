import { once } from 'node:events';
import net from 'node:net';
import { SignJWT } from 'jose';
import { freeLoopbackPorts, goPikoBinary, startGoPikoAgent, startGoPikoForward, stopAllGoPiko, waitForTcpPort } from '../helpers/go-piko';
import { request, waitForUpstreams } from '../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/piko-server';
import { echoRoundTrip, GO_BUILD_TIMEOUT_MS, startInteropService, startTcpEcho, type InteropService, type TcpEcho } from './support';

const UPSTREAM_SECRET = 'interop-upstream-secret-0123456789';
const PROXY_SECRET = 'interop-proxy-secret-0123456789';

function sign(secret: string, endpoints: string[]): Promise<string> {
  return new SignJWT({ piko: { endpoints } })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(secret));
}

/**
 * Tokens from the Go agent and Go forward (`--connect.token`, sent as
 * `Authorization: Bearer`) checked by our server, and our 401 JSON read by
 * Go's client, which treats it as final.
 */
describe('Go agent and Go forward authenticating with our server', () => {
  let srv: TestServer;
  let service: InteropService;
  let echo: TcpEcho;

  beforeAll(async () => {
    goPikoBinary();
    [srv, service, echo] = await Promise.all([
      startTestServer({ 'upstream.auth.hmac_secret_key': UPSTREAM_SECRET, 'proxy.auth.hmac_secret_key': PROXY_SECRET }),
      startInteropService(),
      startTcpEcho(),
    ]);
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllGoPiko();
    await stopAllTestServers();
    await Promise.all([service?.close(), echo?.close()]);
  });

  it('registers a Go agent whose token permits its endpoint', async () => {
    const token = await sign(UPSTREAM_SECRET, ['authed']);
    await startGoPikoAgent([
      'http',
      'authed',
      String(service.port),
      '--connect.url',
      srv.upstreamUrl,
      '--connect.token',
      token,
      '--log.level',
      'warn',
    ]);
    await waitForUpstreams(srv.server.upstreams, 'authed', 1);

    const proxyToken = await sign(PROXY_SECRET, ['authed']);
    const reply = await request(`${srv.proxyUrl}/hello`, {
      headers: { 'x-piko-endpoint': 'authed', authorization: `Bearer ${proxyToken}` },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from the service');
  });

  it.each([
    ['a token signed with another key', async () => sign('not-the-secret-0123456789abcdef', ['denied']), 'invalid token'],
    ['a token for another endpoint', async () => sign(UPSTREAM_SECRET, ['other']), 'endpoint not permitted'],
  ])('makes a Go agent with %s give up at once with our 401 message', async (_name, token, message) => {
    const agent = await startGoPikoAgent([
      'http',
      'denied',
      String(service.port),
      '--connect.url',
      srv.upstreamUrl,
      '--connect.token',
      await token(),
    ]);

    // Go's client reads `error` from our JSON body and does not retry a 401.
    await agent.waitForLog(new RegExp(`"error":"401: ${message}"`), 10_000);
    await agent.exited;
    expect(agent.logs()).toMatch(/connect failed; non-retryable/);
    expect(srv.server.upstreams.count('denied')).toBe(0);
  });

  it('lets Go piko forward through with a proxy token, and reports our 401 without one', async () => {
    const token = await sign(UPSTREAM_SECRET, ['authed-tcp']);
    await startGoPikoAgent([
      'tcp',
      'authed-tcp',
      `127.0.0.1:${echo.port}`,
      '--connect.url',
      srv.upstreamUrl,
      '--connect.token',
      token,
      '--log.level',
      'warn',
    ]);
    await waitForUpstreams(srv.server.upstreams, 'authed-tcp', 1);
    const [good, bad] = (await freeLoopbackPorts(2)) as [number, number];
    const proxyToken = await sign(PROXY_SECRET, ['authed-tcp']);
    await startGoPikoForward([
      'tcp',
      `127.0.0.1:${good}`,
      'authed-tcp',
      '--connect.url',
      srv.proxyUrl,
      '--connect.token',
      proxyToken,
      '--log.level',
      'warn',
    ]);
    const unauthed = await startGoPikoForward(['tcp', `127.0.0.1:${bad}`, 'authed-tcp', '--connect.url', srv.proxyUrl]);
    await Promise.all([waitForTcpPort(good, 10_000), waitForTcpPort(bad, 10_000)]);

    const socket = net.connect({ port: good, host: '127.0.0.1' });
    await once(socket, 'connect', { signal: AbortSignal.timeout(5000) });
    try {
      expect((await echoRoundTrip(socket, Buffer.from('with a token'))).toString()).toBe('with a token');
    } finally {
      socket.destroy();
    }
    // waitForTcpPort's own probe already made the unauthenticated forward dial us once.
    await unauthed.waitForLog(/"error":"401: missing authorization"/, 10_000);
  });
});

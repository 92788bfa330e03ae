import { goPikoBinary, startGoPikoAgent, stopAllGoPiko, type GoPikoProcess } from '../helpers/go-piko';
import { request, waitForUpstreams, type Reply } from '../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/piko-server';
import { GO_BUILD_TIMEOUT_MS, startInteropService, type InteropService } from './support';

/**
 * GoAway, shutdown, restart and reconnect between our server and the Go
 * agent, whichever side goes away.
 */
describe('Go agent and our server coming and going', () => {
  let service: InteropService;

  beforeAll(async () => {
    goPikoBinary();
    service = await startInteropService();
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllGoPiko();
    await stopAllTestServers();
    await service?.close();
  });

  function startAgent(endpointId: string, srv: TestServer): Promise<GoPikoProcess> {
    return startGoPikoAgent(['http', endpointId, String(service.port), '--connect.url', srv.upstreamUrl, '--log.level', 'warn']);
  }

  /** Starts `n` requests on /hold/<prefix>-<i> and resolves them once the service holds all of them. */
  async function holdRequests(srv: TestServer, endpointId: string, prefix: string, n: number): Promise<Promise<Reply>[]> {
    const keys = new Set(Array.from({ length: n }, (_, i) => `${prefix}-${i}`));
    const arrived = new Promise<void>((resolve) => {
      const onHeld = (key: string): void => {
        keys.delete(key);
        if (keys.size > 0) return;
        service.events.off('held', onHeld);
        resolve();
      };
      service.events.on('held', onHeld);
    });
    const replies = Array.from({ length: n }, (_, i) =>
      request(`${srv.proxyUrl}/hold/${prefix}-${i}`, { headers: { 'x-piko-endpoint': endpointId } }),
    );
    await Promise.race([
      arrived,
      ...replies.map((r) => r.then((reply) => Promise.reject(new Error(`answered early: ${reply.status} ${reply.body}`)))),
    ]);
    return replies;
  }

  it('finishes in-flight requests when our server shuts down gracefully, then the Go agent reconnects to its successor', async () => {
    const srv = await startTestServer();
    const agent = await startAgent('drain', srv);
    await waitForUpstreams(srv.server.upstreams, 'drain', 1);
    const inFlight = await holdRequests(srv, 'drain', 'drain', 5);

    const stopped = srv.stop(10_000);
    // Shutdown has begun (GoAway sent, no longer ready) before the service answers.
    expect(srv.server.isReady).toBe(false);
    service.release('drain-');
    const replies = await Promise.all(inFlight);
    await stopped;

    expect(replies.map((r) => `${r.status} ${r.body}`)).toEqual([0, 1, 2, 3, 4].map((i) => `200 released drain-${i}`));
    // The agent saw its session end and keeps trying; a server on the same
    // upstream port gets it back without anyone restarting it.
    const upstreamPort = new URL(srv.upstreamUrl).port;
    const successor = await startTestServer({ 'upstream.bind_addr': `127.0.0.1:${upstreamPort}` });
    await waitForUpstreams(successor.server.upstreams, 'drain', 1, 15_000);
    const after = await request(`${successor.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': 'drain' } });
    expect(after.status).toBe(200);
    expect(agent.logs()).not.toMatch(/failed to run agent/);
  }, 30_000);

  it('answers 502 while a killed Go agent is gone and routes to it again once restarted', async () => {
    const srv = await startTestServer();
    const agent = await startAgent('flaky', srv);
    await waitForUpstreams(srv.server.upstreams, 'flaky', 1);
    expect((await request(`${srv.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': 'flaky' } })).status).toBe(200);

    // A request the service has not answered when the agent dies: 502, not a hang.
    const [pending] = await holdRequests(srv, 'flaky', 'kill', 1);
    await agent.kill();
    const cut = await pending;
    await waitForUpstreams(srv.server.upstreams, 'flaky', 0);
    const meanwhile = await request(`${srv.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': 'flaky' } });

    expect(cut.status).toBe(502);
    expect(JSON.parse(cut.body)).toEqual({ error: 'upstream unreachable' });
    expect(meanwhile.status).toBe(502);
    expect(JSON.parse(meanwhile.body)).toEqual({ error: 'no available upstreams' });

    await startAgent('flaky', srv);
    await waitForUpstreams(srv.server.upstreams, 'flaky', 1);
    const back = await request(`${srv.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': 'flaky' } });
    expect(back.status).toBe(200);
    expect(back.body).toBe('hello from the service');
  }, 30_000);
});

import { SignJWT } from 'jose';
import { runAgent } from '../../../dataplane/agent/run-agent';
import { silentLogger } from '../../../dataplane/log/logger';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers } from '../../helpers/piko-server';
import { startHttpService } from '../../helpers/raw-upstream';
import { agentConfig } from './agent-harness';

describe('runAgent', () => {
  afterEach(() => stopAllTestServers());

  it('serves until stopped, then shuts down and resolves', async () => {
    const srv = await startTestServer();
    const service = await startHttpService((_req, res) => res.end('from run'));
    try {
      const stop = new AbortController();
      const running = runAgent(agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'run', addr: service.url }), {
        logger: silentLogger(),
        stop: stop.signal,
      });
      await waitForUpstreams(srv.server.upstreams, 'run', 1);
      expect(await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'run' } })).toMatchObject({ status: 200, body: 'from run' });
      stop.abort();
      await running;
      await waitForUpstreams(srv.server.upstreams, 'run', 0);
    } finally {
      await service.close();
    }
  });

  it('rejects when a listener cannot register', async () => {
    const srv = await startTestServer({ 'upstream.auth.hmac_secret_key': 'upstream-secret-0123456789abcdef' });
    await expect(
      runAgent(agentConfig(srv.upstreamUrl, { protocol: 'tcp', endpointId: 'denied', addr: '3000' }), { logger: silentLogger() }),
    ).rejects.toThrow('listen denied: server answered 401 Unauthorized: missing authorization');
  });

  it('rejects when a registered listener is later refused for good', async () => {
    const secret = 'upstream-secret-0123456789abcdef';
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(secret));
    const srv = await startTestServer({ 'upstream.auth.hmac_secret_key': secret });
    const config = agentConfig(srv.upstreamUrl, { protocol: 'tcp', endpointId: 'expiring', addr: '3000' }, { 'connect.token': token });
    // The server closes the session when the token expires; the reconnect is refused with 401.
    await expect(runAgent(config, { logger: silentLogger() })).rejects.toMatchObject({
      code: 'ERR_AGENT_LISTENER_FAILED',
      endpointId: 'expiring',
    });
  });
});

/**
 * `piko agent` prints where clients reach each endpoint once it registers, as ngrok's agent does:
 * the server tells it on the upstream connection's 101 (x-piko-endpoint-url).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen } from '../../../dataplane/client';
import { loadServerConfig } from '../../../dataplane/config/server-config';
import { request } from '../../helpers/http-client';
import { capturingLogger } from '../../helpers/capturing-logger';
import { startTestServer, stopAllTestServers } from '../../helpers/piko-server';
import { agentConfig, startAgent, stopAllAgents } from './agent-harness';

afterEach(async () => {
  await stopAllAgents();
  await stopAllTestServers();
});

describe('the endpoint URL an agent prints', () => {
  it('is <endpoint>.localhost on the proxy port of a single node, and reaches the local service', async () => {
    const service = http.createServer((_req, res) => res.end('hello from the service'));
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    try {
      const srv = await startTestServer();
      const log = capturingLogger();
      const config = agentConfig(srv.upstreamUrl, {
        protocol: 'http',
        endpointId: 'my-endpoint',
        addr: `127.0.0.1:${(service.address() as AddressInfo).port}`,
      });
      await startAgent(config, log.logger);
      const registered = await log.waitFor((r) => r['message'] === 'listener registered');
      const proxyPort = new URL(srv.proxyUrl).port;
      expect(registered['url']).toBe(`http://my-endpoint.localhost:${proxyPort}`);
      // The URL's host names the endpoint: a client sending it reaches the service.
      const url = new URL(String(registered['url']));
      const res = await request(`http://127.0.0.1:${url.port}/`, { headers: { host: url.host } });
      expect([res.status, res.body]).toEqual([200, 'hello from the service']);
    } finally {
      service.close();
    }
  });

  it('is proxy.public_url with the endpoint in it, and absent for an ID no host name can carry', async () => {
    const srv = await startTestServer({ 'proxy.public_url': 'https://<endpoint>.tunnel.example.com' });
    const plain = await listen('billing', { url: srv.upstreamUrl });
    const dotted = await listen('billing.v2', { url: srv.upstreamUrl });
    try {
      expect(plain.url).toBe('https://billing.tunnel.example.com');
      expect(dotted.url).toBeUndefined();
    } finally {
      await Promise.all([plain.close(), dotted.close()]);
    }
  });

  it('refuses a proxy.public_url without <endpoint>, or with a line break that would split the header', () => {
    expect(() => loadServerConfig({ flags: { 'proxy.public_url': 'https://tunnel.example.com' } })).toThrow(
      'proxy.public_url must contain <endpoint> where the endpoint ID goes',
    );
    expect(() => loadServerConfig({ flags: { 'proxy.public_url': 'https://<endpoint>.example.com\r\nset-cookie: a=b' } })).toThrow(
      'proxy.public_url must not contain whitespace or control characters',
    );
    expect(() => loadServerConfig({ flags: { 'proxy.public_url': 'ftp://<endpoint>.example.com' } })).toThrow(
      'proxy.public_url must use one of http, https',
    );
  });
});

import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { Agent } from '../../../dataplane/agent/agent';
import { dial } from '../../../dataplane/client';
import { silentLogger } from '../../../dataplane/log/logger';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startHttpService } from '../../helpers/raw-upstream';
import { makeTlsFixtures } from '../../helpers/tls-fixtures';
import { agentConfig, capturingLogger, startAgent, stopAllAgents } from './agent-harness';
import { readBytes } from '../../helpers/streams';

describe('agent', () => {
  let srv: TestServer;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeEach(async () => {
    srv = await startTestServer();
  });

  afterEach(async () => {
    await stopAllAgents();
    for (const c of cleanups.splice(0).reverse()) await c();
    await stopAllTestServers();
  });

  const viaProxy = (endpointId: string, path = '/', opts: http.RequestOptions & { body?: string } = {}) =>
    request(`${srv.proxyUrl}${path}`, { ...opts, headers: { 'x-piko-endpoint': endpointId, ...opts.headers } });

  describe('http listener', () => {
    it('forwards to the local service with Host kept, X-Forwarded-For appended and the base path joined', async () => {
      const service = await startHttpService((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.setHeader('x-from-service', 'yes');
          res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
        });
      });
      cleanups.push(service.close);
      const { logger } = capturingLogger();
      await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'web', addr: `${service.url}/api?fixed=1` }), logger);
      await waitForUpstreams(srv.server.upstreams, 'web', 1);

      const res = await viaProxy('web', '/users?id=7', {
        method: 'POST',
        body: 'payload',
        headers: { host: 'web.example.com', 'x-forwarded-for': '203.0.113.9', 'x-custom': 'kept', 'proxy-authorization': 'drop-me' },
      });
      expect(res.status).toBe(200);
      expect(res.headers['x-from-service']).toBe('yes');
      const seen = JSON.parse(res.body) as { url: string; method: string; headers: http.IncomingHttpHeaders; body: string };
      expect(seen.url).toBe('/api/users?fixed=1&id=7');
      expect(seen.method).toBe('POST');
      expect(seen.body).toBe('payload');
      expect(seen.headers.host).toBe('web.example.com');
      expect(seen.headers['x-custom']).toBe('kept');
      expect(seen.headers['x-piko-forward']).toBe('true');
      expect(seen.headers['proxy-authorization']).toBeUndefined();
      // The client, then the server's hop as the agent saw it (the Piko server).
      expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1, 127.0.0.1');
    });

    it('keeps connections to the local service alive between requests', async () => {
      let connections = 0;
      const service = await startHttpService((_req, res) => res.end('ok'));
      service.server.on('connection', () => connections++);
      cleanups.push(service.close);
      await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'ka', addr: String(service.port) }), silentLogger());
      await waitForUpstreams(srv.server.upstreams, 'ka', 1);
      for (let i = 0; i < 3; i++) expect(await viaProxy('ka')).toMatchObject({ status: 200, body: 'ok' });
      expect(connections).toBe(1);
    });

    it('answers 502 upstream unreachable when the local service is down', async () => {
      const closed = net.createServer();
      closed.listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const port = (closed.address() as net.AddressInfo).port;
      closed.close();
      await once(closed, 'close');
      await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'down', addr: `127.0.0.1:${port}` }), silentLogger());
      await waitForUpstreams(srv.server.upstreams, 'down', 1);
      const res = await viaProxy('down');
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body)).toEqual({ error: 'upstream unreachable' });
    });

    it('answers 504 upstream timeout when the service does not answer within the listener timeout', async () => {
      const service = await startHttpService(() => undefined);
      cleanups.push(service.close);
      await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'slow', addr: service.url, flags: { timeout: 200 } }),
        silentLogger(),
      );
      await waitForUpstreams(srv.server.upstreams, 'slow', 1);
      const res = await viaProxy('slow');
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body)).toEqual({ error: 'upstream timeout' });
    });

    it('passes headers as large as the proxy admits, and relays its own 431 beyond its limit', async () => {
      await stopAllTestServers();
      // A proxy admitting more than the agent does, so the agent's limit is the one that trips.
      srv = await startTestServer({ 'proxy.http.max_header_bytes': 4 * 1024 * 1024 });
      const service = http.createServer({ maxHeaderSize: 4 * 1024 * 1024 }, (req, res) => res.end(String(req.headers['x-big']?.length)));
      service.listen(0, '127.0.0.1');
      await once(service, 'listening');
      cleanups.push(() => {
        service.closeAllConnections();
        service.close();
      });
      const addr = `127.0.0.1:${(service.address() as net.AddressInfo).port}`;
      await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'big', addr }), silentLogger());
      await waitForUpstreams(srv.server.upstreams, 'big', 1);
      // Node's default cap is 16 KiB; the proxy's default is 1 MiB.
      const large = await viaProxy('big', '/', { headers: { 'x-big': 'a'.repeat(900 * 1024) } });
      expect(large).toMatchObject({ status: 200, body: String(900 * 1024) });
      const tooLarge = await viaProxy('big', '/', { headers: { 'x-big': 'a'.repeat(2 * 1024 * 1024) } });
      expect(tooLarge.status).toBe(431);
      expect(JSON.parse(tooLarge.body)).toEqual({ error: 'request headers too large' });
    });

    it('does not cut a response that keeps streaming past the timeout', async () => {
      const service = await startHttpService((_req, res) => {
        res.write('a');
        let n = 0;
        const tick = setInterval(() => {
          res.write('b');
          if (++n === 5) {
            clearInterval(tick);
            res.end('c');
          }
        }, 60);
      });
      cleanups.push(service.close);
      await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'stream', addr: service.url, flags: { timeout: 150 } }),
        silentLogger(),
      );
      await waitForUpstreams(srv.server.upstreams, 'stream', 1);
      expect(await viaProxy('stream')).toMatchObject({ status: 200, body: 'abbbbbc' });
    });

    it('passes WebSocket upgrades through to the local service', async () => {
      const service = await startHttpService((_req, res) => res.end());
      cleanups.push(service.close);
      const wss = new WebSocketServer({ server: service.server });
      wss.on('connection', (ws, req) => {
        ws.send(`hello ${req.url}`);
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      cleanups.push(() => {
        for (const c of wss.clients) c.terminate();
        wss.close();
      });
      const { logger, waitFor } = capturingLogger();
      await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'ws', addr: service.url, flags: { timeout: 200 } }),
        logger,
      );
      await waitForUpstreams(srv.server.upstreams, 'ws', 1);

      const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/chat`, { headers: { 'x-piko-endpoint': 'ws' } });
      // Collect from the start: the greeting can arrive with the 101 itself.
      const messages: string[] = [];
      const waiters: (() => void)[] = [];
      ws.on('message', (d) => {
        messages.push(d.toString());
        waiters.shift()?.();
      });
      const nextMessage = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));
      const greeting = nextMessage();
      await once(ws, 'open');
      await greeting;
      // Wait longer than the listener timeout: an upgraded connection has none.
      const longTimer = new Promise<void>((resolve) => setTimeout(resolve, 300));
      await longTimer;
      const echoed = nextMessage();
      ws.send('after the timeout');
      await echoed;
      expect(messages).toEqual(['hello /chat', 'after the timeout']);
      const closed = once(ws, 'close');
      ws.close();
      await closed;
      // Logged once the upgraded connection is over, with the service's 101.
      const access = await waitFor((r) => r.subsystem === 'proxy.http.access');
      expect(access.request).toMatchObject({ method: 'GET', path: '/chat', status: 101 });
    });

    it('logs each request as proxy.http.access and counts it in piko_agent_* metrics with the endpoint', async () => {
      const service = await startHttpService((_req, res) => res.writeHead(201, { 'x-reply': 'r' }).end('created'));
      cleanups.push(service.close);
      const { logger, records } = capturingLogger();
      const agent = await startAgent(
        agentConfig(
          srv.upstreamUrl,
          { protocol: 'http', endpointId: 'logged', addr: service.url },
          { 'server.enabled': true, 'server.bind_addr': '127.0.0.1:0' },
        ),
        logger,
      );
      await waitForUpstreams(srv.server.upstreams, 'logged', 1);
      expect(await viaProxy('logged', '/things?x=1', { method: 'PUT', body: 'abc' })).toMatchObject({ status: 201 });

      // Recorded when the agent handed the response's last byte to the tunnel, before the client could read it.
      const metricsUrl = `http://127.0.0.1:${agent.metricsAddress!.port}/metrics`;
      const metrics = (await request(metricsUrl)).body;
      expect(metrics).toMatch(/piko_agent_requests_total\{status="201",method="PUT",endpoint="logged"\} 1/);
      expect(metrics).toMatch(/piko_agent_request_latency_seconds_count\{status="201",method="PUT",endpoint="logged"\} 1/);
      expect(metrics).toMatch(/piko_agent_requests_in_flight\{endpoint="logged"\} 0/);
      expect(metrics).toMatch(/piko_agent_response_size_bytes_sum\{endpoint="logged"\} 7/);

      const access = records().find((r) => r.subsystem === 'proxy.http.access');
      expect(access).toMatchObject({
        level: 'info',
        message: 'request',
        endpointId: 'logged',
        request: { method: 'PUT', path: '/things', status: 201, proto: 'HTTP/1.1' },
      });
      expect((access!.request as { response_headers: Record<string, string[]> }).response_headers['X-Reply']).toEqual(['r']);
      expect((await request(metricsUrl.replace('/metrics', '/other'))).status).toBe(404);
    });

    it('speaks HTTPS to a local service trusted through the listener tls block', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'piko-agent-tls-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const f = makeTlsFixtures(dir);
      const service = https.createServer({ cert: readFileSync(f.serverCert), key: readFileSync(f.serverKey) }, (_req, res) =>
        res.end('secure'),
      );
      service.listen(0, '127.0.0.1');
      await once(service, 'listening');
      cleanups.push(() => {
        service.closeAllConnections();
        service.close();
      });
      const base = agentConfig(srv.upstreamUrl, {
        protocol: 'http',
        endpointId: 'https',
        addr: `https://localhost:${(service.address() as net.AddressInfo).port}`,
      });
      const config = { ...base, listeners: [{ ...base.listeners[0]!, tls: { rootCas: f.caCert, insecureSkipVerify: false } }] };
      await startAgent(config, silentLogger());
      await waitForUpstreams(srv.server.upstreams, 'https', 1);
      expect(await viaProxy('https')).toMatchObject({ status: 200, body: 'secure' });
    });
  });

  describe('tcp listener', () => {
    it('carries a TCP echo end to end through dial', async () => {
      const echo = net.createServer((s) => s.pipe(s));
      echo.listen(0, '127.0.0.1');
      await once(echo, 'listening');
      cleanups.push(() => void echo.close());
      const { logger, records } = capturingLogger();
      await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'tcp', endpointId: 'echo', addr: String((echo.address() as net.AddressInfo).port) }),
        logger,
      );
      await waitForUpstreams(srv.server.upstreams, 'echo', 1);
      const conn = await dial('echo', { url: srv.proxyUrl });
      conn.write('marco');
      expect((await readBytes(conn, 5)).toString()).toBe('marco');
      const closed = once(conn, 'close');
      conn.end();
      await closed;
      expect(
        records()
          .filter((r) => r.subsystem === 'proxy.tcp.access')
          .map((r) => r.message),
      ).toContain('connection opened');
    });

    it('closes the connection when the local service is down', async () => {
      const gone = net.createServer();
      gone.listen(0, '127.0.0.1');
      await once(gone, 'listening');
      const port = (gone.address() as net.AddressInfo).port;
      gone.close();
      await once(gone, 'close');
      await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'tcp', endpointId: 'nothing', addr: `127.0.0.1:${port}` }), silentLogger());
      await waitForUpstreams(srv.server.upstreams, 'nothing', 1);
      const conn = await dial('nothing', { url: srv.proxyUrl });
      conn.on('error', () => undefined);
      conn.resume();
      await once(conn, 'close');
    });
  });

  describe('lifecycle', () => {
    it('fails to start with the endpoint and the server message when the server refuses it', async () => {
      const secured = await startTestServer({ 'upstream.auth.hmac_secret_key': 'upstream-secret-0123456789abcdef' });
      const agent = new Agent(agentConfig(secured.upstreamUrl, { protocol: 'http', endpointId: 'nope', addr: '3000' }), {
        logger: silentLogger(),
      });
      await expect(agent.start()).rejects.toMatchObject({
        code: 'ERR_AGENT_LISTEN',
        endpointId: 'nope',
        message: 'listen nope: server answered 401 Unauthorized: missing authorization',
      });
    });

    it('shuts down gracefully: GoAway first, the request in flight finishes, then new ones find no upstream', async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let arrived!: () => void;
      const arrivedP = new Promise<void>((r) => (arrived = r));
      const service = await startHttpService((_req, res) => {
        arrived();
        void released.then(() => res.end('finished'));
      });
      cleanups.push(service.close);
      const agent = await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'drain', addr: service.url }),
        silentLogger(),
      );
      await waitForUpstreams(srv.server.upstreams, 'drain', 1);
      const inFlight = viaProxy('drain');
      await arrivedP;

      let done = false;
      const stopping = agent.shutdown(10_000).then(() => (done = true));
      // The server drops the upstream as soon as the agent's GoAway lands.
      await waitForUpstreams(srv.server.upstreams, 'drain', 0);
      expect(done).toBe(false);
      expect((await viaProxy('drain')).status).toBe(502);
      release();
      expect(await inFlight).toMatchObject({ status: 200, body: 'finished' });
      await stopping;
    });
  });
});

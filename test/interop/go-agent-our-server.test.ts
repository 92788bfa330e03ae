import { once } from 'node:events';
import net from 'node:net';
import { createWebSocketStream } from 'ws';
import { dial, listen, type Listener } from '../../dataplane/client';
import {
  freeLoopbackPorts,
  goPikoBinary,
  startGoPikoAgent,
  startGoPikoForward,
  stopAllGoPiko,
  waitForTcpPort,
  type GoPikoProcess,
} from '../helpers/go-piko';
import { request, waitForUpstreams } from '../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../helpers/piko-server';
import {
  closeWebSocket,
  echoRoundTrip,
  GO_BUILD_TIMEOUT_MS,
  hashedRequest,
  nextMessage,
  openWebSocket,
  patternSha256,
  patternStream,
  startInteropService,
  startTcpEcho,
  type InteropService,
  type TcpEcho,
} from './support';

/**
 * The original Go agent (`piko agent http|tcp`) and `piko forward` against
 * our server: the Go side is the yamux client and WebSocket client here, so
 * this pins our upstream port, our yamux server and our proxy port.
 */
describe('Go agent and Go forward against our server', () => {
  let srv: TestServer;
  let service: InteropService;
  let echo: TcpEcho;
  let httpAgent: GoPikoProcess;
  const listeners: Listener[] = [];

  beforeAll(async () => {
    goPikoBinary();
    [srv, service, echo] = await Promise.all([startTestServer(), startInteropService(), startTcpEcho()]);
    httpAgent = await startGoPikoAgent(['http', 'go-http', String(service.port), '--connect.url', srv.upstreamUrl, '--log.level', 'warn']);
    await startGoPikoAgent(['tcp', 'go-tcp', `127.0.0.1:${echo.port}`, '--connect.url', srv.upstreamUrl, '--log.level', 'warn']);
    await Promise.all([waitForUpstreams(srv.server.upstreams, 'go-http', 1), waitForUpstreams(srv.server.upstreams, 'go-tcp', 1)]);
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(listeners.map((l) => l.close({ timeoutMs: 1000 })));
    await stopAllGoPiko();
    await stopAllTestServers();
    await Promise.all([service?.close(), echo?.close()]);
  });

  it('relays a GET through the Go agent with the service headers and body', async () => {
    const reply = await request(`${srv.proxyUrl}/hello?x=1`, { headers: { 'x-piko-endpoint': 'go-http' } });

    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from the service');
    expect(reply.headers['x-service']).toBe('interop');
    const seen = service.seen.filter((r) => r.url === '/hello?x=1').at(-1);
    expect(seen?.headers['x-piko-forward']).toBe('true');
    // Our hop and the Go agent's hop each append the address they saw.
    expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
  });

  it('routes by the Host header as well as x-piko-endpoint', async () => {
    const reply = await request(`${srv.proxyUrl}/hello`, { headers: { host: 'go-http.example.com:9000' } });

    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from the service');
    expect(service.seen.at(-1)?.headers.host).toBe('go-http.example.com:9000');
  });

  it('relays a POST body with Content-Length and a chunked one', async () => {
    const sized = await request(`${srv.proxyUrl}/echo`, {
      method: 'POST',
      headers: { 'x-piko-endpoint': 'go-http', 'content-type': 'application/json' },
      body: '{"hello":"go"}',
    });
    const chunked = await hashedRequest(`${srv.proxyUrl}/echo`, {
      method: 'POST',
      headers: { 'x-piko-endpoint': 'go-http', 'transfer-encoding': 'chunked' },
      body: patternStream(300 * 1024, 7),
    });

    expect(sized.status).toBe(200);
    expect(sized.body).toBe('{"hello":"go"}');
    expect(sized.headers['content-type']).toBe('application/json');
    expect(chunked.status).toBe(200);
    expect(chunked.body).toEqual({ bytes: 300 * 1024, sha256: patternSha256(300 * 1024, 7) });
  });

  it('relays the Go agent 502 when the service behind it is down', async () => {
    const [closedPort] = await freeLoopbackPorts(1);
    await startGoPikoAgent(['http', 'go-down', String(closedPort), '--connect.url', srv.upstreamUrl, '--log.level', 'error']);
    await waitForUpstreams(srv.server.upstreams, 'go-down', 1);

    const reply = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'go-down' } });

    expect(reply.status).toBe(502);
    expect(JSON.parse(reply.body)).toEqual({ error: 'upstream unreachable' });
  });

  it('carries a WebSocket through the Go agent both ways, text and binary', async () => {
    const ws = await openWebSocket(`${srv.proxyUrl.replace('http', 'ws')}/chat`, { 'x-piko-endpoint': 'go-http' });
    try {
      const text = nextMessage(ws);
      ws.send('hello over go');
      expect(await text).toEqual({ data: Buffer.from('hello over go'), isBinary: false });

      const big = Buffer.alloc(200 * 1024, 0xab);
      const binary = nextMessage(ws);
      ws.send(big);
      const got = await binary;
      expect(got.isBinary).toBe(true);
      expect(got.data.equals(big)).toBe(true);
    } finally {
      await closeWebSocket(ws);
    }
  });

  it('echoes TCP through the Go tcp agent for a raw WebSocket client on /_piko/v1/tcp', async () => {
    const ws = await openWebSocket(`${srv.proxyUrl.replace('http', 'ws')}/_piko/v1/tcp/go-tcp`, {});
    const conn = createWebSocketStream(ws);
    try {
      const payload = Buffer.from('raw tcp through the go agent');
      expect((await echoRoundTrip(conn, payload)).toString()).toBe(payload.toString());
    } finally {
      conn.destroy();
    }
  });

  it('echoes TCP through the Go tcp agent for our SDK dial, 1 MiB at once', async () => {
    const conn = await dial('go-tcp', { url: srv.proxyUrl, timeoutMs: 10_000 });
    try {
      const payload = Buffer.concat([...Array(16)].map((_, i) => Buffer.alloc(64 * 1024, i)));
      const back = await echoRoundTrip(conn, payload);
      expect(back.equals(payload)).toBe(true);
    } finally {
      conn.destroy();
    }
  });

  it('lets Go piko forward reach the Go tcp agent through our server', async () => {
    const [port] = await freeLoopbackPorts(1);
    await startGoPikoForward(['tcp', `127.0.0.1:${port}`, 'go-tcp', '--connect.url', srv.proxyUrl, '--log.level', 'warn']);
    await waitForTcpPort(port as number, 10_000);

    const sockets = await Promise.all([0, 1, 2].map(() => connectTcp(port as number)));
    try {
      const replies = await Promise.all(sockets.map((s, i) => echoRoundTrip(s, Buffer.from(`forwarded ${i} `.repeat(1000)))));
      expect(replies.map((r) => r.toString())).toEqual([0, 1, 2].map((i) => `forwarded ${i} `.repeat(1000)));
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('lets Go piko forward reach our SDK listener through our server', async () => {
    const listener = await listen('ts-tcp', { url: srv.upstreamUrl, connectTimeoutMs: 10_000 });
    listeners.push(listener);
    listener.on('connection', (conn) => conn.pipe(conn));
    await waitForUpstreams(srv.server.upstreams, 'ts-tcp', 1);
    const [port] = await freeLoopbackPorts(1);
    await startGoPikoForward(['tcp', `127.0.0.1:${port}`, 'ts-tcp', '--connect.url', srv.proxyUrl, '--log.level', 'warn']);
    await waitForTcpPort(port as number, 10_000);

    const socket = await connectTcp(port as number);
    try {
      const payload = Buffer.alloc(700 * 1024, 0x5a);
      expect((await echoRoundTrip(socket, payload)).equals(payload)).toBe(true);
    } finally {
      socket.destroy();
    }
  });

  it('answers 502 on /_piko/v1/tcp for an endpoint nobody serves, the Go agents still registered', async () => {
    expect(srv.server.upstreams.count('go-http')).toBe(1);
    expect(httpAgent.logs()).not.toMatch(/"level":"error"/);
    await expect(dial('nobody', { url: srv.proxyUrl, timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'ERR_CLIENT_HTTP_STATUS',
      status: 502,
      serverError: 'no available upstreams',
    });
  });
});

async function connectTcp(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect', { signal: AbortSignal.timeout(5000) });
  return socket;
}

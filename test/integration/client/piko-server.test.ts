import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { SignJWT } from 'jose';
import { ClientError, dial, listen, serve, type Listener } from '../../../dataplane/client';
import { joinStreams } from '../../../dataplane/net/join-streams';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { readBytes } from '../../helpers/streams';

const FAST = { minReconnectBackoffMs: 10, maxReconnectBackoffMs: 100 };

/** A TCP echo service on 127.0.0.1:0. */
async function startEcho(): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * A TCP load balancer in front of several servers: new connections go to
 * `target`, established ones stay where they are, as with a real LB.
 */
async function startBalancer(target: number): Promise<{ port: number; target: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const lb = {
    port: 0,
    target,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(lb.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  lb.port = (server.address() as net.AddressInfo).port;
  return lb;
}

describe('SDK against the real server', () => {
  const listeners: Listener[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const l of listeners.splice(0)) l.destroy();
    for (const c of cleanups.splice(0)) c();
    await stopAllTestServers();
  });

  async function listenOn(srv: TestServer, endpointId: string, options: Parameters<typeof listen>[1] = {}): Promise<Listener> {
    const listener = await listen(endpointId, { url: srv.upstreamUrl, ...FAST, ...options });
    listeners.push(listener);
    return listener;
  }

  function httpServer(handler: http.RequestListener): http.Server {
    return http.createServer(handler);
  }

  it('serves HTTP requests the proxy port routes to the endpoint', async () => {
    const srv = await startTestServer();
    const listener = await listenOn(srv, 'web');
    serve(
      listener,
      httpServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, host: req.headers.host, forward: req.headers['x-piko-forward'] }));
      }),
    );
    await waitForUpstreams(srv.server.upstreams, 'web', 1);
    const viaHeader = await request(`${srv.proxyUrl}/a/b?c=d`, { headers: { 'x-piko-endpoint': 'web' } });
    expect(viaHeader.status).toBe(200);
    expect(JSON.parse(viaHeader.body)).toEqual({ url: '/a/b?c=d', host: `127.0.0.1:${new URL(srv.proxyUrl).port}`, forward: 'true' });
    const viaHost = await request(`${srv.proxyUrl}/`, { headers: { host: 'web.piko.example.com' } });
    expect(JSON.parse(viaHost.body)).toMatchObject({ host: 'web.piko.example.com' });
  });

  it('dial: carries bytes both ways to a TCP service behind a listener, a megabyte included', async () => {
    const srv = await startTestServer();
    const echo = await startEcho();
    cleanups.push(echo.close);
    const listener = await listenOn(srv, 'echo');
    listener.on('connection', (conn) => void joinStreams(conn, net.connect(echo.port, '127.0.0.1')));
    await waitForUpstreams(srv.server.upstreams, 'echo', 1);

    const conn = await dial('echo', { url: srv.proxyUrl });
    conn.write('hello');
    expect((await readBytes(conn, 5)).toString()).toBe('hello');
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    conn.write(big);
    expect((await readBytes(conn, big.length)).equals(big)).toBe(true);
    const closed = once(conn, 'close');
    conn.end();
    await closed;
  });

  it('dial: rejects with 502 and the server message when nobody listens', async () => {
    const srv = await startTestServer();
    const err = await dial('nobody', { url: srv.proxyUrl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'ERR_CLIENT_HTTP_STATUS', status: 502, serverError: 'no available upstreams', retryable: true });
  });

  it('listen: a 401 from the server is fatal and carries its message', async () => {
    const secret = 'upstream-secret-0123456789abcdef';
    const srv = await startTestServer({ 'upstream.auth.hmac_secret_key': secret });
    await expect(listen('ep', { url: srv.upstreamUrl, ...FAST })).rejects.toMatchObject({
      status: 401,
      serverError: 'missing authorization',
    });
    const token = await new SignJWT({ piko: { endpoints: ['other'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(secret));
    await expect(listen('ep', { url: srv.upstreamUrl, token, ...FAST })).rejects.toMatchObject({
      status: 401,
      serverError: 'endpoint not permitted',
    });
    const listener = await listenOn(srv, 'other', { token });
    expect(listener.connected).toBe(true);
  });

  it('comes back by itself after the server restarts on the same port', async () => {
    const first = await startTestServer();
    const listener = await listenOn(first, 'ep');
    serve(
      listener,
      httpServer((_req, res) => res.end('ok')),
    );
    const upstreamPort = new URL(first.upstreamUrl).port;
    const retried = new Promise<void>((resolve) =>
      listener.on('reconnecting', (info) => {
        if (info.reason === 'retry') resolve();
      }),
    );
    await first.stop(100);
    await retried;
    const second = await startTestServer({ 'upstream.bind_addr': `127.0.0.1:${upstreamPort}` });
    await waitForUpstreams(second.server.upstreams, 'ep', 1);
    const reply = await request(`${second.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'ep' } });
    expect(reply).toMatchObject({ status: 200, body: 'ok' });
  });

  it('moves to another node at once when its server shuts down, finishing requests on the old one', async () => {
    const a = await startTestServer();
    const b = await startTestServer();
    const lb = await startBalancer(Number(new URL(a.upstreamUrl).port));
    cleanups.push(lb.close);

    const listener = await listenOn(a, 'ep', { url: `http://127.0.0.1:${lb.port}` });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const arrived = new Promise<void>((resolve) =>
      serve(
        listener,
        httpServer((req, res) => {
          if (req.url === '/slow') {
            resolve();
            void released.then(() => res.end('slow done'));
          } else {
            res.end('fast');
          }
        }),
      ),
    );
    await waitForUpstreams(a.server.upstreams, 'ep', 1);
    const slow = request(`${a.proxyUrl}/slow`, { headers: { 'x-piko-endpoint': 'ep' } });
    await arrived;

    // The load balancer now sends new connections to b; a shuts down.
    lb.target = Number(new URL(b.upstreamUrl).port);
    const stopping = a.stop(10_000);
    await waitForUpstreams(b.server.upstreams, 'ep', 1);
    // The old node has not finished yet, and the endpoint is already served by the new one.
    expect(await request(`${b.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'ep' } })).toMatchObject({ status: 200, body: 'fast' });
    release();
    expect(await slow).toMatchObject({ status: 200, body: 'slow done' });
    await stopping;
    expect(listener.connected).toBe(true);
    expect(await request(`${b.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'ep' } })).toMatchObject({ status: 200, body: 'fast' });
  });
});

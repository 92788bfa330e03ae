import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, listen, serve, type Listener, type ReconnectInfo } from '../../../dataplane/client';
import type { Session } from '../../../dataplane/tunnel/session';
import { makeTlsFixtures } from '../../helpers/tls-fixtures';
import { FakeUpstreamServer, requestOverStream } from './fake-upstream-server';

// Fast backoff so reconnect tests take milliseconds, not seconds.
const FAST = { minReconnectBackoffMs: 10, maxReconnectBackoffMs: 100 };

describe('listen (against a fake upstream port)', () => {
  let fake: FakeUpstreamServer;
  const listeners: Listener[] = [];
  const servers: net.Server[] = [];

  beforeEach(async () => {
    fake = await FakeUpstreamServer.start();
  });

  afterEach(async () => {
    for (const l of listeners.splice(0)) l.destroy();
    for (const s of servers.splice(0)) if (s.listening) s.close();
    await fake.stop();
  });

  async function listenOn(
    endpointId: string,
    options: Parameters<typeof listen>[1] = {},
  ): Promise<{ listener: Listener; session: Session }> {
    const sessionP = fake.nextSession();
    const listener = await listen(endpointId, { url: fake.url, ...FAST, ...options });
    listeners.push(listener);
    return { listener, session: await sessionP };
  }

  function httpServer(handler: http.RequestListener): http.Server {
    const server = http.createServer(handler);
    servers.push(server);
    return server;
  }

  it('connects to /piko/v1/upstream/<id> with the token and tenant, no Origin and no compression', async () => {
    await listenOn('my-endpoint', { token: 'tok', tenantId: 'tenant-a' });
    const req = fake.upgrades[0]!;
    expect(req.url).toBe('/piko/v1/upstream/my-endpoint');
    expect(req.headers.authorization).toBe('Bearer tok');
    expect(req.headers['x-piko-tenant-id']).toBe('tenant-a');
    expect(req.headers.origin).toBeUndefined();
    expect(req.headers['sec-websocket-extensions']).toBeUndefined();
    expect(req.headers['sec-websocket-protocol']).toBeUndefined();
  });

  it('keeps a path prefix of the base url and drops its trailing slash', async () => {
    const sessionP = fake.nextSession();
    // The fake answers every path; the prefix only shows in the request line.
    listeners.push(await listen('ep', { url: `${fake.url}/prefix/`, ...FAST }));
    await sessionP;
    expect(fake.upgrades[0]!.url).toBe('/prefix/piko/v1/upstream/ep');
  });

  it('hands connections to an http.Server with serve(), the Piko server as remote address', async () => {
    const { listener, session } = await listenOn('web');
    const server = httpServer((req, res) => res.end(`hello ${req.url} from ${req.socket.remoteAddress}`));
    serve(listener, server);
    const reply = await fake.request(session, '/path?q=1');
    expect(reply).toMatchObject({ status: 200, body: 'hello /path?q=1 from 127.0.0.1' });
  });

  it('yields connections to for await, and ends the loop on close', async () => {
    const { listener, session } = await listenOn('iter');
    const loop = (async () => {
      let n = 0;
      for await (const conn of listener) {
        n++;
        conn.pipe(conn);
      }
      return n;
    })();
    for (const word of ['one', 'two']) {
      const stream = await session.open();
      stream.end(word);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe(word);
    }
    await listener.close();
    await expect(loop).resolves.toBe(2);
  });

  it('keeps connections that arrive before a handler is attached', async () => {
    const { listener, session } = await listenOn('late');
    const stream = await session.open();
    stream.end('early');
    // The stream is acknowledged and waits in the backlog until someone takes it.
    await session.ping();
    listener.on('connection', (conn) => conn.pipe(conn));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('early');
  });

  it('rejects at once on 401 with the server message, without retrying', async () => {
    fake.requireToken = 'right';
    const err = await listen('ep', { url: fake.url, token: 'wrong', ...FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'ERR_CLIENT_HTTP_STATUS', status: 401, serverError: 'invalid token', retryable: false });
    expect((err as Error).message).toBe('server answered 401 Unauthorized: invalid token');
    expect(fake.upgrades).toHaveLength(1);
  });

  it('reads a plain-text error body when the answer is not JSON', async () => {
    fake.rejections.push({ status: 404, error: '404 page not found', contentType: 'text/plain' });
    await expect(listen('ep', { url: fake.url, ...FAST })).rejects.toMatchObject({ status: 404, serverError: '404 page not found' });
  });

  it('retries 503, 502, 429 and 408 answers, then connects', async () => {
    fake.rejections.push({ status: 503, error: 'shutting down' }, { status: 502 }, { status: 429 }, { status: 408 });
    await listenOn('ep');
    expect(fake.upgrades).toHaveLength(5);
  });

  it('gives up after connectTimeoutMs with the last failure as the cause', async () => {
    for (let i = 0; i < 1000; i++) fake.rejections.push({ status: 503, error: 'busy' });
    const err = await listen('ep', { url: fake.url, ...FAST, connectTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CLIENT_TIMEOUT' });
    expect((err as Error).cause).toMatchObject({ status: 503, serverError: 'busy' });
  });

  it('stops connecting when the signal aborts', async () => {
    for (let i = 0; i < 1000; i++) fake.rejections.push({ status: 503 });
    const controller = new AbortController();
    const pending = listen('ep', { url: fake.url, ...FAST, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CLIENT_ABORTED' });
  });

  it('closes gracefully when the signal aborts after it is listening', async () => {
    const controller = new AbortController();
    const { listener, session } = await listenOn('ep', { signal: controller.signal });
    const goaway = once(session, 'goaway');
    const closed = once(listener, 'close');
    controller.abort();
    await Promise.all([goaway, closed]);
    expect(listener.connected).toBe(false);
  });

  it('rejects a url it cannot use', async () => {
    await expect(listen('ep', { url: 'ftp://example.com' })).rejects.toMatchObject({ code: 'ERR_CLIENT_INVALID_ARGUMENT' });
    await expect(listen('', { url: fake.url })).rejects.toMatchObject({ code: 'ERR_CLIENT_INVALID_ARGUMENT' });
  });

  it('reconnects by itself when the server closes the session cleanly', async () => {
    const { listener, session } = await listenOn('ep');
    serve(
      listener,
      httpServer((_req, res) => res.end('still here')),
    );
    const reconnecting = once(listener, 'reconnecting') as Promise<[ReconnectInfo]>;
    const next = fake.nextSession();
    const connected = once(listener, 'connected');
    session.close();
    const [info] = await reconnecting;
    expect(info.reason).toBe('disconnected');
    const second = await next;
    await connected;
    expect(listener.connected).toBe(true);
    expect(await fake.request(second, '/')).toMatchObject({ status: 200, body: 'still here' });
  });

  it('retries a refused connection at least every second, however long the backoff has grown', async () => {
    const { listener } = await listenOn('ep', { minReconnectBackoffMs: 400, maxReconnectBackoffMs: 60_000 });
    const delays: number[] = [];
    const enough = new Promise<void>((resolve) =>
      listener.on('reconnecting', (info) => {
        if (info.reason !== 'retry') return;
        delays.push(info.delayMs);
        if (delays.length === 4) resolve();
      }),
    );
    // Nothing listens on the port any more: every attempt is refused by the kernel.
    await fake.stop();
    await enough;
    // Doubling from 400 ms would be 800, 1600, 3200, 6400 (+10 % jitter); refusals stay at 1 s at most.
    expect(delays).toEqual(delays.map((d) => Math.min(d, 1_000)));
    expect(Math.max(...delays)).toBeGreaterThanOrEqual(800);
  }, 20_000);

  it('comes back by itself after the server restarts on the same port', async () => {
    const { listener } = await listenOn('ep');
    serve(
      listener,
      httpServer((_req, res) => res.end('back')),
    );
    // Wait for an attempt that failed against the stopped server, so the
    // restart is really found by retrying.
    const retried = new Promise<void>((resolve) =>
      listener.on('reconnecting', (info) => {
        if (info.reason === 'retry') resolve();
      }),
    );
    await fake.stop();
    await retried;
    expect(listener.connected).toBe(false);
    const next = fake.nextSession();
    await fake.restart();
    const session = await next;
    expect(await fake.request(session, '/')).toMatchObject({ status: 200, body: 'back' });
  });

  it('on GoAway connects a second session at once and finishes the first one', async () => {
    const { listener, session: first } = await listenOn('ep');
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
    const slow = fake.request(first, '/slow');
    await arrived;

    const reconnecting = once(listener, 'reconnecting') as Promise<[ReconnectInfo]>;
    const next = fake.nextSession();
    first.goAway();
    const [info] = await reconnecting;
    expect(info).toMatchObject({ reason: 'goaway', delayMs: 0 });
    const second = await next;
    // Both sessions are up: the old one still carries the slow request.
    expect(first.closed).toBe(false);
    expect(await fake.request(second, '/')).toMatchObject({ status: 200, body: 'fast' });
    release();
    expect(await slow).toMatchObject({ status: 200, body: 'slow done' });
    // The server closing the old session is no reason to reconnect again.
    first.close();
    await second.ping();
    expect(fake.upgrades).toHaveLength(2);
    expect(listener.connected).toBe(true);
  });

  it('close() sends GoAway, stops reconnecting and waits for the slow in-flight request', async () => {
    const { listener, session } = await listenOn('ep');
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const arrived = new Promise<void>((resolve) =>
      serve(
        listener,
        httpServer((_req, res) => {
          resolve();
          void released.then(() => res.end('finished'));
        }),
      ),
    );
    const inFlight = fake.request(session, '/');
    await arrived;

    const goaway = once(session, 'goaway');
    let closed = false;
    const closing = listener.close().then(() => (closed = true));
    await goaway;
    // A round trip after the GoAway: the listener had every chance to finish early.
    await session.ping();
    expect(closed).toBe(false);
    // New streams are refused once the listener said GoAway.
    await expect(session.open()).rejects.toMatchObject({ code: 'ERR_YAMUX_GOAWAY' });

    release();
    expect(await inFlight).toMatchObject({ status: 200, body: 'finished' });
    await closing;
    if (!session.closed) await once(session, 'close');
    expect(fake.upgrades).toHaveLength(1);
  });

  it('close({ timeoutMs }) cuts connections that do not finish in time', async () => {
    const { listener, session } = await listenOn('ep');
    const arrived = new Promise<void>((resolve) =>
      serve(
        listener,
        httpServer(() => resolve()),
      ),
    );
    const inFlight = fake.request(session, '/').catch((e: unknown) => e);
    await arrived;
    const closeEvent = once(listener, 'close');
    await listener.close({ timeoutMs: 50 });
    await closeEvent;
    expect(await inFlight).toBeInstanceOf(Error);
  });

  it('destroy() cuts everything at once and does not reconnect', async () => {
    const { listener, session } = await listenOn('ep');
    const events: string[] = [];
    listener.on('reconnecting', () => events.push('reconnecting'));
    listener.on('close', () => events.push('close'));
    const sessionClosed = once(session, 'close');
    // The local session closes synchronously: a reconnect would be decided right here.
    listener.destroy();
    expect(events).toEqual(['close']);
    expect(listener.connected).toBe(false);
    await sessionClosed;
    expect(fake.upgrades).toHaveLength(1);
  });

  it('closes with an error event when a reconnect is refused for good', async () => {
    const { listener, session } = await listenOn('ep', { token: 'old' });
    fake.requireToken = 'new';
    const error = once(listener, 'error');
    // Not events.once: it would reject on the 'error' event that comes first.
    const closed = new Promise<ClientError | undefined>((resolve) => listener.once('close', resolve));
    session.close();
    const [err] = (await error) as [ClientError];
    expect(err).toMatchObject({ code: 'ERR_CLIENT_HTTP_STATUS', status: 401, serverError: 'invalid token' });
    expect(await closed).toBe(err);
  });

  it('the async iterator throws the error that closed the listener', async () => {
    const { listener, session } = await listenOn('ep');
    fake.rejections.push({ status: 403, error: 'forbidden' });
    const loop = (async () => {
      for await (const conn of listener) conn.destroy();
    })();
    session.close();
    await expect(loop).rejects.toMatchObject({ status: 403 });
  });

  it('connects through an HTTP CONNECT proxy, with its credentials', async () => {
    const seen: { target: string; auth: string | undefined }[] = [];
    const proxy = http.createServer();
    servers.push(proxy);
    const tunnels = new Set<net.Socket>();
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      seen.push({ target: req.url ?? '', auth: req.headers['proxy-authorization'] });
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      tunnels.add(upstream).add(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const proxyPort = (proxy.address() as net.AddressInfo).port;
    try {
      const { listener, session } = await listenOn('ep', { proxyUrl: `http://user:p%40ss@127.0.0.1:${proxyPort}` });
      serve(
        listener,
        httpServer((_req, res) => res.end('via proxy')),
      );
      expect(await fake.request(session, '/')).toMatchObject({ status: 200, body: 'via proxy' });
      expect(seen).toEqual([{ target: `127.0.0.1:${fake.port}`, auth: `Basic ${Buffer.from('user:p@ss').toString('base64')}` }]);
    } finally {
      for (const s of tunnels) s.destroy();
    }
  });

  describe('over TLS', () => {
    let dir: string;
    let tlsFake: FakeUpstreamServer;
    let ca: Buffer;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'piko-client-tls-'));
      const f = makeTlsFixtures(dir);
      ca = readFileSync(f.caCert);
      tlsFake = await FakeUpstreamServer.start({ tls: { cert: readFileSync(f.serverCert), key: readFileSync(f.serverKey) } });
    });

    afterAll(async () => {
      await tlsFake.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('connects to an https url as wss with a custom CA', async () => {
      const next = tlsFake.nextSession();
      const listener = await listen('secure', { url: tlsFake.url, tls: { ca }, ...FAST });
      listeners.push(listener);
      const session = await next;
      serve(
        listener,
        httpServer((_req, res) => res.end('tls ok')),
      );
      expect(await requestOverStream(await session.open(), '/')).toMatchObject({ status: 200, body: 'tls ok' });
    });

    it('keeps retrying while the certificate is not trusted, then times out', async () => {
      const err = await listen('secure', { url: tlsFake.url, ...FAST, connectTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_CLIENT_TIMEOUT' });
      expect((err as Error).cause).toMatchObject({ code: 'ERR_CLIENT_CONNECT' });
    });
  });
});

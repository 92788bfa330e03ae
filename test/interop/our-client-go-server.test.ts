import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { dial, listen, serve, type Listener } from '../../dataplane/client';
import {
  freeLoopbackPorts,
  goPikoBinary,
  goPikoServerPorts,
  startGoPikoAgent,
  startGoPikoForward,
  startGoPikoServer,
  stopAllGoPiko,
  waitForGoPikoEndpoint,
  waitForTcpPort,
  type GoPikoServer,
} from '../helpers/go-piko';
import { request } from '../helpers/http-client';
import {
  closeWebSocket,
  echoRoundTrip,
  GO_BUILD_TIMEOUT_MS,
  hashedRequest,
  hashStream,
  MIB,
  nextMessage,
  openWebSocket,
  patternChunks,
  patternSha256,
  patternStream,
  startTcpEcho,
  type TcpEcho,
} from './support';

const FAST = { minReconnectBackoffMs: 50, maxReconnectBackoffMs: 500, connectTimeoutMs: 10_000 };

/**
 * Our SDK (`listen`, `dial`) against the original Go server: here the Go
 * side is the yamux server that opens the streams and the WebSocket server,
 * and its `http.Transport` writes the requests our listener parses.
 */
describe('our SDK against the Go server', () => {
  let go: GoPikoServer;
  let echo: TcpEcho;
  const listeners: Listener[] = [];
  const apps: http.Server[] = [];

  beforeAll(async () => {
    goPikoBinary();
    [go, echo] = await Promise.all([startGoPikoServer(), startTcpEcho()]);
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const l of listeners) l.destroy();
    for (const app of apps) app.closeAllConnections();
    await stopAllGoPiko();
    await echo?.close();
  });

  /** An http.Server (not listening on any port) fed by an SDK listener. */
  async function listenHttp(
    endpointId: string,
    handler: http.RequestListener,
    server: GoPikoServer = go,
  ): Promise<{ listener: Listener; app: http.Server }> {
    const app = http.createServer(handler);
    apps.push(app);
    const listener = await listen(endpointId, { url: server.upstreamUrl, ...FAST });
    listeners.push(listener);
    serve(listener, app);
    await waitForGoPikoEndpoint(server.adminUrl, endpointId, { timeoutMs: 10_000 });
    return { listener, app };
  }

  it('serves GET and POST routed by the Go server to our listener', async () => {
    await listenHttp('sdk-http', (req, res) => {
      if (req.method === 'POST') {
        void hashStream(req).then((got) => res.end(JSON.stringify({ url: req.url, ...got })));
        return;
      }
      res.setHeader('x-from', 'sdk');
      res.end(JSON.stringify({ url: req.url, forward: req.headers['x-piko-forward'], host: req.headers.host }));
    });

    const get = await request(`${go.proxyUrl}/a/b?c=d`, { headers: { 'x-piko-endpoint': 'sdk-http' } });
    const post = await request(`${go.proxyUrl}/upload`, {
      method: 'POST',
      headers: { 'x-piko-endpoint': 'sdk-http' },
      body: Buffer.concat([...patternChunks(3 * MIB, 31)]),
    });

    expect(get.status).toBe(200);
    expect(get.headers['x-from']).toBe('sdk');
    expect(JSON.parse(get.body)).toEqual({ url: '/a/b?c=d', forward: 'true', host: new URL(go.proxyUrl).host });
    expect(post.status).toBe(200);
    expect(JSON.parse(post.body)).toEqual({ url: '/upload', bytes: 3 * MIB, sha256: patternSha256(3 * MIB, 31) });
  });

  it('moves 16 MiB each way and 100 concurrent streams through the Go server to our listener', async () => {
    await listenHttp('sdk-bulk', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      void hashStream(req).then((got) => {
        const size = Number(url.searchParams.get('reply') ?? 0);
        res.writeHead(200, { 'content-length': String(size), 'x-request-sha256': got.sha256, 'x-request-bytes': String(got.bytes) });
        patternStream(size, Number(url.searchParams.get('seed') ?? 0)).pipe(res);
      });
    });
    const headers = { 'x-piko-endpoint': 'sdk-bulk' };

    const up = await hashedRequest(`${go.proxyUrl}/?reply=0`, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(16 * MIB) },
      body: patternStream(16 * MIB, 41),
    });
    const down = await hashedRequest(`${go.proxyUrl}/?reply=${16 * MIB}&seed=42`, { headers });
    const many = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        hashedRequest(`${go.proxyUrl}/?reply=${300 * 1024}&seed=${500 + i}`, {
          method: 'POST',
          headers: { ...headers, 'content-length': String(300 * 1024) },
          body: patternStream(300 * 1024, 600 + i),
        }),
      ),
    );

    expect(up.headers['x-request-sha256']).toBe(patternSha256(16 * MIB, 41));
    expect(down.body).toEqual({ bytes: 16 * MIB, sha256: patternSha256(16 * MIB, 42) });
    const bad = many.filter(
      (r, i) =>
        r.status !== 200 ||
        r.headers['x-request-sha256'] !== patternSha256(300 * 1024, 600 + i) ||
        r.body.sha256 !== patternSha256(300 * 1024, 500 + i),
    );
    expect(bad).toEqual([]);
  }, 60_000);

  it('carries a WebSocket upgraded by the Go server through our listener', async () => {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const { app } = await listenHttp('sdk-ws', (_req, res) => res.end('not a websocket'));
    app.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
      wss.handleUpgrade(req, socket, head, (ws) =>
        ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })),
      ),
    );

    const ws = await openWebSocket(`${go.proxyUrl.replace('http', 'ws')}/socket`, { 'x-piko-endpoint': 'sdk-ws' });
    try {
      const reply = nextMessage(ws);
      ws.send('through go to ts');
      expect(await reply).toEqual({ data: Buffer.from('through go to ts'), isBinary: false });
    } finally {
      await closeWebSocket(ws);
      wss.close();
    }
  });

  it('dials through the Go server to a Go tcp agent and to our tcp listener', async () => {
    await startGoPikoAgent(['tcp', 'go-echo', `127.0.0.1:${echo.port}`, '--connect.url', go.upstreamUrl, '--log.level', 'warn']);
    const listener = await listen('sdk-echo', { url: go.upstreamUrl, ...FAST });
    listeners.push(listener);
    listener.on('connection', (conn) => conn.pipe(conn));
    await Promise.all([waitForGoPikoEndpoint(go.adminUrl, 'go-echo'), waitForGoPikoEndpoint(go.adminUrl, 'sdk-echo')]);

    const toGo = await dial('go-echo', { url: go.proxyUrl, timeoutMs: 10_000 });
    const toSdk = await dial('sdk-echo', { url: go.proxyUrl, timeoutMs: 10_000 });
    try {
      const payload = Buffer.alloc(512 * 1024, 0x42);
      expect((await echoRoundTrip(toGo, payload)).equals(payload)).toBe(true);
      expect((await echoRoundTrip(toSdk, payload)).equals(payload)).toBe(true);
    } finally {
      toGo.destroy();
      toSdk.destroy();
    }
    await expect(dial('nobody', { url: go.proxyUrl, timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'ERR_CLIENT_HTTP_STATUS',
      status: 502,
      serverError: 'no available upstreams',
    });
  });

  it('lets Go piko forward reach our listener through the Go server', async () => {
    const [port] = (await freeLoopbackPorts(1)) as [number];
    await startGoPikoForward(['tcp', `127.0.0.1:${port}`, 'sdk-echo', '--connect.url', go.proxyUrl, '--log.level', 'warn']);
    await waitForTcpPort(port, 10_000);
    const socket = net.connect({ port, host: '127.0.0.1' });
    await once(socket, 'connect', { signal: AbortSignal.timeout(5000) });
    try {
      expect((await echoRoundTrip(socket, Buffer.from('forward to sdk'))).toString()).toBe('forward to sdk');
    } finally {
      socket.destroy();
    }
  });
});

describe('our SDK listener across Go server restarts on the same ports', () => {
  afterAll(() => stopAllGoPiko());

  async function restartOnSamePorts(old: GoPikoServer, how: 'stop' | 'kill'): Promise<GoPikoServer> {
    await (how === 'stop' ? old.stop() : old.kill());
    return startGoPikoServer({ ports: goPikoServerPorts(old) });
  }

  it.each(['stop', 'kill'] as const)(
    'reconnects by itself after the Go server is stopped (%s) and started again',
    async (how) => {
      goPikoBinary();
      let go = await startGoPikoServer();
      const endpointId = `restart-${how}`;
      const app = http.createServer((req, res) => res.end(`served ${req.url}`));
      const listener = await listen(endpointId, { url: go.upstreamUrl, ...FAST });
      try {
        serve(listener, app);
        await waitForGoPikoEndpoint(go.adminUrl, endpointId);
        expect((await request(`${go.proxyUrl}/before`, { headers: { 'x-piko-endpoint': endpointId } })).body).toBe('served /before');

        const reconnecting = once(listener, 'reconnecting');
        go = await restartOnSamePorts(go, how);
        await reconnecting;
        // Go's registry says so only once the session is up on the new process.
        await waitForGoPikoEndpoint(go.adminUrl, endpointId, { timeoutMs: 15_000 });
        const after = await request(`${go.proxyUrl}/after`, { headers: { 'x-piko-endpoint': endpointId } });

        expect(after.status).toBe(200);
        expect(after.body).toBe('served /after');
        expect(listener.connected).toBe(true);
      } finally {
        listener.destroy();
        app.closeAllConnections();
        await go.stop();
      }
    },
    30_000,
  );
});

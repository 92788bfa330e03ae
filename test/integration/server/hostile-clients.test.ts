import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawStreamUpstream, type RawUpstream } from '../../helpers/raw-upstream';

/** Everything the server sends on one raw connection until it closes it (10 s bound). */
async function rawExchange(url: string, write: (socket: net.Socket) => void): Promise<string> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  socket.setTimeout(10_000, () => socket.destroy(new Error('no close within 10 s')));
  await once(socket, 'connect');
  let answer = '';
  socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('close', () => resolve());
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve() : reject(err)));
  });
  write(socket);
  await closed;
  return answer;
}

const upgradeHead = (endpointPath: string, extra: string, method = 'GET'): string =>
  `${method} ${endpointPath} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n`;

describe('hostile or broken clients', () => {
  let srv: TestServer;
  const upstreams: RawUpstream[] = [];

  afterEach(async () => {
    await Promise.all(upstreams.splice(0).map((u) => u.close()));
    await stopAllTestServers();
  });

  it('refuses malformed TCP handshakes before opening a tunnel stream, so real dials keep working', async () => {
    srv = await startTestServer();
    let opened = 0;
    upstreams.push(
      await connectRawStreamUpstream(srv.upstreamUrl, 'db', (s) => {
        opened++;
        s.on('error', () => s.destroy());
        s.pipe(s);
      }),
    );
    await waitForUpstreams(srv.server.upstreams, 'db', 1);

    const bad = [
      {
        head: upgradeHead('/_piko/v1/tcp/db', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n', 'POST'),
        status: 405,
      },
      { head: upgradeHead('/_piko/v1/tcp/db', 'Sec-WebSocket-Version: 13\r\n'), status: 400 },
      { head: upgradeHead('/_piko/v1/tcp/db', 'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'), status: 400 },
      { head: upgradeHead('/_piko/v1/tcp/db', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n'), status: 400 },
    ];
    // Well past what a leak would need to matter, in batches to stay within the test's sockets.
    for (let round = 0; round < 50; round++) {
      const answers = await Promise.all(bad.map((b) => rawExchange(srv.proxyUrl, (s) => s.write(b.head))));
      answers.forEach((answer, i) => expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${bad[i]?.status} `)));
    }
    expect(opened).toBe(0);

    const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/_piko/v1/tcp/db`);
    await once(ws, 'open');
    ws.send(Buffer.from('ping'));
    const [echo] = (await once(ws, 'message')) as [Buffer];
    expect(echo.toString()).toBe('ping');
    expect(opened).toBe(1);
    ws.close();
  });

  it('resets the tunnel stream of an upgrade the upstream never answers, as it answers 504', async () => {
    srv = await startTestServer({ 'proxy.timeout': 500 });
    const streamClosed = new Promise<void>((resolve) => {
      const app = http.createServer();
      // An upstream that reads the upgrade request and never answers it.
      app.on('upgrade', () => undefined);
      void connectRawStreamUpstream(srv.upstreamUrl, 'stuck', (s: Duplex) => {
        s.once('close', () => resolve());
        app.emit('connection', s);
      }).then((u) => upstreams.push(u));
    });
    await waitForUpstreams(srv.server.upstreams, 'stuck', 1);
    const answer = await rawExchange(srv.proxyUrl, (s) =>
      s.write(
        upgradeHead('/chat', 'x-piko-endpoint: stuck\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'),
      ),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 504 /);
    await streamClosed;
    expect(upstreams[0]?.session.streamCount).toBe(0);
  });

  it('cuts a streaming response when the read timeout passes mid-upload, without writing a 408 into it', async () => {
    srv = await startTestServer({ 'proxy.http.read_timeout': 1000, 'proxy.http.read_header_timeout': 1000 });
    // An upstream that answers at once and echoes the upload as it arrives.
    const app = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('start\n');
      req.on('data', (c: Buffer) => res.write(c));
      req.on('end', () => res.end('end\n'));
    });
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'echo', (s) => app.emit('connection', s)));
    await waitForUpstreams(srv.server.upstreams, 'echo', 1);

    let ticker: NodeJS.Timeout | undefined;
    const started = performance.now();
    const answer = await rawExchange(srv.proxyUrl, (s) => {
      s.write('POST /up HTTP/1.1\r\nHost: echo.example.com\r\nTransfer-Encoding: chunked\r\n\r\n');
      // An upload slower than the read timeout allows; it would take 6 s.
      let n = 0;
      ticker = setInterval(() => {
        if (s.destroyed || n++ > 30) return;
        s.write('6\r\nchunk\n\r\n');
      }, 200);
    });
    clearInterval(ticker);
    const elapsed = performance.now() - started;
    expect(answer.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(answer.match(/HTTP\/1\.1/g)).toHaveLength(1);
    expect(answer).not.toContain('408');
    expect(answer).toContain('start\n');
    // Chunked and without its last chunk: visibly cut, not complete.
    expect(answer.endsWith('0\r\n\r\n')).toBe(false);
    // Node sweeps for expired requests every 30 s unless told otherwise; the
    // cut must come at the configured second, not at the next sweep.
    expect(elapsed).toBeLessThan(5_000);
  });

  it('answers 408 with connection: close when the read timeout passes before any response', async () => {
    srv = await startTestServer({ 'proxy.http.read_timeout': 1000 });
    let upstreamSaw = 0;
    const app = http.createServer((req) => {
      upstreamSaw++;
      req.resume();
    });
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'slow', (s) => app.emit('connection', s)));
    await waitForUpstreams(srv.server.upstreams, 'slow', 1);
    const answer = await rawExchange(srv.proxyUrl, (s) =>
      s.write('POST /up HTTP/1.1\r\nHost: slow.example.com\r\nContent-Length: 100\r\n\r\nonly ten b'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(answer).toContain('{"error":"request timeout"}');
    expect(upstreamSaw).toBe(1);
  });

  it('relays the status of a response whose upstream fails before its first body byte', async () => {
    srv = await startTestServer();
    upstreams.push(
      await connectRawStreamUpstream(srv.upstreamUrl, 'dies', (s) => {
        s.once('data', () => {
          s.write('HTTP/1.1 201 Created\r\nContent-Length: 100\r\nx-from: upstream\r\n\r\n');
          // Let the head cross the tunnel before the stream dies.
          setImmediate(() => s.destroy());
        });
      }),
    );
    await waitForUpstreams(srv.server.upstreams, 'dies', 1);
    const answer = await rawExchange(srv.proxyUrl, (s) => s.write('GET / HTTP/1.1\r\nHost: dies.example.com\r\n\r\n'));
    expect(answer).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(answer).toContain('x-from: upstream');
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    expect(body.length).toBeLessThan(100);
    expect(body).not.toContain('error');
  });

  it('answers 504 when proxy.http.write_timeout passes before the upstream answers', async () => {
    srv = await startTestServer({ 'proxy.timeout': 0, 'proxy.http.write_timeout': 500 });
    const app = http.createServer(() => undefined);
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'mute', (s) => app.emit('connection', s)));
    await waitForUpstreams(srv.server.upstreams, 'mute', 1);
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'mute' } });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toEqual({ error: 'upstream timeout' });
  });

  it('answers oversized or malformed requests on the upstream and admin ports with a status, not a bare close', async () => {
    srv = await startTestServer();
    for (const url of [srv.upstreamUrl, srv.adminUrl]) {
      const big = await rawExchange(url, (s) => s.write(`GET / HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(100 * 1024)}\r\n\r\n`));
      expect(big).toMatch(/^HTTP\/1\.1 431 /);
      const garbage = await rawExchange(url, (s) => s.write('NOT HTTP AT ALL\r\n\r\n'));
      expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    }
  });

  it('starts with a read timeout shorter than the default header timeout, and with durations past 24.8 days', async () => {
    srv = await startTestServer({ 'proxy.http.read_timeout': 5000, 'proxy.timeout': 720 * 3600 * 1000 });
    const app = http.createServer((_req, res) => res.end('ok'));
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'fine', (s) => app.emit('connection', s)));
    await waitForUpstreams(srv.server.upstreams, 'fine', 1);
    // A 720 h timeout overflowing Node's timers would fire at once: 504.
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'fine' } });
    expect(res).toMatchObject({ status: 200, body: 'ok' });
  });
});

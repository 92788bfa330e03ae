import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startServerProcess, stopAllPikoProcesses, type PikoProcess, type ServerProcess } from '../../helpers/piko-process';
import { connectRawStreamUpstream, type RawUpstream } from '../../helpers/raw-upstream';

const MiB = 1024 * 1024;

// Byte i of a body is i mod 256, so both ends can check content without holding it.
const BLOCK = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i & 0xff));

function patterned(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(BLOCK.length, total - sent);
      sent += n;
      this.push(n === BLOCK.length ? Buffer.from(BLOCK) : BLOCK.subarray(0, n));
    },
  });
}

/**
 * Peak growth of the server process's resident memory while `work` runs,
 * sampled every 20 ms. A proxy that held a body would grow by its size.
 */
async function peakRssGrowth(proc: PikoProcess, work: () => Promise<void>): Promise<number> {
  const base = proc.rss();
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, proc.rss() - base);
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return peak;
}

/** The service behind the tunnel: upload hashing, patterned downloads, SSE, WebSocket echo. */
function streamingApp(): http.Server {
  const wss = new WebSocketServer({ noServer: true });
  const app = http.createServer((req, res) => {
    if (req.url === '/upload') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
    } else if (req.url === '/download') {
      res.writeHead(200, { 'content-length': 200 * MiB });
      patterned(200 * MiB).pipe(res);
    } else if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      // The second event waits for the client to prove it got the first.
      app.once('ack', () => res.end('data: second\n\n'));
    } else if (req.url === '/ack') {
      app.emit('ack');
      res.end('ok');
    } else {
      res.end('hello');
    }
  });
  app.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  });
  return app;
}

describe('200 MiB bodies through a server process', () => {
  let srv: ServerProcess;
  let upstream: RawUpstream;

  beforeAll(async () => {
    srv = await startServerProcess(['--proxy.timeout', '60s', '--proxy.access-log.disable']);
    const app = streamingApp();
    upstream = await connectRawStreamUpstream(srv.upstreamUrl, 'stream', (s) => app.emit('connection', s));
    await srv.waitForLog((r) => r.message === 'upstream connected' && r.endpointId === 'stream');
    // Warm the server's code paths before taking the baseline.
    for (let i = 0; i < 20; i++) await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'stream' } });
  });

  afterAll(async () => {
    await upstream.close();
    await srv.stop();
    await stopAllPikoProcesses();
  });

  it('streams a 200 MiB upload without the server holding it', async () => {
    let reply = '';
    const peak = await peakRssGrowth(srv, async () => {
      const req = http.request(`${srv.proxyUrl}/upload`, { method: 'POST', agent: false, headers: { 'x-piko-endpoint': 'stream' } });
      patterned(200 * MiB).pipe(req);
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      for await (const c of res) reply += String(c);
    });
    const expected = createHash('sha256');
    for await (const c of patterned(200 * MiB)) expected.update(c as Buffer);
    expect(JSON.parse(reply)).toEqual({ bytes: 200 * MiB, sha256: expected.digest('hex') });
    expect(peak).toBeLessThan(100 * MiB);
  });

  it('streams a 200 MiB download to a client that reads slowly, without the server holding it', async () => {
    let bytes = 0;
    let ok = true;
    const peak = await peakRssGrowth(srv, async () => {
      const req = http.request(`${srv.proxyUrl}/download`, { agent: false, headers: { 'x-piko-endpoint': 'stream' } });
      req.end();
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      for await (const c of res) {
        const buf = c as Buffer;
        if (buf[0] !== (bytes & 0xff)) ok = false;
        bytes += buf.length;
        // A slow reader: a pause every 8 MiB lets the server's buffers fill if it has no backpressure.
        if (bytes % (8 * MiB) < buf.length) await new Promise((r) => setTimeout(r, 20));
      }
    });
    expect(ok).toBe(true);
    expect(bytes).toBe(200 * MiB);
    expect(peak).toBeLessThan(100 * MiB);
  });
});

describe('streaming through the tunnel', () => {
  let srv: TestServer;
  const upstreams: RawUpstream[] = [];

  beforeAll(async () => {
    srv = await startTestServer({ 'proxy.timeout': 60_000 });
    const app = streamingApp();
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'stream', (s) => app.emit('connection', s)));
    upstreams.push(
      await connectRawStreamUpstream(srv.upstreamUrl, 'echo', (s) => {
        s.pipe(s);
      }),
    );
    await waitForUpstreams(srv.server.upstreams, 'stream', 1);
    await waitForUpstreams(srv.server.upstreams, 'echo', 1);
  });

  afterAll(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await stopAllTestServers();
  });

  it('delivers server-sent events as they happen, not when the response ends', async () => {
    const req = http.request(`${srv.proxyUrl}/events`, { agent: false, headers: { 'x-piko-endpoint': 'stream' } });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    expect(res.headers['content-type']).toBe('text/event-stream');
    const events = res[Symbol.asyncIterator]();
    expect(String((await events.next()).value)).toBe('data: first\n\n');
    await request(`${srv.proxyUrl}/ack`, { headers: { 'x-piko-endpoint': 'stream' } });
    expect(String((await events.next()).value)).toBe('data: second\n\n');
    expect((await events.next()).done).toBe(true);
  });

  it('passes WebSocket upgrades through and echoes messages', async () => {
    const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/socket`, { headers: { 'x-piko-endpoint': 'stream' } });
    await once(ws, 'open');
    ws.send('ping text');
    const [msg, binary] = (await once(ws, 'message')) as [Buffer, boolean];
    expect(binary).toBe(false);
    expect(msg.toString()).toBe('ping text');
    ws.send(Buffer.alloc(300_000, 9));
    const [big] = (await once(ws, 'message')) as [Buffer];
    expect(big.length).toBe(300_000);
    ws.close();
    await once(ws, 'close');
  });

  it('carries raw TCP over a WebSocket at /_piko/v1/tcp/<endpoint>', async () => {
    const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/_piko/v1/tcp/echo`);
    await once(ws, 'open');
    ws.send(Buffer.from('raw bytes'));
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('raw bytes');
    ws.close();
  });

  it('answers a TCP upgrade for an unknown endpoint with a readable 502 before upgrading', async () => {
    const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/_piko/v1/tcp/nobody`);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    expect(res.statusCode).toBe(502);
    let body = '';
    for await (const c of res) body += String(c);
    expect(JSON.parse(body)).toEqual({ error: 'no available upstreams' });
  });

  it('serves 1,000 concurrent requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });
    try {
      const replies = await Promise.all(
        Array.from({ length: 1000 }, () => request(`${srv.proxyUrl}/`, { agent, headers: { 'x-piko-endpoint': 'stream' } })),
      );
      expect(replies.filter((r) => r.status === 200 && r.body === 'hello')).toHaveLength(1000);
    } finally {
      agent.destroy();
    }
  });

  it('rejects oversized request headers with 431 and keeps serving', async () => {
    const small = await startTestServer({ 'proxy.http.max_header_bytes': 8192 });
    const socket = net.connect(Number(new URL(small.proxyUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET / HTTP/1.1\r\nHost: stream.example.com\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await once(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'stream' } })).body).toBe('hello');
  });
});

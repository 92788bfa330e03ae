import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { encodeHeader, FLAG_SYN, TYPE_PING } from '../../../dataplane/tunnel/frame';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawStreamUpstream, connectRawUpstream, type RawUpstream } from '../../helpers/raw-upstream';

/** The value of `piko_limits_tripped_total{limit}` on the admin port. */
async function tripped(srv: TestServer, limit: string): Promise<number> {
  const { body } = await request(`${srv.adminUrl}/metrics`);
  const line = body.split('\n').find((l) => l.startsWith(`piko_limits_tripped_total{limit="${limit}"}`));
  if (!line) throw new Error(`no series for ${limit}`);
  return Number(line.split(' ').pop());
}

describe('limits', () => {
  let srv: TestServer;
  const upstreams: RawUpstream[] = [];
  const sockets: net.Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(upstreams.splice(0).map((u) => u.close()));
    await stopAllTestServers();
  });

  it('exports every limit at 0 from the start', async () => {
    srv = await startTestServer();
    const { body } = await request(`${srv.adminUrl}/metrics`);
    const series = body.split('\n').filter((l) => l.startsWith('piko_limits_tripped_total{'));
    expect(series).toHaveLength(9);
    for (const line of series) expect(line.endsWith(' 0')).toBe(true);
  });

  it('closes proxy connections past proxy.max_connections as they arrive, and serves again once one closes', async () => {
    srv = await startTestServer({ 'proxy.max_connections': 3 });
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'web', (_req, res) => res.end('ok')));
    await waitForUpstreams(srv.server.upstreams, 'web', 1);
    const port = Number(new URL(srv.proxyUrl).port);
    for (let i = 0; i < 3; i++) {
      const s = net.connect(port, '127.0.0.1');
      sockets.push(s);
      await once(s, 'connect');
    }
    const over = net.connect(port, '127.0.0.1');
    let received = 0;
    over.on('data', (c: Buffer) => (received += c.length));
    over.on('error', () => undefined);
    over.write('GET / HTTP/1.1\r\nHost: web.example.com\r\n\r\n');
    await once(over, 'close');
    expect(received).toBe(0);
    expect(await tripped(srv, 'proxy.max_connections')).toBe(1);

    const freed = sockets.pop() as net.Socket;
    freed.destroy();
    await once(freed, 'close');
    // The server notices the close on its next turn; a request on a new connection then fits.
    let res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'web' } }).catch(() => undefined);
    for (let i = 0; res === undefined && i < 50; i++) {
      await new Promise((r) => setImmediate(r));
      res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'web' } }).catch(() => undefined);
    }
    expect(res).toMatchObject({ status: 200, body: 'ok' });
  });

  it('lets go of every refused upgrade, so bad tokens cannot use up proxy.max_connections or upstream.max_connections', async () => {
    srv = await startTestServer({
      'proxy.max_connections': 4,
      'upstream.max_connections': 4,
      'proxy.auth.hmac_secret_key': 'proxy-secret-0123456789abcdef',
      'upstream.auth.hmac_secret_key': 'upstream-secret-0123456789abcdef',
    });
    // A WebSocket handshake with a bad token from a client that, answered, sends a last frame and closes.
    const refusedStatus = async (url: string): Promise<string> => {
      const { port, pathname } = new URL(url);
      const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
      socket.setTimeout(5_000, () => socket.destroy(new Error('not answered within 5 s')));
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
      socket.once('end', () => socket.end('late frame'));
      socket.write(
        `GET ${pathname} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer bad\r\n\r\n',
      );
      await once(socket, 'close');
      return answer.split('\r\n', 1)[0] ?? '';
    };
    // Ten times the cap on each port; a refusal that held its socket would leave the rest dropped.
    for (let i = 0; i < 40; i++) {
      expect(await refusedStatus(`${srv.proxyUrl}/_piko/v1/tcp/db`)).toBe('HTTP/1.1 401 Unauthorized');
      expect(await refusedStatus(`${srv.upstreamUrl}/piko/v1/upstream/db`)).toBe('HTTP/1.1 401 Unauthorized');
    }
    expect(await tripped(srv, 'proxy.max_connections')).toBe(0);
    expect(await tripped(srv, 'upstream.max_connections')).toBe(0);
  });

  it('answers 502 past upstream.session.max_streams and keeps the session for the streams under way', async () => {
    srv = await startTestServer({ 'upstream.session.max_streams': 2 });
    const held: http.ServerResponse[] = [];
    const arrived = new EventEmitter();
    const app = http.createServer((req, res) => {
      if (req.url === '/hold') {
        held.push(res);
        arrived.emit('held');
      } else res.end('quick');
    });
    upstreams.push(await connectRawStreamUpstream(srv.upstreamUrl, 'busy', (s) => app.emit('connection', s)));
    await waitForUpstreams(srv.server.upstreams, 'busy', 1);
    const slow = [0, 1].map(() => request(`${srv.proxyUrl}/hold`, { headers: { 'x-piko-endpoint': 'busy' } }));
    while (held.length < 2) await once(arrived, 'held');
    const refused = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'busy' } });
    expect(refused.status).toBe(502);
    expect(await tripped(srv, 'upstream.session.max_streams')).toBe(1);
    for (const res of held) res.end('held');
    for (const r of await Promise.all(slow)) expect(r).toMatchObject({ status: 200, body: 'held' });
    expect(await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'busy' } })).toMatchObject({ status: 200, body: 'quick' });
  });

  it('closes a raw TCP connection whose WebSocket message exceeds proxy.tcp.max_message_bytes with 1009', async () => {
    srv = await startTestServer({ 'proxy.tcp.max_message_bytes': 1024 });
    upstreams.push(
      await connectRawStreamUpstream(srv.upstreamUrl, 'db', (s) => {
        s.on('error', () => s.destroy());
        s.pipe(s);
      }),
    );
    await waitForUpstreams(srv.server.upstreams, 'db', 1);
    const ws = new WebSocket(`${srv.proxyUrl.replace('http', 'ws')}/_piko/v1/tcp/db`);
    await once(ws, 'open');
    ws.send(Buffer.alloc(512));
    await once(ws, 'message');
    const closed = once(ws, 'close');
    ws.send(Buffer.alloc(2048));
    const [code] = (await closed) as [number];
    expect(code).toBe(1009);
    expect(await tripped(srv, 'proxy.tcp.max_message_bytes')).toBe(1);
  });

  it('drops an upstream that floods pings and never reads the answers, and keeps serving the others', async () => {
    srv = await startTestServer();
    upstreams.push(await connectRawUpstream(srv.upstreamUrl, 'good', (_req, res) => res.end('fine')));
    const ws = new WebSocket(`${srv.upstreamUrl.replace('http', 'ws')}/piko/v1/upstream/flood`, { perMessageDeflate: false });
    await once(ws, 'open');
    await waitForUpstreams(srv.server.upstreams, 'flood', 1);
    // Stop reading: the server's answers pile up in the kernel, then in the server.
    const raw = (ws as unknown as { _socket: net.Socket })._socket;
    raw.pause();
    const batch = Buffer.concat(Array.from({ length: 5000 }, (_, i) => encodeHeader(TYPE_PING, FLAG_SYN, 0, i)));
    const gone = waitForUpstreams(srv.server.upstreams, 'flood', 0, 30_000);
    let done = false;
    void gone.then(() => (done = true));
    // At most 2,000 batches (120 MB of pings); the server gives up long before.
    for (let i = 0; i < 2_000 && !done && !raw.destroyed; i++) {
      if (!raw.write(encodeWsBinary(batch))) await Promise.race([once(raw, 'drain'), gone]);
    }
    await gone;
    const byControl = await tripped(srv, 'upstream.session.max_pending_control_frames');
    const byBytes = await tripped(srv, 'upstream.session.max_buffered_bytes');
    expect(byControl + byBytes).toBe(1);
    raw.destroy();
    expect(await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'good' } })).toMatchObject({ status: 200, body: 'fine' });
  });
});

/** One masked binary WebSocket frame, written straight to the socket so ws's own queue stays out of the way. */
function encodeWsBinary(payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  let offset: number;
  if (payload.length < 126) {
    header[1] = 0x80 | payload.length;
    offset = 2;
  } else if (payload.length < 65536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
    offset = 4;
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
    offset = 10;
  }
  // A zero mask leaves the payload as it is.
  header.writeUInt32BE(0, offset);
  return Buffer.concat([header.subarray(0, offset + 4), payload]);
}

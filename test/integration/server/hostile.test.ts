import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { encodeHeader, FLAG_SYN, TYPE_DATA, TYPE_WINDOW_UPDATE } from '../../../dataplane/tunnel/frame';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawStreamUpstream, connectRawUpstream, type RawUpstream } from '../../helpers/raw-upstream';

/** A WebSocket to the upstream port with no yamux behind it, to send anything we like. */
async function rawTunnel(srv: TestServer, endpointId: string): Promise<WebSocket> {
  const ws = new WebSocket(`${srv.upstreamUrl.replace('http', 'ws')}/piko/v1/upstream/${endpointId}`, { perMessageDeflate: false });
  await once(ws, 'open');
  await waitForUpstreams(srv.server.upstreams, endpointId, 1);
  return ws;
}

describe('hostile or broken upstreams', () => {
  let srv: TestServer;
  let good: RawUpstream;

  beforeEach(async () => {
    srv = await startTestServer({ 'proxy.timeout': 2000 });
    good = await connectRawUpstream(srv.upstreamUrl, 'good', (_req, res) => res.end('fine'));
    await waitForUpstreams(srv.server.upstreams, 'good', 1);
  });

  afterEach(async () => {
    await good.close();
    await stopAllTestServers();
  });

  async function expectGoodStillServed(): Promise<void> {
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'good' } });
    expect(res).toMatchObject({ status: 200, body: 'fine' });
  }

  it('drops only the session of an upstream that sends garbage frames', async () => {
    const ws = await rawTunnel(srv, 'evil');
    const closed = once(ws, 'close');
    ws.send(Buffer.from('this is not yamux at all'));
    await closed;
    await waitForUpstreams(srv.server.upstreams, 'evil', 0);
    await expectGoodStillServed();
  });

  it('drops the session of an upstream that sends a text message', async () => {
    const ws = await rawTunnel(srv, 'texty');
    const closed = once(ws, 'close');
    ws.send('hello');
    await closed;
    await waitForUpstreams(srv.server.upstreams, 'texty', 0);
    await expectGoodStillServed();
  });

  it('drops the session of an upstream that overruns a stream window, failing the request with 502', async () => {
    const ws = await rawTunnel(srv, 'flood');
    // Answer the server's SYN with ACK, then send more than the 256 KiB window.
    ws.on('message', (data: Buffer) => {
      if (data.length >= 12 && data[1] === TYPE_WINDOW_UPDATE && (data.readUInt16BE(2) & FLAG_SYN) !== 0) {
        const id = data.readUInt32BE(4);
        ws.send(
          Buffer.concat([encodeHeader(TYPE_WINDOW_UPDATE, 2, id, 0), encodeHeader(TYPE_DATA, 0, id, 300 * 1024), Buffer.alloc(300 * 1024)]),
        );
      }
    });
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'flood' } });
    expect(res.status).toBe(502);
    await waitForUpstreams(srv.server.upstreams, 'flood', 0);
    await expectGoodStillServed();
  });

  it('drops the session of an upstream that sends an oversized WebSocket message', async () => {
    const ws = await rawTunnel(srv, 'huge');
    const closed = once(ws, 'close');
    ws.send(Buffer.alloc(5 * 1024 * 1024));
    const [code] = (await closed) as [number];
    expect(code).toBe(1009);
    await waitForUpstreams(srv.server.upstreams, 'huge', 0);
    await expectGoodStillServed();
  });

  it('answers 502 when an upstream accepts a stream and then resets it', async () => {
    const resetting = await connectRawStreamUpstream(srv.upstreamUrl, 'resetter', (s) => s.destroy());
    await waitForUpstreams(srv.server.upstreams, 'resetter', 1);
    const res = await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'resetter' } });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toEqual({ error: 'upstream unreachable' });
    await resetting.close();
    await expectGoodStillServed();
  });

  it('closes a client that sends headers too slowly, and keeps serving others', async () => {
    await stopAllTestServers();
    srv = await startTestServer({ 'proxy.http.read_header_timeout': 300 });
    const socket = net.connect(Number(new URL(srv.proxyUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: good.example.com\r\n');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await once(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    good = await connectRawUpstream(srv.upstreamUrl, 'good', (_req, res) => res.end('fine'));
    await waitForUpstreams(srv.server.upstreams, 'good', 1);
    await expectGoodStillServed();
  });

  it('refuses a second upgrade attempt on a non-upstream path with 404', async () => {
    const ws = new WebSocket(`${srv.upstreamUrl.replace('http', 'ws')}/elsewhere`);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
    expect(res.statusCode).toBe(404);
  });
});

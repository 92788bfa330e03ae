import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { Session } from '../../../dataplane/tunnel/session';
import type { TunnelStream } from '../../../dataplane/tunnel/stream';
import type { Transport, TransportHandler } from '../../../dataplane/tunnel/transport';
import {
  decodeChunks,
  decodeWebSocketFrames,
  loadWireFixture,
  splitHttpHead,
  summariseYamux,
  webSocketMessages,
  type WireFixture,
  type YamuxFrameSummary,
} from '../../helpers/wire-fixtures';

/**
 * Real Go Piko traffic, recorded by test/interop/capture-go-fixtures.ts,
 * replayed against our yamux session with no Go binary: what the Go agent
 * writes when our server opens a stream, and what the Go server writes when
 * it opens one to our SDK. Go's frames are fed in the order and cut Go sent
 * them; a Go data frame is fed only once the window we granted allows it, as
 * the Go sender would wait, so a missing window update shows up as a stall.
 */

const FIXTURES = path.join(__dirname, 'fixtures');
const INITIAL_WINDOW = 256 * 1024;
const STALL_MS = 2000;

/** The yamux bytes a Go process sent: the WebSocket messages after its HTTP head, in order. */
function goMessages(fixture: WireFixture): Buffer[] {
  const { rest } = splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo)));
  return webSocketMessages(decodeWebSocketFrames(rest));
}

function goHandshake(fixture: WireFixture): string {
  return splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo))).head;
}

/** Cuts a yamux byte stream into whole frames (header plus payload). */
function yamuxFrames(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const length = bytes[offset + 1] === 0 ? bytes.readUInt32BE(offset + 8) : 0;
    frames.push(bytes.subarray(offset, offset + 12 + length));
    offset += 12 + length;
  }
  return frames;
}

/** Our side of the wire: records what the session sends and lets the test feed it Go's bytes. */
class ReplayTransport implements Transport {
  readonly bufferedAmount = 0;
  readonly sent: Buffer[] = [];
  readonly events = new EventEmitter<{ sent: [] }>();
  private handler: TransportHandler | undefined;

  attach(handler: TransportHandler): void {
    this.handler = handler;
  }

  send(data: Buffer): boolean {
    this.sent.push(Buffer.from(data));
    this.events.emit('sent');
    return true;
  }

  close(): void {
    this.handler?.onClose();
  }

  inject(data: Buffer): void {
    this.handler?.onData(data);
  }

  /** Everything we sent, as frame headers. */
  frames(): YamuxFrameSummary[] {
    return summariseYamux(Buffer.concat(this.sent));
  }

  /** Window we have granted the peer on `streamId`: the initial one plus our updates. */
  granted(streamId: number): number {
    return this.frames()
      .filter((f) => f.type === 'window-update' && f.streamId === streamId)
      .reduce((sum, f) => sum + f.length, INITIAL_WINDOW);
  }

  dataSent(streamId: number): number {
    return this.frames()
      .filter((f) => f.type === 'data' && f.streamId === streamId)
      .reduce((sum, f) => sum + f.length, 0);
  }
}

/**
 * Feeds Go's frames one at a time with a turn of the event loop between
 * them, holding back each data frame until our granted window covers it.
 */
async function replay(transport: ReplayTransport, messages: Buffer[]): Promise<void> {
  const received = new Map<number, number>();
  for (const frame of yamuxFrames(Buffer.concat(messages))) {
    if (frame[1] === 0) {
      const streamId = frame.readUInt32BE(4);
      const length = frame.readUInt32BE(8);
      const total = (received.get(streamId) ?? 0) + length;
      const deadline = AbortSignal.timeout(STALL_MS);
      while (total > transport.granted(streamId)) {
        try {
          await once(transport.events, 'sent', { signal: deadline });
        } catch {
          throw new Error(
            `stalled: Go would wait for a window update on stream ${streamId} (needs ${total}, granted ${transport.granted(streamId)})`,
          );
        }
      }
      received.set(streamId, total);
    }
    transport.inject(frame);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function readBody(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

/** An HTTP/1.1 exchange on one stream, with Node's client parsing Go's response. */
function exchange(stream: TunnelStream, options: http.RequestOptions, body?: Buffer): Promise<{ res: http.IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, createConnection: () => stream as unknown as net.Socket }, (res) => {
      readBody(res).then((b) => resolve({ res, body: b }), reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('replaying the Go agent (yamux client) against our server session', () => {
  it('takes the ACK, the HTTP response and the FIN of a Go agent GET', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-agent-get.json'));
    const messages = goMessages(fixture);
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'server', keepaliveIntervalMs: 0 });

    const stream = await Promise.all([session.open(), replay(transport, messages.slice(0, 1))]).then(([s]) => s);
    const answered = exchange(stream, { path: '/hello', headers: { host: 'x', connection: 'close' }, setHost: false });
    await replay(transport, messages.slice(1));
    const { res, body } = await answered;

    expect(res.statusCode).toBe(200);
    expect(body.toString()).toBe('hello from the service');
    expect(res.headers['x-service']).toBe('interop');
    expect(res.headers.connection).toBe('close');
    if (!stream.closed) await once(stream, 'close');
    expect(session.streamCount).toBe(0);
    session.close();
  });

  it('records the Go agent writing its yamux header and payload as separate WebSocket messages, masked and unfragmented', () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-agent-get.json'));
    const { rest } = splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo)));
    const frames = decodeWebSocketFrames(rest);

    expect(goHandshake(fixture)).toMatch(/^GET \/piko\/v1\/upstream\/cap-get HTTP\/1\.1\r\n/);
    expect(goHandshake(fixture)).toMatch(/\r\nUser-Agent: Go-http-client\/1\.1\r\n/);
    expect(goHandshake(fixture)).not.toMatch(/Origin|Sec-WebSocket-Extensions|Sec-WebSocket-Protocol/i);
    expect(frames.every((f) => f.masked && f.fin && f.opcode === 2)).toBe(true);
    expect(frames.map((f) => f.payload.length)).toEqual([12, 12, 163, 12]);
    expect(summariseYamux(Buffer.concat(goMessages(fixture)))).toEqual([
      { type: 'window-update', flags: ['ACK'], streamId: 2, length: 0 },
      { type: 'data', flags: [], streamId: 2, length: 163 },
      { type: 'window-update', flags: ['FIN'], streamId: 2, length: 0 },
    ]);
  });

  it('parses the same Go bytes cut into 5-byte pieces', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-agent-get.json'));
    const bytes = Buffer.concat(goMessages(fixture));
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'server', keepaliveIntervalMs: 0 });
    const opening = session.open();
    // ACK first so open() resolves, the rest once the request is under way.
    transport.inject(bytes.subarray(0, 12));
    const stream = await opening;
    const answered = exchange(stream, { path: '/hello', headers: { host: 'x' }, setHost: false });
    for (let i = 12; i < bytes.length; i += 5) transport.inject(bytes.subarray(i, Math.min(bytes.length, i + 5)));

    const { res, body } = await answered;
    expect(res.statusCode).toBe(200);
    expect(body.toString()).toBe('hello from the service');
    session.close();
  });

  it('sends a 1 MiB body within the windows the Go agent granted, and reads its answer', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-agent-upload.json'));
    const messages = goMessages(fixture);
    const goFrames = summariseYamux(Buffer.concat(messages));
    const goGranted = goFrames.filter((f) => f.type === 'window-update').reduce((n, f) => n + f.length, INITIAL_WINDOW);
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'server', keepaliveIntervalMs: 0 });
    const stream = await Promise.all([session.open(), replay(transport, messages.slice(0, 1))]).then(([s]) => s);

    const body = Buffer.alloc(1024 * 1024, 0x33);
    const answered = exchange(
      stream,
      { method: 'POST', path: '/digest?reply=0', headers: { host: 'x', 'content-length': String(body.length) }, setHost: false },
      body,
    );
    // Go's window updates, then its response: fed as Go sent them, after our data.
    await replay(transport, messages.slice(1));
    const { res } = await answered;

    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-bytes']).toBe(String(1024 * 1024));
    // Every byte went out (head included), and never more than Go allowed: an overrun kills a Go session.
    expect(transport.dataSent(2)).toBeGreaterThan(1024 * 1024);
    expect(transport.dataSent(2)).toBeLessThanOrEqual(goGranted);
    expect(goFrames.filter((f) => f.type === 'window-update' && f.flags.length === 0).every((f) => f.length >= INITIAL_WINDOW / 2)).toBe(
      true,
    );
    session.close();
  });

  it('grants window as it reads, so a Go agent sending 320 KiB is never left waiting', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-agent-download.json'));
    const messages = goMessages(fixture);
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'server', keepaliveIntervalMs: 0 });
    const stream = await Promise.all([session.open(), replay(transport, messages.slice(0, 1))]).then(([s]) => s);

    const answered = exchange(stream, { path: '/fill?size=327680&byte=97', headers: { host: 'x' }, setHost: false });
    await replay(transport, messages.slice(1));
    const { res, body } = await answered;

    expect(res.statusCode).toBe(200);
    expect(body.length).toBe(320 * 1024);
    expect(body.equals(Buffer.alloc(320 * 1024, 0x61))).toBe(true);
    session.close();
  });
});

describe('replaying the Go server (yamux server) against our client session', () => {
  it('accepts the Go server SYN with an ACK and serves the request Go wrote', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-server-get.json'));
    const messages = goMessages(fixture);
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'client', keepaliveIntervalMs: 0 });
    const seen: http.IncomingMessage[] = [];
    const app = http.createServer((req, res) => {
      seen.push(req);
      res.setHeader('content-type', 'text/plain');
      res.end(`hello from ts ${req.url}`);
    });
    const streams: TunnelStream[] = [];
    session.on('stream', (s) => {
      streams.push(s);
      app.emit('connection', s);
    });

    await replay(transport, messages);
    const stream = streams[0] as TunnelStream;
    if (!stream.closed) await once(stream, 'close');

    expect(goHandshake(fixture)).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(streams.map((s) => s.id)).toEqual([2]);
    const req = seen[0] as http.IncomingMessage;
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/from-go?x=1');
    expect(req.httpVersion).toBe('1.1');
    // Go's http.Transport order: Host, User-Agent, the rest sorted, Accept-Encoding, Connection.
    expect(req.rawHeaders.filter((_, i) => i % 2 === 0)).toEqual([
      'Host',
      'User-Agent',
      'X-Custom',
      'X-Forwarded-For',
      'X-Piko-Endpoint',
      'X-Piko-Forward',
      'Accept-Encoding',
      'Connection',
    ]);
    expect(req.headers['x-piko-forward']).toBe('true');
    expect(req.headers.connection).toBe('close');
    const ours = transport.frames();
    expect(ours[0]).toEqual({ type: 'window-update', flags: ['ACK'], streamId: 2, length: 0 });
    expect(ours.filter((f) => f.type === 'data').reduce((n, f) => n + f.length, 0)).toBeGreaterThan(0);
    expect(ours.some((f) => f.flags.includes('FIN') && f.streamId === 2)).toBe(true);
    const response = Buffer.concat(transport.sent).toString('latin1');
    expect(response).toContain('HTTP/1.1 200 OK\r\n');
    expect(response).toContain('hello from ts /from-go?x=1');
    expect(session.streamCount).toBe(0);
    session.close();
  });

  it('records the Go server SYN as a window update with delta 0, in unmasked single-frame messages', () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-server-get.json'));
    const { rest } = splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo)));
    const frames = decodeWebSocketFrames(rest);

    expect(frames.every((f) => !f.masked && f.fin && f.opcode === 2)).toBe(true);
    expect(summariseYamux(Buffer.concat(goMessages(fixture)))).toEqual([
      { type: 'window-update', flags: ['SYN'], streamId: 2, length: 0 },
      { type: 'data', flags: [], streamId: 2, length: 213 },
      { type: 'window-update', flags: ['FIN'], streamId: 2, length: 0 },
    ]);
  });

  it('reads a 320 KiB body the Go server sends, granting the window Go waits for', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-server-post.json'));
    const messages = goMessages(fixture);
    const transport = new ReplayTransport();
    const session = new Session(transport, { role: 'client', keepaliveIntervalMs: 0 });
    const got = new Promise<{ url: string; bytes: number; allB: boolean }>((resolve) => {
      const app = http.createServer((req, res) => {
        void readBody(req).then((body) => {
          res.end(`got ${body.length}`);
          resolve({ url: req.url ?? '', bytes: body.length, allB: body.equals(Buffer.alloc(body.length, 0x62)) });
        });
      });
      session.on('stream', (s) => app.emit('connection', s));
    });

    await replay(transport, messages);

    expect(await got).toEqual({ url: '/upload', bytes: 320 * 1024, allB: true });
    expect(Buffer.concat(transport.sent).toString('latin1')).toContain('got 327680');
    session.close();
  });
});

describe('replaying Go keepalive pings', () => {
  it.each([
    ['the Go agent', 'go-agent-keepalive.json', 'server'],
    ['the Go server', 'go-server-keepalive.json', 'client'],
  ] as const)('answers the ping of %s with the same id, and takes its answer to ours', async (_who, file, role) => {
    const fixture = loadWireFixture(path.join(FIXTURES, file));
    const messages = goMessages(fixture);
    const goFrames = summariseYamux(Buffer.concat(messages));
    const goPing = goFrames.find((f) => f.type === 'ping' && f.flags.includes('SYN'));
    const transport = new ReplayTransport();
    const session = new Session(transport, { role, keepaliveIntervalMs: 0 });

    // Our ping goes first (id 0), as it did when this was recorded.
    const rtt = session.ping(1000);
    await replay(transport, messages);

    expect(goPing).toMatchObject({ type: 'ping', streamId: 0 });
    await expect(rtt).resolves.toBeGreaterThanOrEqual(0);
    expect(transport.frames()).toContainEqual({ type: 'ping', flags: ['ACK'], streamId: 0, length: goPing?.length });
    expect(session.closed).toBe(false);
    session.close();
  });
});

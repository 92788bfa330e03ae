import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { connectRawStreamUpstream, type RawUpstream } from '../../helpers/raw-upstream';
import {
  decodeChunks,
  decodeWebSocketFrames,
  loadWireFixture,
  splitHttpHead,
  summariseYamux,
  webSocketMessages,
} from '../../helpers/wire-fixtures';

/**
 * The exact bytes Go Piko processes wrote on the wire (recorded by
 * test/interop/capture-go-fixtures.ts), replayed verbatim into our server's
 * real ports: gorilla's handshake, its masked and framed messages, the yamux
 * frames inside and the HTTP Go's reverse proxy wrote. No Go binary needed.
 */

const TUNNEL_FIXTURES = path.join(__dirname, '..', 'tunnel', 'fixtures');
const FIXTURES = path.join(__dirname, 'fixtures');
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function acceptFor(handshake: string): string {
  const key = /\r\nSec-WebSocket-Key: ([^\r]+)\r\n/i.exec(handshake)?.[1];
  if (key === undefined) throw new Error('no Sec-WebSocket-Key in the recorded handshake');
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/** Bytes from `socket` until `done` says enough, bounded. */
async function readUntil(socket: net.Socket, done: (bytes: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  let bytes = Buffer.alloc(0);
  const signal = AbortSignal.timeout(timeoutMs);
  while (!done(bytes)) {
    const [chunk] = (await once(socket, 'data', { signal })) as [Buffer];
    bytes = Buffer.concat([bytes, chunk]);
  }
  return bytes;
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface RawFrame {
  raw: Buffer;
  opcode: number;
  fin: boolean;
  /** Unmasked. */
  payload: Buffer;
}

/** The WebSocket frames in `bytes`, each with its exact wire bytes (to replay) and its payload (to read). */
function rawWebSocketFrames(bytes: Buffer): RawFrame[] {
  const frames: RawFrame[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const b1 = bytes[offset + 1] as number;
    const len7 = b1 & 0x7f;
    const lenBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const len = len7 === 126 ? bytes.readUInt16BE(offset + 2) : len7 === 127 ? Number(bytes.readBigUInt64BE(offset + 2)) : len7;
    const size = 2 + lenBytes + ((b1 & 0x80) !== 0 ? 4 : 0) + len;
    const raw = bytes.subarray(offset, offset + size);
    const [decoded] = decodeWebSocketFrames(raw);
    if (!decoded) throw new Error(`bad frame at ${offset}`);
    frames.push({ raw, opcode: decoded.opcode, fin: decoded.fin, payload: decoded.payload });
    offset += size;
  }
  return frames;
}

/** Data bytes announced on `streamId` by the yamux frame headers complete in `bytes`. */
function announcedData(bytes: Buffer, streamId: number): number {
  let total = 0;
  let offset = 0;
  while (offset + 12 <= bytes.length) {
    const isData = bytes[offset + 1] === 0;
    const length = bytes.readUInt32BE(offset + 8);
    if (isData && bytes.readUInt32BE(offset + 4) === streamId) total += length;
    offset += 12 + (isData ? length : 0);
  }
  return total;
}

const hasHead = (bytes: Buffer): boolean => bytes.includes('\r\n\r\n');

describe('replaying recorded Go Piko bytes into our server', () => {
  let srv: TestServer;
  const sockets: net.Socket[] = [];
  const upstreams: RawUpstream[] = [];

  beforeEach(async () => {
    srv = await startTestServer();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(upstreams.splice(0).map((u) => u.close()));
    await stopAllTestServers();
  });

  async function connect(url: string): Promise<net.Socket> {
    const socket = net.connect({ port: Number(new URL(url).port), host: '127.0.0.1' });
    sockets.push(socket);
    await once(socket, 'connect', { signal: AbortSignal.timeout(5000) });
    return socket;
  }

  it('registers a Go agent from its recorded handshake and relays its recorded HTTP answer', async () => {
    const fixture = loadWireFixture(path.join(TUNNEL_FIXTURES, 'go-agent-get.json'));
    const { head, rest } = splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo)));
    const socket = await connect(srv.upstreamUrl);

    socket.write(head);
    const answer = splitHttpHead(await readUntil(socket, hasHead));
    expect(answer.head).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(answer.head).toContain(`\r\nSec-WebSocket-Accept: ${acceptFor(head)}\r\n`);
    expect(answer.head).not.toMatch(/Sec-WebSocket-(Extensions|Protocol)/i);
    await waitForUpstreams(srv.server.upstreams, fixture.endpointId, 1);

    const reply = request(`${srv.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': fixture.endpointId } });
    // Our server opens stream 2 (SYN and the request) before Go's recorded ACK may follow.
    const firstMessage = (b: Buffer): Buffer | undefined => {
      try {
        return webSocketMessages(decodeWebSocketFrames(b))[0];
      } catch {
        return undefined; // not all there yet
      }
    };
    const opened = firstMessage(await readUntil(socket, (b) => firstMessage(b) !== undefined));
    // WindowUpdate, SYN, stream 2, delta 0: what Go's yamux client expects to accept.
    expect(opened?.subarray(0, 12).toString('hex')).toBe('000100010000000200000000');
    socket.write(rest);

    const { status, body, headers } = await reply;
    expect(status).toBe(200);
    expect(body).toBe('hello from the service');
    expect(headers['x-service']).toBe('interop');

    // Go hangs up with a bare TCP close: no close frame, no GoAway.
    socket.end();
    await waitForUpstreams(srv.server.upstreams, fixture.endpointId, 0);
  });

  it('reassembles the Go agent fragmented messages of a 320 KiB answer, granting the window it waits for', async () => {
    const fixture = loadWireFixture(path.join(TUNNEL_FIXTURES, 'go-agent-download.json'));
    const { head, rest } = splitHttpHead(Buffer.concat(decodeChunks(fixture, fixture.fromGo)));
    const goFrames = rawWebSocketFrames(rest);
    // gorilla cuts client messages into 4 KiB frames: the 32 KiB yamux payloads arrive in pieces.
    expect(goFrames.some((f) => f.opcode === 0)).toBe(true);
    const socket = await connect(srv.upstreamUrl);
    socket.write(head);
    const answer = splitHttpHead(await readUntil(socket, hasHead));
    expect(answer.head).toContain(`\r\nSec-WebSocket-Accept: ${acceptFor(head)}\r\n`);
    await waitForUpstreams(srv.server.upstreams, fixture.endpointId, 1);

    // Everything our server sends from here on, for its window updates.
    let fromUs = answer.rest;
    const arrived = new EventEmitter();
    socket.on('data', (chunk: Buffer) => {
      fromUs = Buffer.concat([fromUs, chunk]);
      arrived.emit('data');
    });
    const granted = (): number => {
      try {
        const frames = summariseYamux(Buffer.concat(webSocketMessages(decodeWebSocketFrames(fromUs))));
        return frames.filter((f) => f.type === 'window-update' && f.streamId === 2).reduce((n, f) => n + f.length, 256 * 1024);
      } catch {
        return 256 * 1024; // a frame still on its way
      }
    };
    const reply = request(`${srv.proxyUrl}/fill?size=327680&byte=97`, { headers: { 'x-piko-endpoint': fixture.endpointId } });
    await within(once(arrived, 'data'), 5000, 'our SYN');

    // Go's frames verbatim, each held back until the window we granted covers the data it completes.
    let yamux = Buffer.alloc(0);
    let message: Buffer[] = [];
    for (const frame of goFrames) {
      if (frame.opcode === 2 || frame.opcode === 0) message.push(frame.payload);
      if (frame.fin) {
        yamux = Buffer.concat([yamux, ...message]);
        message = [];
      }
      const needed = announcedData(yamux, 2);
      const signal = AbortSignal.timeout(2000);
      while (needed > granted()) {
        await once(arrived, 'data', { signal }).catch(() => {
          throw new Error(`stalled: Go would wait for a window update (needs ${needed}, granted ${granted()})`);
        });
      }
      socket.write(frame.raw);
    }

    const { status, body } = await reply;
    expect(status).toBe(200);
    expect(body).toBe('a'.repeat(327680));
  });

  it('serves a recorded Go piko forward connection on /_piko/v1/tcp and ends it on a bare TCP close', async () => {
    const fixture = loadWireFixture(path.join(FIXTURES, 'go-forward-tcp.json'));
    const chunks = decodeChunks(fixture, fixture.fromGo);
    const { head, rest } = splitHttpHead(Buffer.concat(chunks));
    const streams: Duplex[] = [];
    upstreams.push(
      await connectRawStreamUpstream(srv.upstreamUrl, fixture.endpointId, (stream) => {
        streams.push(stream);
        stream.pipe(stream);
      }),
    );
    await waitForUpstreams(srv.server.upstreams, fixture.endpointId, 1);
    const socket = await connect(srv.proxyUrl);

    socket.write(head);
    const answer = splitHttpHead(await readUntil(socket, hasHead));
    expect(answer.head).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(answer.head).toContain(`\r\nSec-WebSocket-Accept: ${acceptFor(head)}\r\n`);
    socket.write(rest);
    const sent = Buffer.concat(webSocketMessages(decodeWebSocketFrames(rest)));
    expect(sent.toString()).toBe('hello from go forward');
    const echoed = await readUntil(socket, (b) => {
      try {
        return Buffer.concat(webSocketMessages(decodeWebSocketFrames(Buffer.concat([answer.rest, b])))).length >= sent.length;
      } catch {
        return false;
      }
    });
    const frames = decodeWebSocketFrames(Buffer.concat([answer.rest, echoed]));
    expect(frames.every((f) => !f.masked && f.opcode === 2)).toBe(true);
    expect(Buffer.concat(webSocketMessages(frames)).toString()).toBe('hello from go forward');

    // The forward's local client ended: Go drops the TCP connection, and the tunnel stream goes with it.
    const stream = streams[0] as Duplex;
    // Our side resets the stream rather than FIN it; either way the agent drops its local connection.
    const streamClosed = new Promise<void>((resolve) => {
      if (stream.destroyed) resolve();
      else stream.once('close', () => resolve());
    });
    socket.end();
    await within(streamClosed, 5000, 'the tunnel stream closing');
    expect(stream.destroyed).toBe(true);
  });
});

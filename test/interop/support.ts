import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * Shared pieces of the interop suite: the local services that sit behind an
 * agent (HTTP with deterministic bodies, WebSocket echo, TCP echo) and
 * clients that move large bodies while hashing them, so 100 MiB never sits
 * in memory.
 */

export const MIB = 1024 * 1024;
/** For the beforeAll that calls goPikoBinary(): a cold build of Go Piko takes about a minute on two cores. */
export const GO_BUILD_TIMEOUT_MS = 10 * 60_000;
const BLOCK = 64 * 1024;

// One pseudo-random block per seed: incompressible, so no layer can cheat.
const blocks = new Map<number, Buffer>();
function baseBlock(seed: number): Buffer {
  let block = blocks.get(seed);
  if (block) return block;
  block = Buffer.allocUnsafe(BLOCK);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < BLOCK; i += 4) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    block.writeUInt32LE(x, i);
  }
  blocks.set(seed, block);
  return block;
}

/** The body of `size` bytes for `seed`, chunk by chunk; every 64 KiB block is stamped with its index. */
export function* patternChunks(size: number, seed: number): Generator<Buffer> {
  const base = baseBlock(seed);
  for (let offset = 0, index = 0; offset < size; offset += BLOCK, index++) {
    const chunk = Buffer.from(base.subarray(0, Math.min(BLOCK, size - offset)));
    if (chunk.length >= 8) {
      chunk.writeUInt32BE(index, 0);
      chunk.writeUInt32BE(seed, 4);
    }
    yield chunk;
  }
}

export function patternStream(size: number, seed: number): Readable {
  return Readable.from(patternChunks(size, seed), { objectMode: false });
}

const digests = new Map<string, string>();
/** sha256 (hex) of the pattern body, memoised: the 100 MiB one costs a third of a second. */
export function patternSha256(size: number, seed: number): string {
  const key = `${size}/${seed}`;
  let digest = digests.get(key);
  if (digest === undefined) {
    const hash = createHash('sha256');
    for (const chunk of patternChunks(size, seed)) hash.update(chunk);
    digest = hash.digest('hex');
    digests.set(key, digest);
  }
  return digest;
}

export interface HashedBody {
  bytes: number;
  sha256: string;
}

/** Reads a stream to its end, keeping only its length and hash. */
export async function hashStream(stream: NodeJS.ReadableStream): Promise<HashedBody> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface HashedReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: HashedBody;
}

/**
 * One request with a fresh connection; the request body (if any) is streamed
 * from `body`, the response body hashed as it arrives. `timeoutMs` bounds
 * inactivity, not the whole exchange.
 */
export function hashedRequest(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Readable; timeoutMs?: number } = {},
): Promise<HashedReply> {
  return new Promise<HashedReply>((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      hashStream(res).then((body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }), reject);
    });
    req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(new Error(`${url}: no progress for ${opts.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    if (opts.body) {
      pipeline(opts.body, req).catch((err: unknown) => req.destroy(err as Error));
    } else {
      req.end();
    }
  });
}

export interface ServiceEvents {
  /** A /hold request arrived; `key` is the rest of its path. */
  held: [key: string];
}

export interface InteropService {
  port: number;
  url: string;
  events: EventEmitter<ServiceEvents>;
  /** Lets held requests whose key starts with `prefix` answer, and those that arrive later. */
  release(prefix: string): void;
  /** Requests the service saw, newest last: method, url and headers as received. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/**
 * The HTTP service behind an agent:
 * - `GET /hello`: a small text body;
 * - `POST /echo`: the request body back, with its content type;
 * - `POST /digest?reply=N&seed=S`: reads the whole body, then answers the
 *   pattern body of N bytes with the request's length and hash in headers
 *   (Go's HTTP/1 server may drop an unread request body once it answers, so
 *   the service reads first and replies second);
 * - `GET /pattern?size=N&seed=S`: the pattern body with a Content-Length;
 * - `GET /fill?size=N&byte=B`: N bytes of B;
 * - `GET /hold/<key>`: answers only once release() names a prefix of key;
 * - WebSocket upgrades on any path: echo, text as text and binary as binary.
 */
export async function startInteropService(): Promise<InteropService> {
  const events = new EventEmitter<ServiceEvents>().setMaxListeners(0);
  const released = new Set<string>();
  const isReleased = (key: string): boolean => [...released].some((prefix) => key.startsWith(prefix));
  const releaseEvents = new EventEmitter().setMaxListeners(0);
  const seen: InteropService['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (seen.length > 1000) seen.shift();
    const url = new URL(req.url ?? '/', 'http://service');
    const num = (name: string, fallback: number): number => Number(url.searchParams.get(name) ?? fallback);
    if (url.pathname === '/hello') {
      res.setHeader('content-type', 'text/plain');
      res.setHeader('x-service', 'interop');
      res.end('hello from the service');
    } else if (url.pathname === '/echo') {
      if (req.headers['content-type']) res.setHeader('content-type', req.headers['content-type']);
      req.pipe(res);
    } else if (url.pathname === '/digest') {
      hashStream(req).then(
        (got) => {
          const size = num('reply', 0);
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': String(size),
            'x-request-bytes': String(got.bytes),
            'x-request-sha256': got.sha256,
          });
          patternStream(size, num('seed', 1)).pipe(res);
        },
        () => res.destroy(),
      );
    } else if (url.pathname === '/pattern') {
      const size = num('size', 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      patternStream(size, num('seed', 1)).pipe(res);
    } else if (url.pathname === '/fill') {
      // A compressible body, for recordings small enough to keep in the repository.
      const size = num('size', 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      res.end(Buffer.alloc(size, num('byte', 0x61)));
    } else if (url.pathname.startsWith('/hold/')) {
      const key = url.pathname.slice('/hold/'.length);
      const answer = (): void => {
        if (!isReleased(key)) return;
        releaseEvents.off('release', answer);
        res.setHeader('content-type', 'text/plain');
        res.end(`released ${key}`);
      };
      res.on('close', () => releaseEvents.off('release', answer));
      events.emit('held', key);
      releaseEvents.on('release', answer);
      answer();
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
      ws.on('error', () => ws.terminate());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    events,
    seen,
    release: (prefix) => {
      released.add(prefix);
      releaseEvents.emit('release');
    },
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TcpEcho {
  port: number;
  close(): Promise<void>;
}

/** A TCP echo service on 127.0.0.1:0. */
export async function startTcpEcho(): Promise<TcpEcho> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Writes `payload` and resolves with the same number of bytes read back, or
 * rejects on close, error or after `timeoutMs`.
 */
export function echoRoundTrip(conn: Duplex, payload: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const cleanup = (): void => {
      clearTimeout(timer);
      conn.off('data', onData);
      conn.off('error', onError);
      conn.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got < payload.length) return;
      cleanup();
      conn.pause();
      resolve(Buffer.concat(chunks, got));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed after ${got} of ${payload.length} bytes`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`echo: ${got} of ${payload.length} bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on('data', onData);
    conn.once('error', onError);
    conn.once('close', onClose);
    conn.resume();
    conn.write(payload);
  });
}

/** A WebSocket client through our proxy; resolves once open, rejecting with the status of a refused handshake. */
export async function openWebSocket(url: string, headers: Record<string, string>, timeoutMs = 10_000): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: timeoutMs });
  const refused = once(ws, 'unexpected-response').then(([, res]) => {
    throw new Error(`websocket refused with ${(res as http.IncomingMessage).statusCode}`);
  });
  await Promise.race([once(ws, 'open'), refused]);
  return ws;
}

/** The next message on `ws`, within `timeoutMs`. */
export async function nextMessage(ws: WebSocket, timeoutMs = 10_000): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = (await once(ws, 'message', { signal: AbortSignal.timeout(timeoutMs) })) as [Buffer, boolean];
  return { data, isBinary };
}

/** Closes a WebSocket and waits for it to be closed (bounded: ws terminates a silent peer itself). */
export async function closeWebSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}

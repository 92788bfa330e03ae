import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { ProxyError } from '../../../dataplane/http/proxy-error';
import {
  CLIENT_CLOSED_STATUS,
  proxyHttp,
  proxyUpgrade,
  type Connection,
  type ExchangeResult,
  type HttpPool,
  type ProxyHttpOptions,
  type ProxyUpgradeOptions,
} from '../../../dataplane/http/reverse-proxy';
import { request } from '../../helpers/http-client';

// The core on a real front server and real clients; the upstream is either
// a real http.Server on one end of an in-memory duplex pair, or a script
// that reads the request's bytes and writes the answer's, as Piko's
// httpproxy_test.go drives its proxy with a fake upstream.

type HttpOptions = Omit<ProxyHttpOptions, 'path' | 'headers' | 'timeoutMs'> & { timeoutMs?: number };
type UpgradeOptions = Omit<ProxyUpgradeOptions, 'path' | 'headers' | 'timeoutMs'> & { timeoutMs?: number };

interface Front {
  url: string;
  port: number;
  /** The outcome of each exchange, in order. */
  results: Promise<ExchangeResult>[];
  close(): void;
}

const fronts: Front[] = [];
afterEach(() => {
  for (const f of fronts.splice(0)) f.close();
});

async function front(http1: () => HttpOptions, upgrade?: () => UpgradeOptions): Promise<Front> {
  const results: Promise<ExchangeResult>[] = [];
  const server = http.createServer((req, res) => {
    results.push(
      proxyHttp(req, res, { path: req.url ?? '/', headers: { ...req.headers, connection: undefined }, timeoutMs: 5_000, ...http1() }),
    );
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!upgrade) throw new Error('no upgrade handler');
    results.push(
      proxyUpgrade(req, socket, head, { path: req.url ?? '/', headers: { host: req.headers.host }, timeoutMs: 5_000, ...upgrade() }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const f: Front = {
    url: `http://127.0.0.1:${port}`,
    port,
    results,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
  fronts.push(f);
  return f;
}

/**
 * One end of an in-memory pair with what the core needs of a connection:
 * net.Socket's idle timer, reset by traffic either way, emitting 'timeout';
 * a close on either end closes the other.
 */
function pairedConnection(): [Connection, Duplex] {
  const [end, upstream] = duplexPair();
  let idleMs = 0;
  let timer: NodeJS.Timeout | undefined;
  const touch = (): void => {
    clearTimeout(timer);
    if (idleMs > 0 && !end.destroyed) timer = setTimeout(() => end.emit('timeout'), idleMs);
  };
  const push = end.push.bind(end);
  end.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    touch();
    return push(chunk, encoding);
  };
  const write = end.write.bind(end) as (chunk: unknown, ...rest: unknown[]) => boolean;
  end.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    touch();
    return write(chunk, ...rest);
  }) as Duplex['write'];
  // A reset reaches the far end, as it does over a socket or a tunnel stream.
  end.once('close', () => {
    clearTimeout(timer);
    upstream.destroy();
  });
  upstream.once('close', () => end.destroy());
  const conn = Object.assign(end, {
    setTimeout(ms: number, callback?: () => void): Duplex {
      idleMs = ms;
      if (callback) end.once('timeout', callback);
      touch();
      return end;
    },
  });
  return [conn, upstream];
}

/** A connection whose far end a real http.Server serves. */
function servedConnection(handler: http.RequestListener): { conn: Connection; upstream: Duplex; requests: http.IncomingMessage[] } {
  const [conn, upstream] = pairedConnection();
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  server.emit('connection', upstream);
  return { conn, upstream, requests };
}

/** A connection whose far end is a script: it gets the request's head and answers with raw bytes. */
function scriptedConnection(script: (head: string, upstream: Duplex) => void): {
  conn: Connection;
  upstream: Duplex;
  closed: Promise<void>;
} {
  const [conn, upstream] = pairedConnection();
  let buffered = '';
  let answered = false;
  upstream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    const end = buffered.indexOf('\r\n\r\n');
    if (!answered && end >= 0) {
      answered = true;
      script(buffered.slice(0, end), upstream);
    }
  });
  const closed = new Promise<void>((resolve) => upstream.once('close', () => resolve()));
  return { conn, upstream, closed };
}

/** Raw request bytes and the raw answer, read to the close (no HTTP client in between). */
async function rawExchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(bytes);
  let out = '';
  socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
  await once(socket, 'close');
  return out;
}

describe('proxyHttp on a connection of its own', () => {
  it('relays the request and the response, one exchange per connection', async () => {
    const served = servedConnection((req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end(`${req.method} ${req.url} connection=${req.headers.connection}`);
    });
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: served.conn, headers: { 'x-hop': 'yes' } }) }));
    const reply = await request(`${f.url}/a?b=c`, { method: 'DELETE' });
    expect(reply).toMatchObject({ status: 200, body: 'DELETE /a?b=c connection=close' });
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(served.requests[0]?.headers['x-hop']).toBe('yes');
    const result = await f.results[0];
    expect(result).toMatchObject({ status: 200, responseBytes: 'DELETE /a?b=c connection=close'.length });
    expect(result?.responseHeaders['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(result?.error).toBeUndefined();
  });

  it('streams a request body to the upstream', async () => {
    const served = servedConnection((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`got ${Buffer.concat(chunks).length}`));
    });
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: served.conn }) }));
    expect(await request(`${f.url}/`, { method: 'POST', body: Buffer.alloc(300_000, 1) })).toMatchObject({
      status: 200,
      body: 'got 300000',
    });
  });

  it('answers 502 with the cause kept when connect fails, and the router’s own error as it is', async () => {
    let err: unknown = new Error('boom');
    const f = await front(() => ({ connect: () => Promise.reject(err) }));
    expect(await request(`${f.url}/`)).toMatchObject({ status: 502, body: '{"error":"upstream unreachable"}\n' });
    const first = await f.results[0];
    expect(first).toMatchObject({ status: 502, error: { code: 'ERR_UPSTREAM_UNREACHABLE' } });
    expect((first?.error?.cause as Error).message).toBe('boom');
    err = new ProxyError('ERR_NO_UPSTREAM');
    expect(await request(`${f.url}/`)).toMatchObject({ status: 502, body: '{"error":"no available upstreams"}\n' });
    await expect(f.results[1]).resolves.toMatchObject({ status: 502, error: { code: 'ERR_NO_UPSTREAM' } });
  });

  describe('on a connection handed over before the far end accepted it', () => {
    const REFUSED = Object.assign(new Error('peer refused stream 3'), { code: 'REFUSED' });
    const refused = (err: Error): boolean => (err as NodeJS.ErrnoException).code === 'REFUSED';

    /** A connection the far end refuses once it has the request's head: an error on it, as a tunnel stream's RST before its ACK. */
    function refusedConnection(error: Error = REFUSED): { conn: Connection; heads: string[] } {
      const heads: string[] = [];
      const scripted = scriptedConnection((head) => {
        heads.push(head);
        scripted.conn.destroy(error);
      });
      return { conn: scripted.conn, heads };
    }

    it('sends a bodiless request again on a new connection when the first is refused', async () => {
      const first = refusedConnection();
      const second = servedConnection((req, res) => res.end(`served ${req.method} ${req.url}`));
      const conns = [first.conn, second.conn];
      let connects = 0;
      const f = await front(() => ({
        connect: () => Promise.resolve({ conn: conns[connects++] as Connection, refused }),
        retries: 2,
      }));
      expect(await request(`${f.url}/x`, { method: 'DELETE' })).toMatchObject({ status: 200, body: 'served DELETE /x' });
      expect(connects).toBe(2);
      expect(first.heads).toHaveLength(1);
      expect(second.requests).toHaveLength(1);
      await expect(f.results[0]).resolves.toMatchObject({ status: 200 });
    });

    /** A front whose every connect hands over a connection the far end refuses with `error`. */
    async function alwaysRefused(error: Error = REFUSED): Promise<{ f: Front; connects: () => number }> {
      let connects = 0;
      const f = await front(() => ({
        connect: () => {
          connects++;
          return Promise.resolve({ conn: refusedConnection(error).conn, refused });
        },
        retries: 2,
      }));
      return { f, connects: () => connects };
    }

    it('gives up with 502 once the retries are spent', async () => {
      const { f, connects } = await alwaysRefused();
      expect(await request(`${f.url}/`)).toMatchObject({ status: 502 });
      expect(connects()).toBe(3);
      await expect(f.results[0]).resolves.toMatchObject({ error: { code: 'ERR_UPSTREAM_UNREACHABLE', cause: { code: 'REFUSED' } } });
    });

    it('does not go again on an error that is not a refusal, nor with a body', async () => {
      const reset = await alwaysRefused(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
      expect(await request(`${reset.f.url}/`)).toMatchObject({ status: 502 });
      expect(reset.connects()).toBe(1);

      const withBody = await alwaysRefused();
      expect(await request(`${withBody.f.url}/`, { method: 'POST', body: 'once' })).toMatchObject({ status: 502 });
      expect(withBody.connects()).toBe(1);
    });
  });

  it('answers 502, not 504, when the connection closes before any response', async () => {
    const scripted = scriptedConnection((_head, upstream) => upstream.destroy());
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }));
    expect(await request(`${f.url}/`)).toMatchObject({ status: 502 });
    await expect(f.results[0]).resolves.toMatchObject({ status: 502, error: { code: 'ERR_UPSTREAM_UNREACHABLE' } });
  });

  it('answers 502 for a connection that was dead when connect handed it over', async () => {
    const [conn] = pairedConnection();
    conn.destroy();
    const f = await front(() => ({ connect: () => Promise.resolve({ conn }) }));
    expect(await request(`${f.url}/`)).toMatchObject({ status: 502 });
  });

  it('answers 504 when the head does not come in time, and closes the connection', async () => {
    const scripted = scriptedConnection(() => undefined);
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }), timeoutMs: 150 }));
    expect(await request(`${f.url}/`)).toMatchObject({ status: 504, body: '{"error":"upstream timeout"}\n' });
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: 504, error: { code: 'ERR_UPSTREAM_TIMEOUT' } });
  });

  it('cuts the body when the upstream falls silent after the head, keeping the status it sent', async () => {
    const scripted = scriptedConnection((_head, upstream) => upstream.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }), timeoutMs: 150 }));
    const raw = await rawExchange(f.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(raw).toMatch(/content-length: 10\r\n/i);
    expect(raw.endsWith('\r\n\r\nabc')).toBe(true);
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: 200, responseBytes: 3, error: { code: 'ERR_UPSTREAM_TIMEOUT' } });
  });

  it('cuts the body, never pads it, when the connection fails after the head', async () => {
    const scripted = scriptedConnection((_head, upstream) => {
      upstream.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      setImmediate(() => upstream.destroy());
    });
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }));
    const raw = await rawExchange(f.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(raw).toContain('3\r\nabc\r\n');
    // No last chunk: the client can tell the body is incomplete.
    expect(raw).not.toContain('0\r\n\r\n');
    expect(raw).not.toContain('error');
    await expect(f.results[0]).resolves.toMatchObject({ status: 200, responseBytes: 3, error: { code: 'ERR_UPSTREAM_UNREACHABLE' } });
  });

  it('closes the upstream connection when the client leaves early, and reports 499', async () => {
    const scripted = scriptedConnection(() => undefined);
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }));
    const client = net.connect(f.port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    // The upstream got the request: the exchange is under way.
    await once(scripted.upstream, 'data');
    client.destroy();
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: CLIENT_CLOSED_STATUS });
  });

  it('destroys a connection that arrives after the client left', async () => {
    const [conn] = pairedConnection();
    let handOver!: () => void;
    let connectCalled!: () => void;
    const called = new Promise<void>((resolve) => (connectCalled = resolve));
    const f = await front(() => ({
      connect: () =>
        new Promise((resolve) => {
          handOver = () => resolve({ conn });
          connectCalled();
        }),
    }));
    const client = net.connect(f.port, '127.0.0.1');
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await called;
    client.destroy();
    await expect(f.results[0]).resolves.toMatchObject({ status: CLIENT_CLOSED_STATUS });
    handOver();
    await once(conn, 'close');
  });

  it('answers with the abort reason, with nothing connected, when aborted before it began', async () => {
    let connected = false;
    const f = await front(() => {
      const ac = new AbortController();
      ac.abort(new ProxyError('ERR_REQUEST_TIMEOUT'));
      return {
        connect: () => {
          connected = true;
          return Promise.reject(new Error('must not connect'));
        },
        signal: ac.signal,
      };
    });
    const res = await request(`${f.url}/`);
    expect(res.status).toBe(408);
    expect(res.headers.connection).toBe('close');
    await expect(f.results[0]).resolves.toMatchObject({ status: 408, error: { code: 'ERR_REQUEST_TIMEOUT' } });
    expect(connected).toBe(false);
  });

  it('relays trailers both ways', async () => {
    const served = servedConnection((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { trailer: 'x-checksum' });
        res.write('body');
        res.addTrailers({ 'x-checksum': `request said ${req.trailers['x-sent'] ?? 'nothing'}` });
        res.end();
      });
    });
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: served.conn }) }));
    const reply = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = http.request(`${f.url}/`, { method: 'POST', agent: false, headers: { te: 'trailers', trailer: 'x-sent' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ body, trailers: res.trailers }));
      });
      req.on('error', reject);
      req.write('payload');
      req.addTrailers({ 'x-sent': 'hello' });
      req.end();
    });
    expect(reply).toEqual({ body: 'body', trailers: { 'x-checksum': 'request said hello' } });
    expect(served.requests[0]?.headers.te).toBe('trailers');
  });

  it('relays 103 Early Hints before the final response', async () => {
    const scripted = scriptedConnection((_head, upstream) => {
      upstream.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
      upstream.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const f = await front(() => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }));
    const seen = await new Promise<{ info: http.InformationEvent[]; status: number }>((resolve, reject) => {
      const info: http.InformationEvent[] = [];
      const req = http.get(`${f.url}/`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ info, status: res.statusCode ?? 0 }));
      });
      req.on('information', (i: http.InformationEvent) => info.push(i));
      req.on('error', reject);
    });
    expect(seen.status).toBe(200);
    expect(seen.info.map((i) => [i.statusCode, i.headers.link])).toEqual([[103, '</style.css>; rel=preload']]);
  });
});

describe('proxyHttp on a pool', () => {
  /** A pool to a real service whose first `refusals` connections are refused before a byte is sent. */
  async function flakyPool(refusals: number): Promise<{ pool: HttpPool; attempts: () => number; seen: string[]; close(): void }> {
    const seen: string[] = [];
    const service = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('served');
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as net.AddressInfo).port;
    closed.close();
    const agent = new http.Agent({ keepAlive: true });
    let attempts = 0;
    const base = agent.createConnection.bind(agent);
    agent.createConnection = ((opts: net.NetConnectOpts, cb?: (err: Error | null, s: Duplex) => void) => {
      attempts++;
      return attempts <= refusals ? net.connect(deadPort, '127.0.0.1') : base(opts, cb);
    }) as typeof agent.createConnection;
    const { port } = service.address() as net.AddressInfo;
    return {
      pool: { agent, secure: false, host: '127.0.0.1', port },
      attempts: () => attempts,
      seen,
      close: () => {
        agent.destroy();
        service.closeAllConnections();
        service.close();
      },
    };
  }

  it('sends a request again when its connection was refused before any byte left', async () => {
    const flaky = await flakyPool(1);
    try {
      const f = await front(() => ({ connect: () => Promise.resolve({ pool: flaky.pool }), retries: 2 }));
      expect(await request(`${f.url}/x`, { method: 'POST' })).toMatchObject({ status: 200, body: 'served' });
      expect(flaky.attempts()).toBe(2);
      expect(flaky.seen).toEqual(['POST /x']);
    } finally {
      flaky.close();
    }
  });

  it('gives up with 502 once the retries are spent', async () => {
    const flaky = await flakyPool(3);
    try {
      const f = await front(() => ({ connect: () => Promise.resolve({ pool: flaky.pool }), retries: 2 }));
      expect(await request(`${f.url}/`)).toMatchObject({ status: 502 });
      expect(flaky.attempts()).toBe(3);
      await expect(f.results[0]).resolves.toMatchObject({ error: { code: 'ERR_UPSTREAM_UNREACHABLE', cause: { code: 'ECONNREFUSED' } } });
    } finally {
      flaky.close();
    }
  });

  it('never sends a request with a body twice', async () => {
    const flaky = await flakyPool(1);
    try {
      const f = await front(() => ({ connect: () => Promise.resolve({ pool: flaky.pool }), retries: 2 }));
      expect(await request(`${f.url}/`, { method: 'POST', body: 'once' })).toMatchObject({ status: 502 });
      expect(flaky.attempts()).toBe(1);
    } finally {
      flaky.close();
    }
  });

  it('leaves keep-alive to the pool: the connection is reused', async () => {
    const flaky = await flakyPool(0);
    try {
      const f = await front(() => ({ connect: () => Promise.resolve({ pool: flaky.pool }) }));
      for (let i = 0; i < 3; i++) expect(await request(`${f.url}/${i}`)).toMatchObject({ status: 200 });
      expect(flaky.attempts()).toBe(1);
    } finally {
      flaky.close();
    }
  });
});

describe('proxyUpgrade', () => {
  const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';

  it('pipes raw bytes both ways after the 101, and is over when both sides are', async () => {
    let upstreamHead = '';
    const scripted = scriptedConnection((head, upstream) => {
      upstreamHead = head;
      upstream.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello');
      upstream.on('data', (c: Buffer) => {
        if (c.toString().includes('ping')) upstream.end('pong');
      });
    });
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn, headers: { 'x-hop': 'yes' } }) }),
    );
    const client = net.connect(f.port, '127.0.0.1');
    client.write(UPGRADE);
    let got = '';
    client.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.endsWith('hello')) client.write('ping');
    });
    await once(client, 'close');
    expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(got).toMatch(/\r\nUpgrade: websocket\r\n/);
    expect(got.endsWith('\r\n\r\nhellopong')).toBe(true);
    expect(upstreamHead).toMatch(/\r\nconnection: Upgrade\r\n/i);
    expect(upstreamHead).toMatch(/\r\nupgrade: websocket(\r\n|$)/i);
    expect(upstreamHead).toMatch(/\r\nx-hop: yes/i);
    await expect(f.results[0]).resolves.toMatchObject({ status: 101, responseBytes: 'hellopong'.length });
  });

  it('holds what the client sends before the 101 and delivers it once, after the answer', async () => {
    let answer: (() => void) | undefined;
    let afterHead = '';
    const scripted = scriptedConnection((_head, upstream) => {
      answer = () => upstream.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }),
    );
    const client = net.connect(f.port, '127.0.0.1');
    client.write(UPGRADE);
    await once(scripted.upstream, 'data');
    scripted.upstream.on('data', (c: Buffer) => (afterHead += c.toString('latin1')));
    client.write('early');
    const beforeAnswer = afterHead;
    answer?.();
    await once(client, 'data');
    while (afterHead.length < 'early'.length) await once(scripted.upstream, 'data');
    expect(beforeAnswer).toBe('');
    expect(afterHead).toBe('early');
    // The upstream answers the client's close with its own, as a WebSocket server does.
    scripted.upstream.once('end', () => scripted.upstream.end());
    client.destroy();
    await expect(f.results[0]).resolves.toMatchObject({ status: 101 });
  });

  it('notices a client that half-closes before the answer, and closes the upstream connection', async () => {
    const scripted = scriptedConnection(() => undefined);
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn }), timeoutMs: 60_000 }),
    );
    const client = net.connect({ port: f.port, host: '127.0.0.1', allowHalfOpen: true });
    client.write(UPGRADE);
    await once(scripted.upstream, 'data');
    client.end();
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: CLIENT_CLOSED_STATUS });
    client.destroy();
  });

  it('relays a refused upgrade as an ordinary response and hangs up', async () => {
    const scripted = scriptedConnection((_head, upstream) => upstream.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope'));
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }),
    );
    const raw = await rawExchange(f.port, UPGRADE);
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(raw).toMatch(/connection: close\r\n/i);
    expect(raw.endsWith('\r\n\r\nnope')).toBe(true);
    await expect(f.results[0]).resolves.toMatchObject({ status: 403, responseBytes: 4 });
  });

  it('answers 504 and closes the connection when the upstream does not answer the upgrade in time', async () => {
    const scripted = scriptedConnection(() => undefined);
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn }), timeoutMs: 150 }),
    );
    const raw = await rawExchange(f.port, UPGRADE);
    expect(raw).toMatch(/^HTTP\/1\.1 504 /);
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: 504, error: { code: 'ERR_UPSTREAM_TIMEOUT' } });
  });

  it('closes the upstream connection when the client leaves before the answer', async () => {
    const scripted = scriptedConnection(() => undefined);
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.resolve({ conn: scripted.conn }) }),
    );
    const client = net.connect(f.port, '127.0.0.1');
    client.write(UPGRADE);
    await once(scripted.upstream, 'data');
    client.destroy();
    await scripted.closed;
    await expect(f.results[0]).resolves.toMatchObject({ status: CLIENT_CLOSED_STATUS });
  });

  it('answers 502 when connect fails', async () => {
    const f = await front(
      () => ({ connect: () => Promise.reject(new Error('unused')) }),
      () => ({ connect: () => Promise.reject(new ProxyError('ERR_NO_UPSTREAM')) }),
    );
    const raw = await rawExchange(f.port, UPGRADE);
    expect(raw).toMatch(/^HTTP\/1\.1 502 /);
    expect(raw).toContain('{"error":"no available upstreams"}');
  });
});

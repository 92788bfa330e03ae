/**
 * Records real Go Piko traffic into the byte-level fixtures that
 * test/unit/tunnel/go-yamux-replay.test.ts and
 * test/unit/proxy/go-wire-replay.test.ts replay without Go. Not a test: run
 * it by hand when the Go version changes, then review the diff.
 *
 *   npx ts-node --transpile-only test/interop/capture-go-fixtures.ts [--skip-keepalive]
 *
 * (about 35 s, most of it waiting for Go's 30 s keepalive ping).
 *
 * Each recording is one TCP connection seen by a tap between a Go process
 * and its peer (our server, or our SDK for the Go server), chunk boundaries
 * kept. Every recorded exchange is the first stream of a fresh session, so
 * it is always stream 2.
 */
import { EventEmitter, once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { listen, serve, type Listener } from '../../dataplane/client';
import {
  freeLoopbackPorts,
  goPikoBinary,
  startGoPikoAgent,
  startGoPikoForward,
  startGoPikoServer,
  stopAllGoPiko,
  waitForGoPikoEndpoint,
  waitForTcpPort,
} from '../helpers/go-piko';
import { request, waitForUpstreams } from '../helpers/http-client';
import { startTestServer, stopAllTestServers } from '../helpers/piko-server';
import {
  decodeWebSocketFrames,
  splitHttpHead,
  summariseYamux,
  webSocketMessages,
  type WireFixture,
  type YamuxFrameSummary,
} from '../helpers/wire-fixtures';
import { hashedRequest, patternStream, startInteropService } from './support';

const TUNNEL_FIXTURES = path.resolve(__dirname, '..', 'unit', 'tunnel', 'fixtures');
const PROXY_FIXTURES = path.resolve(__dirname, '..', 'unit', 'proxy', 'fixtures');
const WAIT_MS = 15_000;

interface Recording {
  fromClient: Buffer[];
  fromServer: Buffer[];
  clientEnded: boolean;
}

/**
 * A TCP relay that records every connection through it. `recorded` is the
 * first one, or the first one to carry bytes after its handshake (Go's
 * forward opens a WebSocket for our port probe too).
 */
class Tap {
  private readonly recordings: Recording[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly events = new EventEmitter();
  port = 0;

  constructor(targetPort: number) {
    this.server = net.createServer((client) => {
      const rec: Recording = { fromClient: [], fromServer: [], clientEnded: false };
      this.recordings.push(rec);
      const upstream = net.connect({ port: targetPort, host: '127.0.0.1' });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d: Buffer) => {
        rec.fromClient.push(Buffer.from(d));
        upstream.write(d);
        this.events.emit('data');
      });
      upstream.on('data', (d: Buffer) => {
        rec.fromServer.push(Buffer.from(d));
        client.write(d);
        this.events.emit('data');
      });
      client.on('close', () => {
        rec.clientEnded = true;
        upstream.destroy();
        this.events.emit('data');
      });
      upstream.on('close', () => client.destroy());
    });
  }

  get recorded(): Recording {
    const busy = this.recordings.find(
      (r) => r.fromClient.length > 1 || (r.fromClient.length === 1 && splitHttpHead(r.fromClient[0] as Buffer).rest.length > 0),
    );
    const first = this.recordings[0];
    if (!first) throw new Error('capture: nothing connected through the tap');
    return busy ?? first;
  }

  get fromClient(): Buffer[] {
    return this.recordings.length === 0 ? [] : this.recorded.fromClient;
  }

  get fromServer(): Buffer[] {
    return this.recordings.length === 0 ? [] : this.recorded.fromServer;
  }

  get clientEnded(): boolean {
    return this.recordings.length > 0 && this.recorded.clientEnded;
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves once `check` holds, re-checked on every byte through the tap. */
  async until(what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = AbortSignal.timeout(timeoutMs);
    while (!check()) {
      try {
        await once(this.events, 'data', { signal: deadline });
      } catch {
        throw new Error(`capture: ${what} not seen within ${timeoutMs} ms`);
      }
    }
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

/** The yamux frames so far in one direction, or undefined while a frame is incomplete. */
function yamuxSoFar(chunks: Buffer[]): YamuxFrameSummary[] | undefined {
  try {
    const { rest } = splitHttpHead(Buffer.concat(chunks));
    return summariseYamux(Buffer.concat(webSocketMessages(decodeWebSocketFrames(rest))));
  } catch {
    return undefined;
  }
}

const finOn = (frames: YamuxFrameSummary[] | undefined, streamId: number): boolean =>
  frames?.some((f) => f.streamId === streamId && f.flags.includes('FIN')) ?? false;

function goVersion(): string {
  const binary = goPikoBinary();
  // The cache directory is named after the module version it was built from.
  return `github.com/andydunstall/piko ${path.basename(path.dirname(binary))} (yamux v0.1.5, gorilla/websocket v1.5.3), built by test/interop/build-go-piko.sh`;
}

function write(dir: string, name: string, fixture: WireFixture): void {
  const file = path.join(dir, name);
  writeFileSync(file, `${JSON.stringify(fixture, null, 2)}\n`);
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}

function encodeChunks(chunks: Buffer[], gzip: boolean): string[] {
  return chunks.map((c) => (gzip ? gzipSync(c, { level: 9 }).toString('base64') : c.toString('hex')));
}

function fixture(
  base: Omit<WireFixture, 'fromGo' | 'toGo' | 'capturedAt' | 'gzip'>,
  fromGo: Buffer[],
  toGo: Buffer[] | undefined,
  gzip = false,
): WireFixture {
  const framesFromGo = yamuxSoFar(fromGo);
  return {
    ...base,
    capturedAt: new Date().toISOString().slice(0, 10),
    ...(gzip ? { gzip: true } : {}),
    notes: {
      ...base.notes,
      yamuxFromGo: framesFromGo?.map((f) => `${f.type} ${f.flags.join('|') || '-'} stream=${f.streamId} length=${f.length}`),
    },
    fromGo: encodeChunks(fromGo, gzip),
    ...(toGo ? { toGo: encodeChunks(toGo, gzip) } : {}),
  };
}

async function captureGoAgent(): Promise<void> {
  const srv = await startTestServer({ 'proxy.timeout': 30_000 });
  const service = await startInteropService();
  const upstreamPort = Number(new URL(srv.upstreamUrl).port);
  const source = goVersion();

  const recordAgent = async (endpointId: string, exchange: () => Promise<void>) => {
    const tap = await new Tap(upstreamPort).start();
    const agent = await startGoPikoAgent(['http', endpointId, String(service.port), '--connect.url', tap.url, '--access-log=false']);
    await waitForUpstreams(srv.server.upstreams, endpointId, 1, WAIT_MS);
    await exchange();
    // Go's FIN ends its side of the stream; ours follows at once.
    await tap.until('the Go agent FIN', () => finOn(yamuxSoFar(tap.fromClient), 2));
    await tap.until('our FIN', () => finOn(yamuxSoFar(tap.fromServer), 2));
    const result = { fromGo: [...tap.fromClient], toGo: [...tap.fromServer] };
    await agent.stop();
    tap.close();
    return { result, args: `piko ${agent.args.join(' ')}` };
  };

  {
    const { result, args } = await recordAgent('cap-get', async () => {
      const reply = await request(`${srv.proxyUrl}/hello`, { headers: { 'x-piko-endpoint': 'cap-get' } });
      if (reply.status !== 200) throw new Error(`GET /hello: ${reply.status}`);
    });
    write(
      TUNNEL_FIXTURES,
      'go-agent-get.json',
      fixture(
        {
          description:
            "A Go agent (`piko agent http`) connecting to our upstream port and answering one GET on stream 2, which our server opened. fromGo: the gorilla upgrade request, then masked binary frames: the yamux ACK, the HTTP response as the agent's Go reverse proxy writes it, its FIN.",
          source: `${source}; ${args.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')}; request: GET /hello with x-piko-endpoint: cap-get through our proxy`,
          endpointId: 'cap-get',
          notes: { response: '200, body "hello from the service"' },
        },
        result.fromGo,
        result.toGo,
      ),
    );
  }

  {
    const size = 1024 * 1024;
    const { result, args } = await recordAgent('cap-upload', async () => {
      const reply = await hashedRequest(`${srv.proxyUrl}/digest?reply=0`, {
        method: 'POST',
        headers: { 'x-piko-endpoint': 'cap-upload', 'content-length': String(size) },
        body: patternStream(size, 9),
      });
      if (reply.status !== 200) throw new Error(`POST /digest: ${reply.status}`);
    });
    // Our side carried the 1 MiB body; only its request head is kept.
    write(
      TUNNEL_FIXTURES,
      'go-agent-upload.json',
      fixture(
        {
          description:
            'A Go agent reading a 1 MiB request body on stream 2 from our server: the window updates Go grants as its reader consumes (it never lets more than 256 KiB be in flight), then the response and FIN. toGo is left out (1 MiB).',
          source: `${source}; ${args.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')}; request: POST /digest?reply=0, Content-Length 1048576, through our proxy`,
          endpointId: 'cap-upload',
          notes: { requestBodyBytes: size, response: '200 with x-request-bytes: 1048576 and an empty body' },
        },
        result.fromGo,
        undefined,
      ),
    );
  }

  {
    const size = 320 * 1024;
    const { result, args } = await recordAgent('cap-download', async () => {
      const reply = await hashedRequest(`${srv.proxyUrl}/fill?size=${size}&byte=97`, { headers: { 'x-piko-endpoint': 'cap-download' } });
      if (reply.status !== 200 || reply.body.bytes !== size) throw new Error(`GET /fill: ${reply.status} ${reply.body.bytes}`);
    });
    write(
      TUNNEL_FIXTURES,
      'go-agent-download.json',
      fixture(
        {
          description:
            'A Go agent sending a 320 KiB response body on stream 2: it sends 256 KiB, waits for our window update, then the rest. Chunks are gzip+base64 (the body is 320 KiB of "a").',
          source: `${source}; ${args.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')}; request: GET /fill?size=327680&byte=97 through our proxy`,
          endpointId: 'cap-download',
          notes: { responseBodyBytes: size, responseByte: 'a' },
        },
        result.fromGo,
        result.toGo,
        true,
      ),
    );
  }

  {
    // Go's `piko forward`, through our proxy port, to our SDK listener echoing.
    const listener = await listen('cap-forward', { url: srv.upstreamUrl });
    listener.on('connection', (conn) => conn.pipe(conn));
    await waitForUpstreams(srv.server.upstreams, 'cap-forward', 1, WAIT_MS);
    const tap = await new Tap(Number(new URL(srv.proxyUrl).port)).start();
    const [port] = (await freeLoopbackPorts(1)) as [number];
    const forward = await startGoPikoForward(['tcp', `127.0.0.1:${port}`, 'cap-forward', '--connect.url', tap.url]);
    await waitForTcpPort(port, WAIT_MS);
    const socket = net.connect({ port, host: '127.0.0.1' });
    await once(socket, 'connect');
    socket.write('hello from go forward');
    const [echoed] = (await once(socket, 'data')) as [Buffer];
    if (echoed.toString() !== 'hello from go forward') throw new Error(`echo: ${echoed.toString()}`);
    socket.end();
    await tap.until('the forward closing its WebSocket', () => tap.clientEnded);
    write(PROXY_FIXTURES, 'go-forward-tcp.json', {
      description:
        'Go `piko forward tcp` dialling our proxy port for one local TCP connection: the gorilla upgrade request to /_piko/v1/tcp/cap-forward, masked binary frames carrying "hello from go forward", and how it hangs up when the local client ends. toGo: our 101 and the echoed bytes.',
      source: `${source}; piko forward tcp 127.0.0.1:PORT cap-forward --connect.url http://127.0.0.1:PORT; local client wrote "hello from go forward", read the echo, ended`,
      capturedAt: new Date().toISOString().slice(0, 10),
      endpointId: 'cap-forward',
      fromGo: encodeChunks(tap.fromClient, false),
      toGo: encodeChunks(tap.fromServer, false),
    });
    socket.destroy();
    await forward.stop();
    tap.close();
    listener.destroy();
  }

  await service.close();
  await stopAllTestServers();
}

async function captureGoServer(): Promise<void> {
  const go = await startGoPikoServer();
  const source = goVersion();
  const recordListener = async (endpointId: string, handler: http.RequestListener, exchange: () => Promise<void>) => {
    const tap = await new Tap(Number(new URL(go.upstreamUrl).port)).start();
    const app = http.createServer(handler);
    const listener: Listener = await listen(endpointId, { url: tap.url });
    serve(listener, app);
    await waitForGoPikoEndpoint(go.adminUrl, endpointId, { timeoutMs: WAIT_MS });
    await exchange();
    await tap.until('the Go server FIN', () => finOn(yamuxSoFar(tap.fromServer), 2));
    await tap.until('our FIN', () => finOn(yamuxSoFar(tap.fromClient), 2));
    const result = { fromGo: [...tap.fromServer], toGo: [...tap.fromClient] };
    listener.destroy();
    app.closeAllConnections();
    tap.close();
    return result;
  };

  {
    const result = await recordListener(
      'cap-server-get',
      (req, res) => {
        res.setHeader('content-type', 'text/plain');
        res.end(`hello from ts ${req.url}`);
      },
      async () => {
        const reply = await request(`${go.proxyUrl}/from-go?x=1`, {
          headers: { 'x-piko-endpoint': 'cap-server-get', 'x-custom': 'yes', 'user-agent': 'capture' },
        });
        if (reply.status !== 200) throw new Error(`GET via Go: ${reply.status}`);
      },
    );
    write(
      TUNNEL_FIXTURES,
      'go-server-get.json',
      fixture(
        {
          description:
            "The Go server opening stream 2 on our SDK listener's session and writing one GET as Go's http.Transport does. fromGo: the 101 answer to our upgrade, then unmasked binary frames: SYN (a window update with delta 0), the request head, and after our response its FIN. toGo: our upgrade request and masked frames.",
          source: `${source}; piko server; request: GET /from-go?x=1 with x-piko-endpoint: cap-server-get, x-custom: yes, user-agent: capture on its proxy port`,
          endpointId: 'cap-server-get',
          notes: { ourResponse: '200 "hello from ts /from-go?x=1"' },
        },
        result.fromGo,
        result.toGo,
      ),
    );
  }

  {
    const size = 320 * 1024;
    const result = await recordListener(
      'cap-server-post',
      (req, res) => {
        let bytes = 0;
        req.on('data', (c: Buffer) => (bytes += c.length));
        req.on('end', () => res.end(`got ${bytes}`));
      },
      async () => {
        const reply = await request(`${go.proxyUrl}/upload`, {
          method: 'POST',
          headers: { 'x-piko-endpoint': 'cap-server-post', 'content-type': 'application/octet-stream' },
          body: Buffer.alloc(size, 0x62),
        });
        if (reply.body !== `got ${size}`) throw new Error(`POST via Go: ${reply.status} ${reply.body}`);
      },
    );
    write(
      TUNNEL_FIXTURES,
      'go-server-post.json',
      fixture(
        {
          description:
            'The Go server writing a POST with a 320 KiB body on stream 2 to our SDK listener: 256 KiB, then the rest only after our window update. Chunks are gzip+base64 (the body is 320 KiB of "b").',
          source: `${source}; piko server; request: POST /upload, Content-Length 327680, with x-piko-endpoint: cap-server-post on its proxy port`,
          endpointId: 'cap-server-post',
          notes: { requestBodyBytes: size, requestByte: 'b', ourResponse: '200 "got 327680"' },
        },
        result.fromGo,
        result.toGo,
        true,
      ),
    );
  }
  await go.stop();
}

const pings = (frames: YamuxFrameSummary[] | undefined, flag: 'SYN' | 'ACK'): boolean =>
  frames?.some((f) => f.type === 'ping' && f.flags.includes(flag)) ?? false;

/**
 * Idle sessions until both sides have pinged once (Go: every 30 s): the Go
 * agent with our server, and our SDK listener with the Go server, side by side.
 */
async function captureKeepalive(): Promise<void> {
  const source = goVersion();
  const keepaliveMs = 45_000;
  const srv = await startTestServer();
  const go = await startGoPikoServer();
  const agentTap = await new Tap(Number(new URL(srv.upstreamUrl).port)).start();
  const serverTap = await new Tap(Number(new URL(go.upstreamUrl).port)).start();
  const agent = await startGoPikoAgent(['http', 'cap-idle', '1', '--connect.url', agentTap.url]);
  const listener = await listen('cap-idle', { url: serverTap.url });
  await Promise.all([
    waitForUpstreams(srv.server.upstreams, 'cap-idle', 1, WAIT_MS),
    waitForGoPikoEndpoint(go.adminUrl, 'cap-idle', { timeoutMs: WAIT_MS }),
  ]);
  const bothPinged = (tap: Tap): boolean =>
    pings(yamuxSoFar(tap.fromClient), 'SYN') &&
    pings(yamuxSoFar(tap.fromClient), 'ACK') &&
    pings(yamuxSoFar(tap.fromServer), 'SYN') &&
    pings(yamuxSoFar(tap.fromServer), 'ACK');
  await Promise.all([
    agentTap.until('pings both ways with the Go agent', () => bothPinged(agentTap), keepaliveMs),
    serverTap.until('pings both ways with the Go server', () => bothPinged(serverTap), keepaliveMs),
  ]);
  write(
    TUNNEL_FIXTURES,
    'go-agent-keepalive.json',
    fixture(
      {
        description:
          'An idle Go agent session with our server until both have pinged: Go sends Ping(SYN, id) on stream 0 every 30 s and answers our Ping(SYN) with Ping(ACK) carrying the same id.',
        source: `${source}; piko agent http cap-idle 1 --connect.url http://127.0.0.1:PORT; left idle`,
        endpointId: 'cap-idle',
      },
      [...agentTap.fromClient],
      [...agentTap.fromServer],
    ),
  );
  write(
    TUNNEL_FIXTURES,
    'go-server-keepalive.json',
    fixture(
      {
        description: 'An idle session between the Go server and our SDK listener until both have pinged (fromGo starts with the 101).',
        source: `${source}; piko server; our SDK listen('cap-idle') left idle`,
        endpointId: 'cap-idle',
      },
      [...serverTap.fromServer],
      [...serverTap.fromClient],
    ),
  );
  listener.destroy();
  await agent.stop();
  await go.stop();
  agentTap.close();
  serverTap.close();
  await stopAllTestServers();
}

async function main(): Promise<void> {
  process.stdout.write(`${goPikoBinary()}\n`);
  mkdirSync(TUNNEL_FIXTURES, { recursive: true });
  mkdirSync(PROXY_FIXTURES, { recursive: true });
  try {
    await captureGoAgent();
    await captureGoServer();
    // About 30 s: Go's keepalive interval is fixed.
    if (!process.argv.includes('--skip-keepalive')) await captureKeepalive();
  } finally {
    await stopAllGoPiko();
    await stopAllTestServers();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

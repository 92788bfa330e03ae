import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Session } from '../../../dataplane/tunnel/session';
import type { TunnelStream } from '../../../dataplane/tunnel/stream';
import { WebSocketTransport } from '../../../dataplane/tunnel/ws-transport';

/**
 * The upstream port of a Piko server reduced to what the SDK sees, with
 * knobs the real server does not have: answer the next handshakes with a
 * chosen status, send GoAway, drop a session, restart on the same port.
 * Each accepted WebSocket runs a yamux server session, exactly as the real
 * upstream server does, and the test opens streams on it.
 */
export class FakeUpstreamServer extends EventEmitter<{ session: [session: Session, req: http.IncomingMessage] }> {
  /** Statuses to answer the next handshakes with, in order, before accepting again. */
  readonly rejections: { status: number; error?: string; contentType?: string }[] = [];
  /** When set, handshakes without `Authorization: Bearer <token>` get 401 `invalid token`. */
  requireToken: string | undefined;
  /** Every upgrade request received, accepted or not. */
  readonly upgrades: http.IncomingMessage[] = [];
  readonly sessions = new Set<Session>();
  /** When set, upgrades to `/_piko/v1/tcp/...` get a bare WebSocket handed here instead of a session. */
  onTcp: ((ws: WebSocket, req: http.IncomingMessage) => void) | undefined;
  private server: http.Server | https.Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly sockets = new Set<net.Socket>();
  private portNumber = 0;

  private constructor(private readonly tlsOptions: https.ServerOptions | undefined) {
    super();
    this.server = this.createServer();
  }

  static async start(options: { tls?: https.ServerOptions; port?: number } = {}): Promise<FakeUpstreamServer> {
    const fake = new FakeUpstreamServer(options.tls);
    await fake.listen(options.port ?? 0);
    return fake;
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `${this.tlsOptions ? 'https' : 'http'}://127.0.0.1:${this.portNumber}`;
  }

  /** Resolves with the next session accepted. */
  async nextSession(timeoutMs = 10_000): Promise<Session> {
    const [session] = await once(this, 'session', { signal: AbortSignal.timeout(timeoutMs) });
    return session as Session;
  }

  /** Opens a stream on `session` and sends one HTTP request over it. */
  async request(
    session: Session,
    path: string,
    options: { method?: string; body?: string; headers?: http.OutgoingHttpHeaders } = {},
  ): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
    const stream = await session.open();
    return requestOverStream(stream, path, options);
  }

  /** Stops listening and cuts every connection; `restart` listens again on the same port. */
  async stop(): Promise<void> {
    for (const session of this.sessions) session.close();
    for (const socket of this.sockets) socket.destroy();
    if (!this.server.listening) return;
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
  }

  async restart(): Promise<void> {
    this.server = this.createServer();
    await this.listen(this.portNumber);
  }

  private createServer(): http.Server | https.Server {
    const server = this.tlsOptions ? https.createServer(this.tlsOptions) : http.createServer();
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('secureConnection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    return server;
  }

  private async listen(port: number): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.portNumber = (this.server.address() as AddressInfo).port;
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.push(req);
    socket.on('error', () => socket.destroy());
    const rejection = this.rejections.shift();
    if (rejection) {
      reject(socket, rejection.status, rejection.error, rejection.contentType);
      return;
    }
    if (this.requireToken !== undefined && req.headers.authorization !== `Bearer ${this.requireToken}`) {
      reject(socket, 401, 'invalid token');
      return;
    }
    if (this.onTcp && req.url?.startsWith('/_piko/v1/tcp/')) {
      const onTcp = this.onTcp;
      this.wss.handleUpgrade(req, socket, head, (ws) => onTcp(ws, req));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new Session(new WebSocketTransport(ws), { role: 'server', keepaliveIntervalMs: 0 });
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      this.emit('session', session, req);
    });
  }
}

function reject(socket: Duplex, status: number, error: string | undefined, contentType = 'application/json'): void {
  const body = error === undefined ? '' : contentType === 'application/json' ? JSON.stringify({ error }) + '\n' : error;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
      `Content-Type: ${contentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** One HTTP/1.1 request over an already open stream, as the Piko server sends it. */
export function requestOverStream(
  stream: TunnelStream,
  path: string,
  options: { method?: string; body?: string; headers?: http.OutgoingHttpHeaders } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      method: options.method ?? 'GET',
      path,
      headers: { host: 'endpoint.example.com', connection: 'close', ...options.headers },
      createConnection: () => stream as unknown as net.Socket,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request over stream timed out')));
    req.end(options.body);
  });
}

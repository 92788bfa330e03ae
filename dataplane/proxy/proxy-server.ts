import type http from 'node:http';
import { EventEmitter, once } from 'node:events';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { authenticate, endpointPermitted, PIKO_AUTHORIZATION_HEADER } from '../auth/authenticate';
import type { EndpointTraffic } from '../metrics/endpoint-traffic';
import { AuthError, isAuthError } from '../auth/errors';
import type { TokenVerifier } from '../auth/verifier';
import { answerClientError, writeJsonError, writeJsonErrorToSocket } from '../http/json-error';
import { websocketHandshakeError } from '../http/websocket-handshake';
import { clampDelay, startTimer } from '../time/timer';
import type { AccessLogger } from '../log/access-log';
import type { Logger } from '../log/logger';
import type { LimitTripped } from '../metrics/limit-metrics';
import { isMessageTooLarge } from '../tunnel/ws-transport';
import type { ProxyMetrics } from '../metrics/proxy-metrics';
import type { UpstreamMetrics } from '../metrics/upstream-metrics';
import { isProxyError, ProxyError } from '../http/proxy-error';
import { hasRequestBody } from '../http/replay';
import { endpointIdFromHeaders, endpointIdFromTcpPath, validateEndpointId } from '../protocol/endpoint-id';
import { FORWARDED_HEADER, TCP_PATH } from '../protocol/wire';
import { proxyHttp, proxyUpgrade, type ConnectionUpstream, type ExchangeResult } from '../http/reverse-proxy';
import { upstreamRequestHeaders } from './headers';
import type { Route, Router } from './router';

export interface ProxyServerOptions {
  router: Router;
  verifier?: TokenVerifier;
  /** Per-request timeout (proxy.timeout); 0 disables. */
  timeoutMs: number;
  proto: 'http' | 'https';
  logger: Logger;
  accessLog?: AccessLogger;
  metrics?: ProxyMetrics;
  upstreamMetrics?: UpstreamMetrics;
  /**
   * Checks the credential of a request marked as forwarded by another node.
   * Without it (a single node) the marker only means "serve locally", as in
   * Piko, which gives a client nothing it could not get anyway.
   */
  verifyForwarded?: (req: http.IncomingMessage) => boolean;
  /** Largest WebSocket message on the raw TCP path (`proxy.tcp.max_message_bytes`). */
  maxTcpMessageBytes?: number;
  /** Longest a response may take from the request's headers on (`proxy.http.write_timeout`); 0 or unset = none. */
  writeTimeoutMs?: number;
  onLimit?: LimitTripped;
  /** Each endpoint's recent requests, for the status page. */
  traffic?: EndpointTraffic;
}

/** As the upstream port: Piko's clients send what one read returns, 32 KiB at a time. */
export const DEFAULT_MAX_TCP_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The proxy port: resolves each request's endpoint, authenticates it, and
 * forwards HTTP, WebSocket upgrades and raw TCP (over WebSocket) to an
 * upstream through the router.
 */
export class ProxyServer {
  private readonly wss: WebSocketServer;
  private inFlight = 0;
  private readonly exchanges = new WeakMap<Duplex, AbortController>();
  private readonly drainEvents = new EventEmitter<{ idle: [] }>();
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly options: ProxyServerOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      // ws buffers each message whole before handing it on; its default would let one client hold 100 MiB.
      maxPayload: options.maxTcpMessageBytes ?? DEFAULT_MAX_TCP_MESSAGE_BYTES,
    });
  }

  /** Requests in progress, HTTP and upgraded connections alike. */
  get activeRequests(): number {
    return this.inFlight + this.upgraded.size;
  }

  /** Resolves once no ordinary HTTP request is in flight, or at the deadline with false. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return true;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), clampDelay(timeoutMs));
    try {
      while (this.inFlight > 0) await once(this.drainEvents, 'idle', { signal: ac.signal });
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends every upgraded connection (WebSocket, TCP): they have no natural end to wait for. */
  closeUpgraded(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const start = performance.now();
    this.inFlight++;
    this.options.metrics?.requestsInFlight.inc();
    // Errors Node reports on the connection (a request timeout) must end
    // this exchange through the forwarder, which knows what was sent.
    const abort = new AbortController();
    this.exchanges.set(req.socket, abort);
    const writeTimeoutMs = this.options.writeTimeoutMs ?? 0;
    const writeTimer =
      writeTimeoutMs > 0
        ? startTimer(writeTimeoutMs, () => abort.abort(new ProxyError('ERR_UPSTREAM_TIMEOUT', { detail: 'write timeout' })))
        : undefined;
    res.once('close', () => {
      writeTimer?.clear();
      if (this.exchanges.get(req.socket) === abort) this.exchanges.delete(req.socket);
    });
    void this.serveHttp(req, res, abort.signal, start).then(
      (result) => this.record(req, result, start),
      (err: unknown) => {
        this.options.logger.error('proxy request failed', { error: String(err) });
        writeJsonError(res, 500, 'internal error');
        this.record(req, { status: 500, responseHeaders: {}, responseBytes: 0 }, start);
      },
    );
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const tcpEndpoint = req.url?.startsWith(TCP_PATH) ? endpointIdFromTcpPath(req.url) : undefined;
    const work = req.url?.startsWith(TCP_PATH) ? this.serveTcp(req, socket, head, tcpEndpoint) : this.serveUpgrade(req, socket, head);
    void work.catch((err: unknown) => {
      this.options.logger.error('proxy upgrade failed', { error: String(err) });
      writeJsonErrorToSocket(socket, 500, 'internal error');
    });
  }

  /**
   * A client error Node found on a proxy connection: a malformed request,
   * headers over the limit, or `proxy.http.read-timeout` passing. With an
   * exchange under way on the connection it ends through that exchange (a
   * 408 if nothing was answered yet, else a cut body), never as raw bytes
   * in the middle of a response.
   */
  handleClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const exchange = this.exchanges.get(socket);
    if (exchange) {
      this.exchanges.delete(socket);
      exchange.abort(
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new ProxyError('ERR_REQUEST_TIMEOUT')
          : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err, detail: 'client connection failed' }),
      );
      return;
    }
    if (answerClientError(err, socket) === 431) this.options.onLimit?.('proxy.http.max_header_bytes');
  }

  private async serveHttp(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    signal: AbortSignal,
    start: number,
  ): Promise<ExchangeResult> {
    const admitted = await this.admit(req, endpointIdFromHeaders(req.headers));
    if (!admitted.ok) {
      writeJsonError(res, admitted.status, admitted.message);
      return { status: admitted.status, responseHeaders: res.getHeaders(), responseBytes: 0 };
    }
    let attempts = 0;
    const result = await proxyHttp(req, res, {
      // A request with no body can follow the stream's SYN without waiting a
      // round trip for the ACK: should the upstream refuse the stream, the
      // request is whole in `req` and goes again on another one. It counts
      // once, where its first attempt went.
      connect: () => this.route(admitted.endpointId, req, { early: !hasRequestBody(req), counted: attempts++ === 0 }),
      ...this.upstreamRequest(req),
      // A keep-alive connection to another node may drop just as the request
      // goes out on it; a tunnel stream may be refused (an upstream going away).
      retries: 2,
      timeoutMs: this.options.timeoutMs,
      signal,
    });
    this.logFailure(admitted.endpointId, result.error);
    // Counted where the client came in, so that summing over pods counts each request once; and
    // only for an endpoint that exists, so that made-up Host headers cannot fill the table.
    if (this.options.traffic && !this.isForwarded(req) && result.error?.code !== 'ERR_NO_UPSTREAM') {
      this.options.traffic.record(admitted.endpointId, result.status, performance.now() - start);
    }
    return result;
  }

  private async serveUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const admitted = await this.admit(req, endpointIdFromHeaders(req.headers));
    if (!admitted.ok) {
      writeJsonErrorToSocket(socket, admitted.status, admitted.message);
      return;
    }
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    const result = await proxyUpgrade(req, socket, head, {
      connect: () => this.dedicated(admitted.endpointId, req),
      ...this.upstreamRequest(req),
      timeoutMs: this.options.timeoutMs,
    });
    this.logFailure(admitted.endpointId, result.error);
  }

  /**
   * Raw TCP over WebSocket (`piko forward`, the SDK's dial). The upstream
   * stream is opened before the handshake is answered, so "no upstream" is
   * a 502 the client can read rather than a WebSocket that dies.
   */
  private async serveTcp(req: http.IncomingMessage, socket: Duplex, head: Buffer, endpointId: string | undefined): Promise<void> {
    // A request that cannot become a WebSocket is refused before it costs a tunnel stream.
    const handshakeError = websocketHandshakeError(req);
    if (handshakeError) {
      writeJsonErrorToSocket(socket, handshakeError.status, handshakeError.message);
      return;
    }
    const admitted = await this.admit(req, endpointId);
    if (!admitted.ok) {
      writeJsonErrorToSocket(socket, admitted.status, admitted.message);
      return;
    }
    let routed: Route & ConnectionUpstream;
    try {
      routed = await this.dedicated(admitted.endpointId, req);
    } catch (err) {
      const proxyErr = isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err });
      this.logFailure(admitted.endpointId, proxyErr);
      writeJsonErrorToSocket(socket, proxyErr.status, proxyErr.publicMessage);
      return;
    }
    if (routed.via !== 'local') {
      // Another node holds the upstream: it answers the handshake itself.
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      await proxyUpgrade(req, socket, head, {
        connect: () => Promise.resolve(routed),
        ...this.upstreamRequest(req),
        timeoutMs: this.options.timeoutMs,
      });
      return;
    }
    const conn = routed.conn;
    if (socket.destroyed) {
      conn.destroy();
      return;
    }
    // The stream is ours until ws hands us the WebSocket; should ws refuse
    // the handshake after all, it destroys the socket and we the stream.
    let handedOver = false;
    socket.once('close', () => {
      if (!handedOver) conn.destroy();
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      handedOver = true;
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      const wsStream = createWebSocketStream(ws, { allowHalfOpen: false });
      // WebSocket has no half-close, so when either side ends both close (as Piko).
      pipeline(wsStream, conn, wsStream, (err) => {
        if (isMessageTooLarge(err)) this.options.onLimit?.('proxy.tcp.max_message_bytes');
        wsStream.destroy();
        conn.destroy();
      });
    });
  }

  /**
   * What goes upstream: the request target and its end-to-end headers. With
   * proxy auth on, x-piko-authorization is our credential, not the app's (it
   * is the header clients use to keep their own Authorization for the app):
   * it goes no further than the node that serves the request, unlike Piko,
   * which hands the client's token to whoever runs the upstream.
   */
  private upstreamRequest(req: http.IncomingMessage): { path: string; headers: http.OutgoingHttpHeaders } {
    const headers = upstreamRequestHeaders(req.headers, { remoteAddress: req.socket.remoteAddress, proto: this.options.proto });
    if (this.options.verifier !== undefined) delete headers[PIKO_AUTHORIZATION_HEADER];
    return { path: req.url ?? '/', headers };
  }

  /** A route with a connection of its own, for upgrades and raw TCP. */
  private async dedicated(endpointId: string, req: http.IncomingMessage): Promise<Route & ConnectionUpstream> {
    const routed = await this.route(endpointId, req, { dedicated: true });
    if (routed.conn === undefined) throw new ProxyError('ERR_UPSTREAM_UNREACHABLE', { detail: 'no dedicated connection' });
    return routed;
  }

  private async route(
    endpointId: string,
    req: http.IncomingMessage,
    how: { dedicated?: boolean; early?: boolean; counted?: boolean } = {},
  ): Promise<Route> {
    const { counted = true, ...rest } = how;
    let routed = await this.options.router.connect(endpointId, { forwarded: this.isForwarded(req), ...rest });
    const token = req.headers[PIKO_AUTHORIZATION_HEADER];
    // Node joins a repeated custom header into one string.
    if (routed.via !== 'local' && this.options.verifier !== undefined && typeof token === 'string') {
      // The node that serves it checks the token again.
      routed = { ...routed, headers: { ...routed.headers, [PIKO_AUTHORIZATION_HEADER]: token } };
    }
    if (!counted) return routed;
    if (routed.via === 'local') this.options.upstreamMetrics?.upstreamRequestsTotal.inc();
    else this.options.upstreamMetrics?.remoteRequestsTotal.inc({ node_id: routed.via });
    return routed;
  }

  private isForwarded(req: http.IncomingMessage): boolean {
    return req.headers[FORWARDED_HEADER] === 'true';
  }

  private async admit(
    req: http.IncomingMessage,
    endpointId: string | undefined,
  ): Promise<{ ok: true; endpointId: string } | { ok: false; status: number; message: string }> {
    const refuse = (err: ProxyError | AuthError) => ({
      ok: false as const,
      status: err.status,
      message: err instanceof ProxyError ? err.publicMessage : err.message,
    });
    if (endpointId === undefined) return refuse(new ProxyError('ERR_MISSING_ENDPOINT'));
    if (validateEndpointId(endpointId) !== undefined) return refuse(new ProxyError('ERR_INVALID_ENDPOINT'));
    if (this.isForwarded(req) && this.options.verifyForwarded && !this.options.verifyForwarded(req)) {
      return refuse(new ProxyError('ERR_FORWARD_UNAUTHORIZED'));
    }
    try {
      const token = await authenticate(this.options.verifier, req.headers);
      if (!endpointPermitted(token, endpointId)) return refuse(new AuthError('ERR_AUTH_ENDPOINT_NOT_PERMITTED'));
    } catch (err) {
      if (isAuthError(err)) return refuse(err);
      throw err;
    }
    return { ok: true, endpointId };
  }

  private logFailure(endpointId: string, err: ProxyError | undefined): void {
    if (!err) return;
    const cause =
      err.cause instanceof Error ? `${(err.cause as NodeJS.ErrnoException).code ?? err.cause.name}: ${err.cause.message}` : undefined;
    this.options.logger.warn('proxy request failed', { endpointId, code: err.code, error: err.message, ...(cause ? { cause } : {}) });
  }

  private record(req: http.IncomingMessage, result: ExchangeResult, start: number): void {
    this.inFlight--;
    if (this.inFlight === 0) this.drainEvents.emit('idle');
    const durationMs = performance.now() - start;
    const { metrics, accessLog } = this.options;
    if (metrics) {
      const labels = { status: String(result.status), method: req.method ?? '' };
      metrics.requestsInFlight.dec();
      metrics.requestsTotal.inc(labels);
      metrics.requestLatency.observe(labels, durationMs / 1000);
      const reqSize = Number(req.headers['content-length'] ?? 0);
      if (Number.isFinite(reqSize)) metrics.requestSize.observe(reqSize);
      metrics.responseSize.observe(result.responseBytes);
    }
    if (!accessLog) return;
    const endpointId = endpointIdFromHeaders(req.headers);
    accessLog.log({
      method: req.method ?? '',
      host: req.headers.host ?? '',
      path: req.url ?? '',
      proto: `HTTP/${req.httpVersion}`,
      status: result.status,
      durationMs,
      requestHeaders: req.headers,
      responseHeaders: result.responseHeaders,
      ...(endpointId !== undefined ? { endpointId } : {}),
    });
  }
}

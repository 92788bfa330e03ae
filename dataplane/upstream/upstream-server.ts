import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticateTenant, endpointPermitted } from '../auth/authenticate';
import { AuthError, isAuthError } from '../auth/errors';
import type { TenantVerifiers } from '../auth/tenant-verifiers';
import type { Token } from '../auth/verifier';
import { validateEndpointId } from '../protocol/endpoint-id';
import { ENDPOINT_URL_HEADER, UPSTREAM_PATH } from '../protocol/wire';
import { writeJsonError, writeJsonErrorToSocket } from '../http/json-error';
import type { Logger } from '../log/logger';
import type { LimitTripped } from '../metrics/limit-metrics';
import type { UpstreamMetrics } from '../metrics/upstream-metrics';
import type { LocalUpstreams } from '../registry/local-upstreams';
import type { Upstream } from '../registry/upstream';
import { Session, type SessionOptions } from '../tunnel/session';
import type { TunnelStream } from '../tunnel/stream';
import { isMessageTooLarge, WebSocketTransport } from '../tunnel/ws-transport';
import { startTimer } from '../time/timer';

export interface UpstreamServerOptions {
  upstreams: LocalUpstreams;
  /** Undefined means auth is off; tenants are chosen by `x-piko-tenant-id`. */
  auth?: TenantVerifiers;
  /** Close sessions when their token expires (Piko's default). */
  disconnectOnExpiry: boolean;
  logger: Logger;
  metrics?: UpstreamMetrics;
  session?: Omit<SessionOptions, 'role'>;
  /** Largest WebSocket message accepted; yamux frames never need more than a window. */
  maxMessageBytes?: number;
  onLimit?: LimitTripped;
  /** The URL clients reach an endpoint at, told to its agents in ENDPOINT_URL_HEADER; none when unknown. */
  endpointUrl?: (endpointId: string) => string | undefined;
}

/** A connected upstream: one WebSocket carrying one yamux session for one endpoint. */
class TunnelUpstream implements Upstream {
  readonly id = randomUUID();

  constructor(
    readonly endpointId: string,
    readonly session: Session,
    readonly remoteAddress: string | undefined,
  ) {}

  get available(): boolean {
    return this.session.available;
  }

  open(options?: { early?: boolean }): Promise<TunnelStream> {
    return this.session.open(options);
  }
}

/**
 * The upstream port: agents connect out to it over WebSocket, and each
 * connection becomes an upstream for one endpoint until it closes.
 */
export class UpstreamServer {
  private readonly wss: WebSocketServer;
  private readonly live = new Set<TunnelUpstream>();
  private accepting = true;
  private readonly endpointUrls = new WeakMap<http.IncomingMessage, string>();

  constructor(private readonly options: UpstreamServerOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.maxMessageBytes ?? 4 * 1024 * 1024,
      clientTracking: false,
    });
    this.wss.on('headers', (headers, req) => {
      const url = this.endpointUrls.get(req);
      if (url !== undefined) headers.push(`${ENDPOINT_URL_HEADER}: ${url}`);
    });
  }

  /** Plain HTTP on the upstream port: only the upgrade path exists. */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url?.startsWith(UPSTREAM_PATH)) {
      writeJsonError(res, 400, 'expected a websocket upgrade');
    } else {
      writeJsonError(res, 404, 'not found');
    }
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    void this.upgrade(req, socket, head).catch((err: unknown) => {
      this.options.logger.error('upstream upgrade failed', { error: String(err) });
      writeJsonErrorToSocket(socket, 500, 'internal error');
    });
  }

  /** Stops taking new upstreams; those connected stay. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Sends GoAway on every session: our agents take it as the cue to connect
   * to another node now, while streams in flight here finish.
   */
  goAwayAll(): void {
    for (const upstream of this.live) upstream.session.goAway();
  }

  closeAll(): void {
    for (const upstream of [...this.live]) upstream.session.close();
  }

  get sessionCount(): number {
    return this.live.size;
  }

  private async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = req.url ?? '';
    const endpointId = parseEndpoint(url);
    if (endpointId === undefined) {
      writeJsonErrorToSocket(socket, 404, 'not found');
      return;
    }
    const invalid = validateEndpointId(endpointId);
    if (invalid !== undefined) {
      writeJsonErrorToSocket(socket, 400, `invalid endpoint id: ${invalid}`);
      return;
    }
    if (!this.accepting) {
      // 503 is retryable for Piko's agents: they come back through the load balancer.
      writeJsonErrorToSocket(socket, 503, 'shutting down');
      return;
    }
    let token: Token | undefined;
    try {
      token = await authenticateTenant(this.options.auth, req.headers);
    } catch (err) {
      if (isAuthError(err)) {
        writeJsonErrorToSocket(socket, err.status, err.message);
        return;
      }
      throw err;
    }
    if (!endpointPermitted(token, endpointId)) {
      const refused = new AuthError('ERR_AUTH_ENDPOINT_NOT_PERMITTED');
      writeJsonErrorToSocket(socket, refused.status, refused.message);
      return;
    }
    if (socket.destroyed) return;
    const publicUrl = this.options.endpointUrl?.(endpointId);
    if (publicUrl !== undefined) this.endpointUrls.set(req, publicUrl);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, endpointId, token, req));
  }

  private accept(ws: WebSocket, endpointId: string, token: Token | undefined, req: http.IncomingMessage): void {
    const { logger, upstreams, metrics } = this.options;
    const session = new Session(new WebSocketTransport(ws), {
      openTimeoutMs: 10_000,
      ...this.options.session,
      role: 'server',
    });
    const upstream = new TunnelUpstream(endpointId, session, req.socket.remoteAddress);
    const log = logger.child({
      endpointId,
      upstreamId: upstream.id,
      clientIp: upstream.remoteAddress,
      ...(token?.subject === undefined ? {} : { subject: token.subject }),
    });
    this.live.add(upstream);
    upstreams.add(upstream);
    metrics?.connectedUpstreams.inc();
    log.info('upstream connected');

    // Tokens are often valid for months: a plain setTimeout would fire at once past 24.8 days.
    const expiryTimer =
      this.options.disconnectOnExpiry && token?.expiry
        ? startTimer(token.expiry.getTime() - Date.now(), () => {
            log.info('upstream token expired');
            session.close();
          }).unref()
        : undefined;

    // The upstream said GoAway: it takes no new streams, so stop routing to
    // it now; streams under way finish on the session.
    session.on('goaway', () => {
      log.debug('upstream sent go away');
      upstreams.remove(upstream);
    });
    // Counted every time, logged once per session and limit: a full session refuses every request.
    const logged = new Set<string>();
    session.on('limit', (limit) => {
      this.options.onLimit?.(`upstream.session.${limit}`);
      if (logged.has(limit)) return;
      logged.add(limit);
      log.warn('upstream session limit reached', { limit: `upstream.session.${limit}` });
    });
    session.on('close', (err) => {
      expiryTimer?.clear();
      if (isMessageTooLarge(err?.cause)) this.options.onLimit?.('upstream.max_message_bytes');
      this.live.delete(upstream);
      upstreams.remove(upstream);
      metrics?.connectedUpstreams.dec();
      if (err) log.info('upstream disconnected', { reason: err.message, code: err.code });
      else log.info('upstream disconnected');
    });
  }
}

function parseEndpoint(url: string): string | undefined {
  if (!url.startsWith(UPSTREAM_PATH)) return undefined;
  const query = url.indexOf('?');
  const segment = url.slice(UPSTREAM_PATH.length, query < 0 ? undefined : query);
  if (segment === '' || segment.includes('/')) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

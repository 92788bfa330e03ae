import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Listener } from '../client/listener';
import { serve } from '../client/serve';
import type { ListenerConfig } from '../config/agent-config';
import { answerClientError } from '../http/json-error';
import { proxyHttp, proxyUpgrade, type ExchangeResult, type PoolUpstream } from '../http/reverse-proxy';
import { createAccessLogger, type AccessLogger } from '../log/access-log';
import type { Logger } from '../log/logger';
import { approximateRequestSize, startRequest, type EndpointLabel, type ProxyMetrics } from '../metrics/proxy-metrics';
import { clientTlsOptions } from '../net/tls';
import { localRequestHeaders, localRequestPath } from './local-headers';
import { BodyTap, type CapturedRequest, type ReplaySource, type RequestLog } from './inspector/request-log';

// The proxy's default header cap (proxy.http.max_header_bytes) plus room for the headers it adds.
const AGENT_MAX_HEADER_BYTES = 1024 * 1024 + 64 * 1024;

export interface HttpListenerDeps {
  /** The agent's logger; this listener logs as `proxy.http` and `proxy.http.access`. */
  logger: Logger;
  metrics: ProxyMetrics<EndpointLabel>;
  /** Position in `listeners[]`, for error messages about its TLS files. */
  index: number;
  /** The request inspector's log, when --inspect.bind-addr is set: every exchange is recorded there. */
  inspector?: RequestLog;
}

/**
 * One HTTP listener of the agent: a Node HTTP server on the connections
 * Piko routes to the endpoint, reverse-proxying each request to the local
 * service as Piko's agent does (Host kept, X-Forwarded-For appended, 502
 * `upstream unreachable` / 504 `upstream timeout`, WebSocket upgrades
 * passed through), with keep-alive connections to the service.
 */
export class HttpListenerProxy {
  private readonly server: http.Server;
  private readonly target: URL;
  private readonly agent: http.Agent;
  /** Every ordinary request borrows a connection from here. */
  private readonly pooled: PoolUpstream;
  /** TLS toward an https service; empty for http. */
  private readonly tls: tls.ConnectionOptions;
  private readonly log: Logger;
  private readonly accessLog: AccessLogger;

  constructor(
    private readonly config: ListenerConfig,
    private readonly deps: HttpListenerDeps,
  ) {
    this.target = new URL(config.addr);
    const secure = this.target.protocol === 'https:';
    const hc = config.httpClient;
    const pool: http.AgentOptions = {
      keepAlive: true,
      keepAliveMsecs: hc.keepAliveTimeoutMs,
      // Idle connections are closed after this; active ones are bounded by the request timeout.
      timeout: hc.idleConnTimeoutMs,
      // Piko: -1 is "no limit".
      maxFreeSockets: hc.maxIdleConns < 0 ? Infinity : hc.maxIdleConns,
      scheduling: 'lifo',
    };
    this.tls = secure ? clientTlsOptions(config.tls, `listeners[${deps.index}].tls`) : {};
    this.agent = secure ? new https.Agent({ ...pool, ...this.tls }) : new http.Agent(pool);
    const hostname = this.target.hostname.replace(/^\[|\]$/g, '');
    const port = this.target.port === '' ? (secure ? 443 : 80) : Number(this.target.port);
    this.pooled = { pool: { agent: this.agent, secure, host: hostname, port } };
    this.log = deps.logger.child({ subsystem: 'proxy.http', endpointId: config.endpointId });
    this.accessLog = createAccessLogger(deps.logger.child({ subsystem: 'proxy.http.access' }), config.accessLog);
    // Piko's agent runs Go's http.Server with no timeouts: the peer is the
    // Piko server, which bounds requests itself. Node's request timeout
    // would cut long uploads, so it is off too.
    this.server = http.createServer(
      // The proxy admits headers up to its own cap (1 MiB by default); at
      // Node's 16 KiB default, requests it let through would fail here.
      { requestTimeout: 0, maxHeaderSize: AGENT_MAX_HEADER_BYTES },
      (req, res) => this.handle(req, res),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  attach(listener: Listener): void {
    serve(listener, this.server);
  }

  /**
   * GoAway, so the server routes nothing new here; requests in flight
   * finish within the grace period, the rest are cut. Then the pool to the
   * local service closes.
   */
  async shutdown(listener: Listener, gracePeriodMs: number): Promise<void> {
    await listener.close({ timeoutMs: gracePeriodMs });
    this.agent.destroy();
  }

  /** Cuts everything at once. */
  destroy(listener: Listener): void {
    listener.destroy();
    this.agent.destroy();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const startedAtMs = Date.now();
    const record = startRequest(this.deps.metrics, req.method ?? '', this.config.endpointId);
    const path = localRequestPath(this.target, req.url ?? '/');
    const headers = localRequestHeaders(req.headers, req.socket.remoteAddress, this.target);
    const inspector = this.deps.inspector;
    // Taps only with the inspector on: without it a request costs what it did.
    const taps = inspector === undefined ? undefined : tapExchange(req, res, inspector.limits.maxBodyBytes);
    void proxyHttp(req, res, {
      connect: () => Promise.resolve(this.pooled),
      path,
      headers,
      // The local service may close an idle keep-alive connection just as a request goes out on it.
      retries: 2,
      // The limit covers connecting to the service and waiting for its
      // response head; after that it bounds silence, so a streamed response
      // is not cut while it keeps flowing.
      timeoutMs: this.config.timeoutMs,
    }).then((outcome) => {
      this.done(req, outcome, started, record);
      if (inspector === undefined || taps === undefined) return;
      inspector.add({
        endpointId: this.config.endpointId,
        startedAtMs,
        durationMs: performance.now() - started,
        method: req.method ?? '',
        path: req.url ?? '/',
        status: outcome.status,
        localRequestHeaders: headers,
        localPath: path,
        responseHeaders: outcome.responseHeaders,
        requestBody: taps.request,
        responseBody: taps.response,
        ...(outcome.error === undefined ? {} : { error: outcome.error.message }),
      });
    });
  }

  /**
   * Sends a captured request to the local service again, as it was sent the first time, and
   * records the exchange (marked as a replay of `replayOf`).
   */
  async replay(source: ReplaySource, replayOf: string, inspector: RequestLog): Promise<CapturedRequest> {
    const started = performance.now();
    const startedAtMs = Date.now();
    const requestBody = new BodyTap(inspector.limits.maxBodyBytes);
    requestBody.add(source.body);
    const responseBody = new BodyTap(inspector.limits.maxBodyBytes);
    const { secure, host, port } = this.pooled.pool;
    const outcome = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; error?: string }>((resolve) => {
      const send = secure ? https.request : http.request;
      const req = send(
        {
          host,
          port,
          method: source.method,
          path: source.path,
          headers: source.headers,
          agent: this.agent,
          timeout: this.config.timeoutMs,
        },
        (res) => {
          res.on('data', (c: Buffer) => responseBody.add(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          res.on('error', (err) => resolve({ status: res.statusCode ?? 0, headers: res.headers, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('upstream timeout')));
      req.on('error', (err) => resolve({ status: 502, headers: {}, error: err.message }));
      req.end(source.body);
    });
    return inspector.add({
      endpointId: this.config.endpointId,
      startedAtMs,
      durationMs: performance.now() - started,
      method: source.method,
      path: source.path,
      status: outcome.status,
      localRequestHeaders: source.headers,
      localPath: source.path,
      responseHeaders: outcome.headers,
      requestBody,
      responseBody,
      replayOf,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    });
  }

  /**
   * Upgrades (WebSocket) go to the service on a fresh connection, never a
   * pooled one. Piko exempts `Upgrade: websocket` from the request timeout;
   * we keep it until the service answers the upgrade, so a service that
   * never answers does not hold the stream forever, and drop it after.
   */
  private handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const record = startRequest(this.deps.metrics, req.method ?? '', this.config.endpointId);
    socket.on('error', (err) => this.log.debug('upgraded connection error', { error: err.message }));
    void proxyUpgrade(req, socket, head, {
      connect: () => Promise.resolve({ conn: this.dialService() }),
      path: localRequestPath(this.target, req.url ?? '/'),
      headers: localRequestHeaders(req.headers, req.socket.remoteAddress, this.target),
      timeoutMs: this.config.timeoutMs,
      // Piko counts and logs an upgraded request once it is over, with its whole duration.
    }).then((outcome) => this.done(req, outcome, started, record));
  }

  /** A connection of its own to the local service, for an upgrade. */
  private dialService(): net.Socket {
    const { host, port, secure } = this.pooled.pool;
    if (!secure) return net.connect({ host, port });
    return tls.connect({ ...this.tls, host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
  }

  private done(req: http.IncomingMessage, outcome: ExchangeResult, started: number, record: ReturnType<typeof startRequest>): void {
    if (outcome.error) {
      const { error } = outcome;
      this.log.warn('proxy request', { error: error.cause instanceof Error ? error.cause.message : error.message });
    }
    record({ status: outcome.status, requestBytes: approximateRequestSize(req), responseBytes: outcome.responseBytes });
    this.logAccess(req, outcome, started);
  }

  private logAccess(req: http.IncomingMessage, outcome: ExchangeResult, started: number): void {
    this.accessLog.log({
      method: req.method ?? '',
      host: req.headers.host ?? '',
      path: req.url ?? '',
      proto: `HTTP/${req.httpVersion}`,
      status: outcome.status,
      durationMs: performance.now() - started,
      requestHeaders: req.headers,
      responseHeaders: outcome.responseHeaders,
      endpointId: this.config.endpointId,
    });
  }
}

/** Copies of the first bytes of a request's body and of its response's, as they flow. */
function tapExchange(req: http.IncomingMessage, res: http.ServerResponse, maxBodyBytes: number): { request: BodyTap; response: BodyTap } {
  const request = new BodyTap(maxBodyBytes);
  const response = new BodyTap(maxBodyBytes);
  // Attached once the proxy starts reading the body (a 'data' listener before that would start
  // the flow itself, and the chunks would go by before the proxy's pipe was there); from then on
  // it sees every chunk and changes nothing of the flow.
  req.once('resume', () => req.on('data', (chunk: Buffer) => request.add(chunk)));
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
  const tap = (chunk: unknown): void => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) response.add(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    tap(chunk);
    return write(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'function') tap(chunk);
    return end(chunk, ...rest);
  }) as typeof res.end;
  return { request, response };
}

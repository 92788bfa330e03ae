import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Listener } from '../client/listener';
import { joinStreams } from '../client/join-streams';
import { serve } from '../client/serve';
import type { ListenerConfig } from '../config/agent-config';
import { abortStartedResponse } from '../http/abort-response';
import { answerClientError, writeJsonError, writeJsonErrorToSocket } from '../http/json-error';
import { createAccessLogger, type AccessLogger } from '../log/access-log';
import type { Logger } from '../log/logger';
import { approximateRequestSize, startRequest, type EndpointLabel, type ProxyMetrics } from '../metrics/proxy-metrics';
import { clientTlsOptions } from '../net/tls';
import { isProxyError, ProxyError } from '../proxy/errors';
import { downstreamResponseHeaders } from '../proxy/headers';
import { clampDelay, startTimer, type Timer } from '../time/timer';
import { localRequestHeaders, localRequestPath } from './local-headers';

// The proxy's default header cap (proxy.http.max_header_bytes) plus room for the headers it adds.
const AGENT_MAX_HEADER_BYTES = 1024 * 1024 + 64 * 1024;

export interface HttpListenerDeps {
  /** The agent's logger; this listener logs as `proxy.http` and `proxy.http.access`. */
  logger: Logger;
  metrics: ProxyMetrics<EndpointLabel>;
  /** Position in `listeners[]`, for error messages about its TLS files. */
  index: number;
}

interface Outcome {
  status: number;
  responseHeaders: http.OutgoingHttpHeaders;
  responseBytes: number;
  error?: ProxyError;
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
  /** TLS toward an https service; empty for http. */
  private readonly tls: tls.ConnectionOptions;
  private readonly log: Logger;
  private readonly accessLog: AccessLogger;
  private readonly request: typeof http.request;

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
    this.request = secure ? https.request : http.request;
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
    const record = startRequest(this.deps.metrics, req.method ?? '', this.config.endpointId);
    void this.forward(req, res).then((outcome) => {
      record({ status: outcome.status, requestBytes: approximateRequestSize(req), responseBytes: outcome.responseBytes });
      this.logAccess(req, outcome, started);
    });
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const timeoutMs = this.config.timeoutMs;
      let responseBytes = 0;
      // What went to the client, for the access log: headers written as a raw list are not in getHeaders().
      let responseHeaders: http.OutgoingHttpHeaders = {};
      let settled = false;
      let timer: Timer | undefined;
      const finish = (status: number, error?: ProxyError): void => {
        if (settled) return;
        settled = true;
        timer?.clear();
        resolve({ status, responseHeaders, responseBytes, ...(error ? { error } : {}) });
      };

      const outgoing = this.request({
        protocol: this.target.protocol,
        hostname: this.target.hostname.replace(/^\[|\]$/g, ''),
        port: this.target.port,
        method: req.method,
        path: localRequestPath(this.target, req.url ?? '/'),
        headers: localRequestHeaders(req.headers, req.socket.remoteAddress, undefined),
        agent: this.agent,
      });
      const fail = (err: ProxyError): void => {
        if (settled) return;
        this.log.warn('proxy request', { error: err.cause instanceof Error ? err.cause.message : err.message });
        outgoing.destroy();
        const headersSent = res.headersSent;
        writeJsonError(res, err.status, err.publicMessage);
        if (!headersSent) responseHeaders = { ...JSON_ERROR_HEADERS };
        finish(headersSent ? res.statusCode : err.status, err);
      };

      // The limit covers connecting to the service and waiting for its
      // response head; after that it bounds silence, so a streamed response
      // is not cut while it keeps flowing.
      if (timeoutMs > 0) timer = startTimer(timeoutMs, () => fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')));

      outgoing.on('error', (err) => fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err })));
      outgoing.on('response', (local) => {
        timer?.clear();
        if (timeoutMs > 0) outgoing.setTimeout(clampDelay(timeoutMs), () => outgoing.destroy(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
        const raw = downstreamResponseHeaders(local.rawHeaders, false);
        responseHeaders = rawToHeaders(raw);
        res.writeHead(local.statusCode ?? 502, local.statusMessage, raw);
        local.on('data', (chunk: Buffer) => (responseBytes += chunk.length));
        local.on('error', () => abortStartedResponse(res));
        local.pipe(res);
      });
      res.once('finish', () => finish(res.statusCode));
      res.once('close', () => {
        if (res.writableFinished) return;
        // The Piko server went away mid-request: stop the local request too.
        outgoing.destroy();
        finish(res.headersSent ? res.statusCode : 502);
      });
      req.pipe(outgoing);
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
    let settled = false;
    // Set once the service answered: from then on the exchange ends by itself.
    let answered = false;
    let timer: Timer | undefined;
    const done = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      timer?.clear();
      record({ status: outcome.status, requestBytes: approximateRequestSize(req), responseBytes: outcome.responseBytes });
      this.logAccess(req, outcome, started);
    };
    socket.on('error', (err) => this.log.debug('upgraded connection error', { error: err.message }));

    const outgoing = this.request({
      protocol: this.target.protocol,
      hostname: this.target.hostname.replace(/^\[|\]$/g, ''),
      port: this.target.port,
      method: req.method,
      path: localRequestPath(this.target, req.url ?? '/'),
      headers: localRequestHeaders(req.headers, req.socket.remoteAddress, req.headers.upgrade),
      agent: false,
      ...this.tls,
    });
    const fail = (err: ProxyError): void => {
      if (settled || answered) return;
      this.log.warn('proxy request', { error: err.cause instanceof Error ? err.cause.message : err.message });
      outgoing.destroy();
      writeJsonErrorToSocket(socket, err.status, err.publicMessage);
      done({ status: err.status, responseHeaders: { ...JSON_ERROR_HEADERS }, responseBytes: 0, error: err });
    };
    if (this.config.timeoutMs > 0) {
      timer = startTimer(this.config.timeoutMs, () => fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
    }
    outgoing.on('error', (err) => fail(new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err })));
    socket.once('close', () => {
      if (settled || answered) return;
      // The Piko server went away before the service answered.
      outgoing.destroy();
      done({ status: 502, responseHeaders: {}, responseBytes: 0 });
    });

    outgoing.on('upgrade', (local: http.IncomingMessage, localSocket: net.Socket, localHead: Buffer) => {
      answered = true;
      timer?.clear();
      const raw = downstreamResponseHeaders(local.rawHeaders, true);
      socket.write(`HTTP/1.1 ${local.statusCode ?? 101} ${local.statusMessage ?? ''}\r\n${headerLines(raw)}\r\n`);
      if (localHead.length > 0) socket.write(localHead);
      if (head.length > 0) localSocket.write(head);
      let bytes = 0;
      localSocket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      // Piko counts and logs an upgraded request once it is over, with its whole duration.
      void joinStreams(socket, localSocket).then(() =>
        done({ status: local.statusCode ?? 101, responseHeaders: rawToHeaders(raw), responseBytes: bytes }),
      );
    });
    outgoing.on('response', (local) => {
      // The service declined the upgrade: relay its answer as an ordinary response.
      answered = true;
      timer?.clear();
      const raw = downstreamResponseHeaders(local.rawHeaders, false);
      socket.write(`HTTP/1.1 ${local.statusCode ?? 502} ${local.statusMessage ?? ''}\r\n${headerLines(raw)}connection: close\r\n\r\n`);
      let bytes = 0;
      local.on('data', (chunk: Buffer) => (bytes += chunk.length));
      local.pipe(socket);
      local.once('close', () =>
        done({ status: local.statusCode ?? 502, responseHeaders: rawToHeaders(raw), responseBytes: bytes }),
      );
      socket.once('close', () => local.destroy());
    });
    outgoing.end();
  }

  private logAccess(req: http.IncomingMessage, outcome: Outcome, started: number): void {
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

// The headers writeJsonError sends, as the access log shows them.
const JSON_ERROR_HEADERS: http.OutgoingHttpHeaders = {
  'content-type': 'application/json',
  'x-content-type-options': 'nosniff',
};

function headerLines(raw: readonly string[]): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) out += `${raw[i] as string}: ${raw[i + 1] as string}\r\n`;
  return out;
}

function rawToHeaders(raw: readonly string[]): http.OutgoingHttpHeaders {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) (out[(raw[i] as string).toLowerCase()] ??= []).push(raw[i + 1] as string);
  return out;
}

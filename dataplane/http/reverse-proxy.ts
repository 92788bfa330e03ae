import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { joinStreams } from '../net/join-streams';
import { clampDelay, startTimer, type Timer } from '../time/timer';
import { abortStartedResponse } from './abort-response';
import { downstreamResponseHeaders } from './hop-by-hop';
import { writeJsonError, writeJsonErrorToSocket } from './json-error';
import { isProxyError, ProxyError } from './proxy-error';
import { hasRequestBody, shouldReplay } from './replay';

/**
 * The one reverse-proxy core: the proxy port forwards through it to a
 * tunnel stream or another node, the agent to its local service. It owns
 * everything between "a request arrived" and "the exchange is over": the
 * upstream connection, the timeouts, relaying heads, bodies, 1xx and
 * trailers with backpressure, replaying a request whose pooled connection
 * dropped, and ending the client's side honestly on every failure (our
 * JSON error if nothing was sent yet, else a visibly cut body).
 */

/** A keep-alive HTTP client pool to one host: another node's proxy port, or the agent's local service. */
export interface HttpPool {
  readonly agent: http.Agent;
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
}

/** Headers this hop adds for one upstream (e.g. the inter-node credential). */
type HopHeaders = { readonly headers?: Readonly<Record<string, string>> | undefined };

/**
 * What Node's HTTP client needs of a connection beyond a Duplex: an idle
 * timer that emits 'timeout', as net.Socket and tunnel streams have. The
 * core's idle timeout after the response head rests on it.
 */
export type Connection = Duplex & { setTimeout(ms: number, callback?: () => void): unknown };

/** A connection that carries this one exchange and is closed after it: a tunnel stream, a fresh socket. */
export type ConnectionUpstream = HopHeaders & {
  readonly conn: Connection;
  readonly pool?: undefined;
  /**
   * Set when the connection was handed over before the far end accepted it
   * (a tunnel stream opened without waiting for its ACK): whether an error
   * means the far end never took the request, which may then go again on
   * a new connect(), within `retries`, if it has no body.
   */
  readonly refused?: (err: Error) => boolean;
};
/** A pool the request borrows a connection from. */
export type PoolUpstream = HopHeaders & { readonly pool: HttpPool; readonly conn?: undefined };
export type Upstream = ConnectionUpstream | PoolUpstream;

interface CommonOptions {
  /** Request target sent upstream. */
  path: string;
  /**
   * End-to-end request headers for the upstream (hop-by-hop ones already
   * removed, forwarding headers set). Connection and Upgrade are the
   * core's: it knows whether the connection is pooled, dedicated or upgraded.
   */
  headers: http.OutgoingHttpHeaders;
  /**
   * Time allowed for the upstream's response head (504 after it), then the
   * longest the exchange may sit idle. 0 turns both off. There is no cap on
   * a whole response, so streams and long bodies are not cut.
   */
  timeoutMs: number;
}

export interface ProxyHttpOptions extends CommonOptions {
  connect(): Promise<Upstream>;
  /**
   * How many more times a request may go when its pooled connection
   * dropped before any response, under replay.ts's rule, or its own
   * connection was refused (ConnectionUpstream.refused). Other connections
   * of their own are never replayed: whoever opened one knows it works.
   */
  retries?: number;
  /** Aborts the exchange; a ProxyError as the reason is what the client is told. */
  signal?: AbortSignal;
}

export interface ProxyUpgradeOptions extends CommonOptions {
  /** An upgrade becomes a raw pipe, so it needs a connection of its own. */
  connect(): Promise<ConnectionUpstream>;
}

/** How an exchange ended, for access logs and metrics. */
export interface ExchangeResult {
  /** What the client was told; 499 when it left before any answer. */
  status: number;
  /** The response headers the client got (built on first read). */
  readonly responseHeaders: http.OutgoingHttpHeaders;
  /** Body bytes relayed from the upstream (for an upgrade, every byte it sent after the 101). */
  responseBytes: number;
  error?: ProxyError;
}

/** nginx's "client closed request": no answer could reach anyone. */
export const CLIENT_CLOSED_STATUS = 499;

// What an upgrading client may send before the upstream's answer is held
// up to this much, then the client is paused (backpressure, not a drop).
const EARLY_BYTES_MAX = 64 * 1024;

// The headers writeJsonError sends, as an access log shows them.
const JSON_ERROR_HEADERS: Readonly<http.OutgoingHttpHeaders> = {
  'content-type': 'application/json',
  'x-content-type-options': 'nosniff',
};

const NO_HEADERS: Readonly<http.OutgoingHttpHeaders> = {};

/**
 * The response headers as an access log prints them, built from the raw
 * list only when something reads them: most exchanges are logged by no one.
 */
function exchangeResult(
  status: number,
  headers: readonly string[] | Readonly<http.OutgoingHttpHeaders>,
  responseBytes: number,
  error?: ProxyError,
): ExchangeResult {
  let built: http.OutgoingHttpHeaders | undefined;
  const result: ExchangeResult = {
    status,
    responseBytes,
    get responseHeaders(): http.OutgoingHttpHeaders {
      built ??= Array.isArray(headers) ? rawHeaderObject(headers as readonly string[]) : (headers as http.OutgoingHttpHeaders);
      return built;
    },
  };
  if (error) result.error = error;
  return result;
}

/** Proxies one HTTP request; resolves when the exchange is over, never rejects. */
export function proxyHttp(req: http.IncomingMessage, res: http.ServerResponse, options: ProxyHttpOptions): Promise<ExchangeResult> {
  return new Promise((resolve) => new HttpExchange(req, res, options, resolve).start());
}

/**
 * Proxies an HTTP upgrade (WebSocket). After the upstream's 101 the two
 * connections are piped as raw bytes with no timeout, and the exchange is
 * over when both are closed; any other answer is relayed as an ordinary
 * response and the client's connection closed after it.
 */
export function proxyUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: ProxyUpgradeOptions,
): Promise<ExchangeResult> {
  return new Promise((resolve) => new UpgradeExchange(req, socket, head, options, resolve).start());
}

function toProxyError(err: unknown, detail?: string): ProxyError {
  if (isProxyError(err)) return err;
  return new ProxyError('ERR_UPSTREAM_UNREACHABLE', detail === undefined ? { cause: err } : { cause: err, detail });
}

function closedEarly(): ProxyError {
  return new ProxyError('ERR_UPSTREAM_UNREACHABLE', { detail: 'connection closed before a response' });
}

/** A request on a connection of its own. Until the HTTP client has it, the connection is the caller's to destroy. */
function requestOn(
  conn: Connection,
  options: CommonOptions,
  method: string | undefined,
  headers: http.OutgoingHttpHeaders,
): http.ClientRequest {
  return http.request({ method, path: options.path, headers, setHost: false, createConnection: () => conn as net.Socket });
}

class HttpExchange {
  private settled = false;
  private outgoing: http.ClientRequest | undefined;
  // The connection of the current attempt, if it is one of its own: destroyed on every failure path.
  private conn: Connection | undefined;
  private timer: Timer | undefined;
  private responseHeaders: readonly string[] | Readonly<http.OutgoingHttpHeaders> = NO_HEADERS;
  private responseBytes = 0;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly options: ProxyHttpOptions,
    private readonly resolve: (result: ExchangeResult) => void,
  ) {}

  start(): void {
    const { signal, timeoutMs } = this.options;
    if (signal?.aborted) {
      this.onAbort();
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (timeoutMs > 0) this.timer = startTimer(timeoutMs, () => this.fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
    this.res.once('close', () => {
      // The client went away: tear the upstream side down too.
      if (!this.res.writableFinished) this.release();
      this.finish();
    });
    this.attempt(this.options.retries ?? 0);
  }

  private readonly onAbort = (): void => {
    this.fail(toProxyError(this.options.signal?.reason));
  };

  // The connection may die before Node's HTTP client has attached to it (its
  // listeners come a tick later); that must read as unreachable, not as a timeout.
  private readonly onEarlyClose = (): void => {
    if (!this.res.headersSent) this.fail(closedEarly());
  };

  private release(): void {
    this.outgoing?.destroy();
    this.conn?.destroy();
  }

  private finish(error?: ProxyError): void {
    if (this.settled) return;
    this.settled = true;
    this.timer?.clear();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    const { res } = this;
    const status = res.headersSent ? res.statusCode : (error?.status ?? CLIENT_CLOSED_STATUS);
    this.resolve(exchangeResult(status, this.responseHeaders, this.responseBytes, error));
  }

  private fail(err: ProxyError): void {
    if (this.settled) return;
    this.release();
    const { res } = this;
    if (!res.headersSent) {
      // The request was not read to its end, so the connection cannot carry another.
      if (err.code === 'ERR_REQUEST_TIMEOUT') res.setHeader('connection', 'close');
      writeJsonError(res, err.status, err.publicMessage);
      this.responseHeaders = JSON_ERROR_HEADERS;
    } else {
      abortStartedResponse(res);
    }
    this.finish(err);
  }

  private attempt(retriesLeft: number): void {
    this.options.connect().then(
      (upstream) => this.send(upstream, retriesLeft),
      (err: unknown) => this.fail(toProxyError(err)),
    );
  }

  private send(upstream: Upstream, retriesLeft: number): void {
    if (this.settled || this.res.destroyed) {
      upstream.conn?.destroy();
      return;
    }
    const { req, options } = this;
    const headers: http.OutgoingHttpHeaders = { ...options.headers, ...upstream.headers };
    let outgoing: http.ClientRequest;
    // Whether any byte of the request can have left: only once the connection
    // was up when the HTTP client got it (an idle pooled one, or a fresh one
    // that connected). Only a pooled request is ever replayed.
    let mayHaveBeenSent = false;
    if (upstream.pool) {
      const { pool } = upstream;
      this.conn = undefined;
      // The pool's agent decides keep-alive.
      delete headers.connection;
      outgoing = (pool.secure ? https : http).request({
        agent: pool.agent,
        host: pool.host,
        port: pool.port,
        method: req.method,
        path: options.path,
        headers,
        setHost: false,
      });
      outgoing.once('socket', (socket: net.Socket) => {
        if (!socket.connecting) mayHaveBeenSent = true;
        else socket.once('connect', () => (mayHaveBeenSent = true));
      });
    } else {
      const conn = upstream.conn;
      this.conn = conn;
      if (conn.destroyed) {
        this.onEarlyClose();
        return;
      }
      conn.once('close', this.onEarlyClose);
      // Errors reach us through the HTTP client, which listens a tick later.
      conn.on('error', noop);
      // One exchange per connection: a multiplexed tunnel makes keep-alive pointless.
      headers.connection = 'close';
      outgoing = requestOn(conn, options, req.method, headers);
    }
    this.outgoing = outgoing;
    let responded = false;
    outgoing.on('error', (err: NodeJS.ErrnoException) => {
      if (this.settled) return;
      if (!responded && retriesLeft > 0 && this.mayRetry(upstream, err, mayHaveBeenSent)) {
        this.abandon();
        this.attempt(retriesLeft - 1);
        return;
      }
      this.fail(toProxyError(err));
    });
    outgoing.on('information', (info: http.InformationEvent) => this.relayInformation(info));
    outgoing.on('response', (upstreamRes: http.IncomingMessage) => {
      responded = true;
      this.relay(outgoing, upstreamRes);
    });
    if (!hasRequestBody(req)) {
      outgoing.end();
      return;
    }
    // Trailers arrive with the end of the body; they go on before the request ends.
    req.once('end', () => addTrailers(outgoing, req.rawTrailers));
    req.pipe(outgoing);
  }

  private mayRetry(upstream: Upstream, err: NodeJS.ErrnoException, mayHaveBeenSent: boolean): boolean {
    if (upstream.pool) return shouldReplay(this.req, { error: err, mayHaveBeenSent });
    return upstream.refused !== undefined && !hasRequestBody(this.req) && upstream.refused(err);
  }

  /** Lets go of a failed attempt's connection before the next attempt. */
  private abandon(): void {
    this.conn?.removeListener('close', this.onEarlyClose);
    this.conn?.destroy();
    this.conn = undefined;
    this.outgoing = undefined;
  }

  /** 1xx answers before the final one: 103 Early Hints and 102 Processing reach the client, as Go's reverse proxy relays them. */
  private relayInformation(info: http.InformationEvent): void {
    const { res } = this;
    // HTTP/1.0 clients must not see a 1xx; 100 Continue is Node's own to answer.
    if (this.settled || res.headersSent || this.req.httpVersionMinor === 0) return;
    if (info.statusCode === 102) {
      res.writeProcessing();
    } else if (info.statusCode === 103) {
      // Node writes an Early Hints response only with a Link, which is what gives it meaning.
      res.writeEarlyHints(rawHeaderObject(downstreamResponseHeaders(info.rawHeaders, false)));
    }
  }

  private relay(outgoing: http.ClientRequest, upstreamRes: http.IncomingMessage): void {
    const { res, options } = this;
    if (this.settled || res.headersSent) {
      // We already answered (a timeout, a request timeout): this response has nowhere to go.
      outgoing.destroy();
      return;
    }
    this.timer?.clear();
    this.conn?.removeListener('close', this.onEarlyClose);
    if (options.timeoutMs > 0) {
      outgoing.setTimeout(clampDelay(options.timeoutMs), () => outgoing.destroy(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
    }
    const raw = downstreamResponseHeaders(upstreamRes.rawHeaders, false);
    this.responseHeaders = raw;
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, raw);
    upstreamRes.on('data', (chunk: Buffer) => (this.responseBytes += chunk.length));
    // Registered before pipe's own end handler, so trailers go out before the response ends.
    upstreamRes.once('end', () => addTrailers(res, upstreamRes.rawTrailers));
    upstreamRes.on('error', (err: Error) => this.fail(toProxyError(err, 'response cut')));
    upstreamRes.pipe(res);
  }
}

class UpgradeExchange {
  private settled = false;
  // Set once the upstream answered: from then on the exchange ends when its connections do.
  private answered = false;
  private conn: Connection | undefined;
  private outgoing: http.ClientRequest | undefined;
  private timer: Timer | undefined;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly options: ProxyUpgradeOptions,
    private readonly resolve: (result: ExchangeResult) => void,
  ) {}

  start(): void {
    const { socket, options } = this;
    // Until the upstream answers, the usual timeout applies; after a 101, none.
    if (options.timeoutMs > 0) this.timer = startTimer(options.timeoutMs, () => this.fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      if (this.answered) return;
      this.release();
      this.finish(exchangeResult(CLIENT_CLOSED_STATUS, NO_HEADERS, 0));
    });
    // Node hands the socket over paused, where a client's FIN stays unseen
    // behind unread bytes: reading (a bounded amount) is what notices a
    // client that left, which would otherwise hold the stream until the timeout.
    socket.on('data', this.onClientData);
    socket.once('end', this.onClientEnd);
    options.connect().then(
      (upstream) => this.send(upstream),
      (err: unknown) => this.fail(toProxyError(err)),
    );
  }

  private readonly onEarlyClose = (): void => this.fail(closedEarly());

  // Bytes the client sent after its request head before the upstream answered.
  private readonly early: Buffer[] = [];
  private earlyBytes = 0;

  private readonly onClientData = (chunk: Buffer): void => {
    this.early.push(chunk);
    this.earlyBytes += chunk.length;
    if (this.earlyBytes >= EARLY_BYTES_MAX) this.socket.pause();
  };

  private readonly onClientEnd = (): void => {
    if (!this.answered) this.socket.destroy();
  };

  /** Stops reading ahead; what was read goes to the upstream first. */
  private stopReadingAhead(): Buffer[] {
    this.socket.pause();
    this.socket.removeListener('data', this.onClientData);
    this.socket.removeListener('end', this.onClientEnd);
    return this.early.splice(0);
  }

  /**
   * Until the pipe is set up the connection is ours, and every way out
   * before that destroys it: a stream left open here would hold one of the
   * session's streams, and the agent's socket behind it, for good.
   */
  private release(): void {
    this.outgoing?.destroy();
    this.conn?.destroy();
  }

  private finish(result: ExchangeResult): void {
    if (this.settled) return;
    this.settled = true;
    this.timer?.clear();
    this.resolve(result);
  }

  private fail(err: ProxyError): void {
    if (this.settled || this.answered) return;
    this.release();
    writeJsonErrorToSocket(this.socket, err.status, err.publicMessage);
    this.finish(exchangeResult(err.status, JSON_ERROR_HEADERS, 0, err));
  }

  private send(upstream: ConnectionUpstream): void {
    const { req, socket, options } = this;
    const conn = upstream.conn;
    this.conn = conn;
    if (this.settled || socket.destroyed) {
      conn.destroy();
      return;
    }
    if (conn.destroyed) {
      this.onEarlyClose();
      return;
    }
    conn.once('close', this.onEarlyClose);
    conn.on('error', noop);
    const headers: http.OutgoingHttpHeaders = { ...options.headers, ...upstream.headers };
    headers.connection = 'Upgrade';
    if (req.headers.upgrade !== undefined) headers.upgrade = req.headers.upgrade;
    const outgoing = requestOn(conn, options, req.method, headers);
    this.outgoing = outgoing;
    outgoing.on('error', (err) => this.fail(toProxyError(err)));
    outgoing.on('upgrade', (upstreamRes: http.IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer) =>
      this.pipe(upstreamRes, upstreamSocket, upstreamHead),
    );
    outgoing.on('response', (upstreamRes: http.IncomingMessage) => this.relayRefusal(outgoing, upstreamRes));
    outgoing.end();
  }

  private answer(): boolean {
    if (this.settled) return false;
    this.answered = true;
    this.timer?.clear();
    this.conn?.removeListener('close', this.onEarlyClose);
    return true;
  }

  private pipe(upstreamRes: http.IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer): void {
    const { socket, head } = this;
    if (!this.answer()) {
      upstreamSocket.destroy();
      return;
    }
    const early = this.stopReadingAhead();
    const raw = downstreamResponseHeaders(upstreamRes.rawHeaders, true);
    socket.write(statusLine(upstreamRes, 101) + headerLines(raw) + '\r\n');
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstreamSocket.write(head);
    for (const chunk of early) upstreamSocket.write(chunk);
    let bytes = upstreamHead.length;
    upstreamSocket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    void joinStreams(socket, upstreamSocket).then(() => this.finish(exchangeResult(upstreamRes.statusCode ?? 101, raw, bytes)));
  }

  /** The upstream declined the upgrade: relay its answer as an ordinary response and hang up. */
  private relayRefusal(outgoing: http.ClientRequest, upstreamRes: http.IncomingMessage): void {
    const { socket } = this;
    if (!this.answer()) {
      outgoing.destroy();
      return;
    }
    // Nothing the client sends now has a meaning; reading on lets its close be seen.
    this.stopReadingAhead();
    socket.resume();
    const status = upstreamRes.statusCode ?? 502;
    // Transfer-Encoding goes with the other hop-by-hop headers: the body is
    // relayed decoded, ended by its Content-Length or by our close.
    const raw = downstreamResponseHeaders(upstreamRes.rawHeaders, false);
    socket.write(statusLine(upstreamRes, 502) + headerLines(raw) + 'connection: close\r\n\r\n');
    let bytes = 0;
    upstreamRes.on('data', (chunk: Buffer) => (bytes += chunk.length));
    upstreamRes.pipe(socket);
    socket.once('close', () => upstreamRes.destroy());
    upstreamRes.once('close', () => {
      // A body cut short must look cut: no clean end after it.
      if (!upstreamRes.complete) socket.destroy();
      this.finish(exchangeResult(status, raw, bytes));
    });
  }
}

function noop(): void {}

function statusLine(res: http.IncomingMessage, fallback: number): string {
  return `HTTP/1.1 ${res.statusCode ?? fallback} ${res.statusMessage ?? ''}\r\n`;
}

function headerLines(raw: readonly string[]): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) out += `${raw[i] as string}: ${raw[i + 1] as string}\r\n`;
  return out;
}

/** A raw header list as an object, repeated names as arrays: what an access log prints. */
export function rawHeaderObject(raw: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const prior = out[name];
    out[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
  }
  return out;
}

/**
 * Relays trailers (gRPC-Web's status, checksums). Node sends them only on a
 * chunked message and drops them otherwise, as HTTP/1.1 must; the Trailer
 * header that announces them stays hop-by-hop, because Node refuses to send
 * a message that announces trailers it cannot carry.
 */
function addTrailers(to: http.OutgoingMessage, raw: readonly string[]): void {
  if (raw.length === 0) return;
  const trailers: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) trailers.push([raw[i] as string, raw[i + 1] as string]);
  try {
    to.addTrailers(trailers);
  } catch {
    // Node's parser admitted them, so this should not happen; a bad trailer is dropped, never thrown.
  }
}

import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerAgent } from './remote/peer-pool';
import { abortStartedResponse } from '../http/abort-response';
import { writeJsonError, writeJsonErrorToSocket } from '../http/json-error';
import { clampDelay, startTimer, type Timer } from '../time/timer';
import { isProxyError, ProxyError } from './errors';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers';
import { hasRequestBody, shouldReplay } from './replay';

export interface ForwardOptions {
  /**
   * Opens a connection that carries exactly this one request, with any
   * headers this hop must add (e.g. the inter-node credential).
   */
  connect(): Promise<{ conn?: Duplex | undefined; peer?: PeerAgent | undefined; extraHeaders?: Record<string, string> | undefined }>;
  /**
   * Time allowed for the upstream's response head (504 after it), then the
   * longest the exchange may sit idle. 0 turns both off. Unlike Piko there is
   * no cap on a whole response, so streams and long bodies are not cut.
   */
  timeoutMs: number;
  proto: 'http' | 'https';
  /** Aborts the exchange; a ProxyError as the reason is what the client is told. */
  signal?: AbortSignal;
}

/** An upgrade needs a connection of its own: it becomes a raw pipe. */
export interface ForwardUpgradeOptions extends Omit<ForwardOptions, 'connect'> {
  connect(): Promise<{ conn: Duplex; extraHeaders?: Record<string, string> | undefined }>;
}

/** The outcome, for access logs and metrics. */
export interface ForwardResult {
  status: number;
  responseHeaders: http.OutgoingHttpHeaders;
  error?: ProxyError;
}

/**
 * Proxies one HTTP request over a connection from `connect`, streaming both
 * bodies with backpressure. Resolves when the exchange is over. Every way
 * it can end goes through `fail` or the response's close: the connection
 * is destroyed, and the client gets either the upstream's whole response,
 * our JSON error (if nothing was sent yet), or a visibly cut body.
 */
export function forwardHttp(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: ForwardOptions,
): Promise<ForwardResult> {
  return new Promise<ForwardResult>((resolve) => {
    let settled = false;
    let proxyReq: http.ClientRequest | undefined;
    // Ours until the HTTP client takes it; destroyed on every failure path.
    let conn: Duplex | undefined;
    // writeHead with a raw header list leaves res.getHeaders() empty; the
    // access log reads the upstream's headers from here instead.
    let relayedHeaders: http.OutgoingHttpHeaders | undefined;
    // Declared before anything that can settle the exchange: a signal aborted before we began settles it at once.
    let timer: Timer | undefined;
    const finish = (error?: ProxyError): void => {
      if (settled) return;
      settled = true;
      timer?.clear();
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        status: error && !res.headersSent ? error.status : res.statusCode,
        responseHeaders: relayedHeaders ?? res.getHeaders(),
        ...(error ? { error } : {}),
      });
    };
    const fail = (err: ProxyError): void => {
      if (settled) return;
      proxyReq?.destroy();
      conn?.destroy();
      if (!res.headersSent) {
        // The request was not read to its end, so the connection cannot carry another.
        if (err.code === 'ERR_REQUEST_TIMEOUT') res.setHeader('connection', 'close');
        writeJsonError(res, err.status, err.publicMessage);
      } else {
        abortStartedResponse(res);
      }
      finish(err);
    };
    const onAbort = (): void => {
      const reason: unknown = options.signal?.reason;
      fail(isProxyError(reason) ? reason : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: reason }));
    };
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });

    if (options.timeoutMs > 0) timer = startTimer(options.timeoutMs, () => fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
    // The client went away: tear the upstream side down too.
    res.on('close', () => {
      if (!res.writableFinished) {
        proxyReq?.destroy();
        conn?.destroy();
      }
      finish();
    });

    const attempt = (retriesLeft: number): void => {
      options.connect().then(
        (routed) => {
          conn = routed.conn;
          const { peer, extraHeaders } = routed;
          if (settled || res.destroyed) {
            conn?.destroy();
            return;
          }
          // The connection may die before Node's HTTP client has attached to it
          // (its listeners come a tick later); that must read as unreachable,
          // not as a timeout.
          const onEarlyClose = (): void => {
            if (!res.headersSent) fail(new ProxyError('ERR_UPSTREAM_UNREACHABLE', { detail: 'connection closed before a response' }));
          };
          if (conn?.destroyed) {
            onEarlyClose();
            return;
          }
          conn?.once('close', onEarlyClose);
          const headers = upstreamRequestHeaders(req.headers, {
            remoteAddress: req.socket.remoteAddress,
            proto: options.proto,
            upgrade: false,
          });
          Object.assign(headers, extraHeaders);
          let outgoing: http.ClientRequest;
          if (peer) {
            // Another node's keep-alive pool: the connection outlives this request.
            delete headers.connection;
            outgoing = (peer.secure ? https : http).request({
              agent: peer.agent,
              host: peer.host,
              port: peer.port,
              method: req.method,
              path: req.url,
              headers,
              setHost: false,
            });
          } else {
            const own = conn;
            outgoing = http.request({
              method: req.method,
              path: req.url,
              headers,
              setHost: false,
              createConnection: () => own as unknown as net.Socket,
            });
          }
          proxyReq = outgoing;
          // Whether any byte of the request can have left: only once the
          // connection was up when the client got it (a pooled or
          // pre-connected one, or a fresh one that connected).
          let mayHaveBeenSent = false;
          outgoing.once('socket', (socket: net.Socket) => {
            if (!socket.connecting) mayHaveBeenSent = true;
            else socket.once('connect', () => (mayHaveBeenSent = true));
          });
          let responded = false;
          outgoing.on('error', (err: NodeJS.ErrnoException) => {
            if (settled) return;
            if (peer && !responded && retriesLeft > 0 && shouldReplay(req, { error: err, mayHaveBeenSent })) {
              attempt(retriesLeft - 1);
              return;
            }
            fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
          });
          outgoing.on('response', (upstreamRes) => {
            responded = true;
            if (settled || res.headersSent) {
              // We already answered (a timeout, a request timeout): this response has nowhere to go.
              outgoing.destroy();
              return;
            }
            timer?.clear();
            conn?.removeListener('close', onEarlyClose);
            if (options.timeoutMs > 0) {
              outgoing.setTimeout(clampDelay(options.timeoutMs), () => outgoing.destroy(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
            }
            res.writeHead(
              upstreamRes.statusCode ?? 502,
              upstreamRes.statusMessage,
              downstreamResponseHeaders(upstreamRes.rawHeaders, false),
            );
            relayedHeaders = upstreamRes.headers;
            upstreamRes.on('error', (err: Error) =>
              fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err, detail: 'response cut' })),
            );
            upstreamRes.pipe(res);
          });
          if (!hasRequestBody(req)) outgoing.end();
          else req.pipe(outgoing);
        },
        (err: unknown) => {
          fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
        },
      );
    };
    attempt(2);
  });
}

/**
 * Proxies an HTTP upgrade (WebSocket) request. After the upstream's 101 the
 * two sockets are piped as raw bytes with no timeout; any other answer is
 * relayed as an ordinary response. Until the pipe is set up the connection
 * from `connect` belongs to this function, and every way out before that
 * (timeout, client gone, upstream error) destroys it: a stream left open
 * here would hold one of the session's streams and the agent's socket
 * behind it for good.
 */
export function forwardUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: ForwardUpgradeOptions,
): Promise<{ status: number; error?: ProxyError }> {
  return new Promise((resolve) => {
    let settled = false;
    let conn: Duplex | undefined;
    let outgoing: http.ClientRequest | undefined;
    const done = (status: number, error?: ProxyError): void => {
      if (settled) return;
      settled = true;
      timer?.clear();
      resolve(error ? { status, error } : { status });
    };
    const release = (): void => {
      outgoing?.destroy();
      conn?.destroy();
    };
    const fail = (err: ProxyError): void => {
      if (settled) return;
      release();
      writeJsonErrorToSocket(socket, err.status, err.publicMessage);
      done(err.status, err);
    };
    // Until the upgrade completes the usual timeout applies; after it, none.
    const timer =
      options.timeoutMs > 0 ? startTimer(options.timeoutMs, () => fail(new ProxyError('ERR_UPSTREAM_TIMEOUT'))) : undefined;
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      if (settled) return;
      release();
      done(499);
    });

    options.connect().then(
      (routed) => {
        conn = routed.conn;
        if (settled || socket.destroyed) {
          conn.destroy();
          return;
        }
        const own = conn;
        const onEarlyClose = (): void => fail(new ProxyError('ERR_UPSTREAM_UNREACHABLE', { detail: 'connection closed before a response' }));
        if (own.destroyed) {
          onEarlyClose();
          return;
        }
        own.once('close', onEarlyClose);
        const headers = upstreamRequestHeaders(req.headers, {
          remoteAddress: req.socket.remoteAddress,
          proto: options.proto,
          upgrade: true,
        });
        Object.assign(headers, routed.extraHeaders);
        const request = http.request({
          method: req.method,
          path: req.url,
          headers,
          setHost: false,
          createConnection: () => own as unknown as net.Socket,
        });
        outgoing = request;
        request.on('error', (err) => fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err })));
        request.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
          if (settled) {
            upstreamSocket.destroy();
            return;
          }
          own.removeListener('close', onEarlyClose);
          socket.write(statusLine(upstreamRes) + rawHeaderLines(downstreamResponseHeaders(upstreamRes.rawHeaders, true)) + '\r\n');
          if (upstreamHead.length > 0) socket.write(upstreamHead);
          if (head.length > 0) upstreamSocket.write(head);
          upstreamSocket.on('error', () => socket.destroy());
          socket.on('error', () => upstreamSocket.destroy());
          upstreamSocket.on('close', () => socket.destroy());
          socket.on('close', () => upstreamSocket.destroy());
          upstreamSocket.pipe(socket);
          socket.pipe(upstreamSocket);
          done(101);
        });
        request.on('response', (upstreamRes) => {
          if (settled) {
            request.destroy();
            return;
          }
          // The upstream declined the upgrade: relay its answer and hang up.
          own.removeListener('close', onEarlyClose);
          const status = upstreamRes.statusCode ?? 502;
          socket.write(statusLine(upstreamRes) + rawHeaderLines(downstreamResponseHeaders(upstreamRes.rawHeaders, false)) + 'connection: close\r\n\r\n');
          upstreamRes.pipe(socket);
          socket.once('close', () => upstreamRes.destroy());
          done(status);
        });
        request.end();
      },
      (err: unknown) => {
        fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
      },
    );
  });
}

function statusLine(res: http.IncomingMessage): string {
  return `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
}

function rawHeaderLines(raw: readonly string[]): string {
  let out = '';
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i] as string}: ${raw[i + 1] as string}\r\n`;
  return out;
}

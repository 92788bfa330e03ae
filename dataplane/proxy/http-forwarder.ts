import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { PeerAgent } from '../cluster/peer-pool';
import { writeJsonError, writeJsonErrorToSocket } from '../http/json-error';
import { isProxyError, ProxyError } from './errors';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers';

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
 * bodies with backpressure. Resolves when the exchange is over.
 */
export function forwardHttp(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: ForwardOptions,
): Promise<ForwardResult> {
  return new Promise<ForwardResult>((resolve) => {
    let settled = false;
    let proxyReq: http.ClientRequest | undefined;
    // writeHead with a raw header list leaves res.getHeaders() empty; the
    // access log reads the upstream's headers from here instead.
    let relayedHeaders: http.OutgoingHttpHeaders | undefined;
    const finish = (error?: ProxyError): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({
        status: error && !res.headersSent ? error.status : res.statusCode,
        responseHeaders: relayedHeaders ?? res.getHeaders(),
        ...(error ? { error } : {}),
      });
    };
    const fail = (err: ProxyError): void => {
      proxyReq?.destroy();
      if (!res.headersSent) writeJsonError(res, err.status, err.publicMessage);
      else res.destroy();
      finish(err);
    };

    const timer =
      options.timeoutMs > 0
        ? setTimeout(() => fail(new ProxyError('ERR_UPSTREAM_TIMEOUT')), options.timeoutMs)
        : undefined;
    // The client went away: tear the upstream side down too.
    res.on('close', () => {
      if (!res.writableFinished) proxyReq?.destroy();
      finish();
    });

    // A request without a body can be sent again when a reused keep-alive
    // connection to another node turns out to be closing (the node is
    // shutting down): nothing of it reached an upstream, and the client
    // need not see the race.
    const replayable = !hasBody(req);
    const attempt = (retriesLeft: number): void => {
      options.connect().then(
        ({ conn, peer, extraHeaders }) => {
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
            outgoing = http.request({
              method: req.method,
              path: req.url,
              headers,
              setHost: false,
              createConnection: () => conn as unknown as import('node:net').Socket,
            });
          }
          proxyReq = outgoing;
          let responded = false;
          outgoing.on('error', (err: NodeJS.ErrnoException) => {
            if (peer && !responded && replayable && retriesLeft > 0 && isConnectionDrop(err) && !settled) {
              attempt(retriesLeft - 1);
              return;
            }
            fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
          });
          outgoing.on('response', (upstreamRes) => {
            responded = true;
            if (timer) clearTimeout(timer);
            conn?.removeListener('close', onEarlyClose);
            if (options.timeoutMs > 0) {
              outgoing.setTimeout(options.timeoutMs, () => outgoing.destroy(new ProxyError('ERR_UPSTREAM_TIMEOUT')));
            }
            res.writeHead(
              upstreamRes.statusCode ?? 502,
              upstreamRes.statusMessage,
              downstreamResponseHeaders(upstreamRes.rawHeaders, false),
            );
            relayedHeaders = upstreamRes.headers;
            upstreamRes.on('error', () => res.destroy());
            upstreamRes.pipe(res);
          });
          if (replayable) outgoing.end();
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
 * relayed as an ordinary response.
 */
export function forwardUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: ForwardUpgradeOptions,
): Promise<{ status: number; error?: ProxyError }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number, error?: ProxyError): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(error ? { status, error } : { status });
    };
    const fail = (err: ProxyError): void => {
      writeJsonErrorToSocket(socket, err.status, err.publicMessage);
      done(err.status, err);
    };
    // Until the upgrade completes the usual timeout applies; after it, none.
    const timer =
      options.timeoutMs > 0
        ? setTimeout(() => {
            fail(new ProxyError('ERR_UPSTREAM_TIMEOUT'));
          }, options.timeoutMs)
        : undefined;
    socket.on('error', () => socket.destroy());
    socket.on('close', () => done(499));

    options.connect().then(
      ({ conn, extraHeaders }) => {
        if (settled || socket.destroyed) {
          conn.destroy();
          return;
        }
        const onEarlyClose = (): void => {
          if (!settled) fail(new ProxyError('ERR_UPSTREAM_UNREACHABLE', { detail: 'connection closed before a response' }));
        };
        if (conn.destroyed) {
          onEarlyClose();
          return;
        }
        conn.once('close', onEarlyClose);
        const headers = upstreamRequestHeaders(req.headers, {
          remoteAddress: req.socket.remoteAddress,
          proto: options.proto,
          upgrade: true,
        });
        Object.assign(headers, extraHeaders);
        const outgoing = http.request({
          method: req.method,
          path: req.url,
          headers,
          setHost: false,
          createConnection: () => conn as unknown as import('node:net').Socket,
        });
        outgoing.on('error', (err) => {
          if (settled) return;
          conn.destroy();
          fail(new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
        });
        socket.on('close', () => {
          if (!settled) outgoing.destroy();
        });
        outgoing.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
          if (timer) clearTimeout(timer);
          conn.removeListener('close', onEarlyClose);
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
        outgoing.on('response', (upstreamRes) => {
          // The upstream declined the upgrade: relay its answer and hang up.
          if (timer) clearTimeout(timer);
          conn.removeListener('close', onEarlyClose);
          const status = upstreamRes.statusCode ?? 502;
          socket.write(statusLine(upstreamRes) + rawHeaderLines(downstreamResponseHeaders(upstreamRes.rawHeaders, false)) + 'connection: close\r\n\r\n');
          upstreamRes.pipe(socket);
          done(status);
        });
        outgoing.end();
      },
      (err: unknown) => {
        fail(isProxyError(err) ? err : new ProxyError('ERR_UPSTREAM_UNREACHABLE', { cause: err }));
      },
    );
  });
}

/** No body to forward: nothing is lost by sending the request a second time. */
function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The peer closed a reused connection under us, before any response. */
function isConnectionDrop(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNREFUSED';
}

function statusLine(res: http.IncomingMessage): string {
  return `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
}

function rawHeaderLines(raw: readonly string[]): string {
  let out = '';
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i] as string}: ${raw[i + 1] as string}\r\n`;
  return out;
}

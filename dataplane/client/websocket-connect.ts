import type { ClientRequest, IncomingMessage } from 'node:http';
import type tls from 'node:tls';
import WebSocket from 'ws';
import { isLoopbackHost } from '../net/host-port';
import { ENDPOINT_URL_HEADER } from '../protocol/wire';
import { ClientError, statusError } from './errors';
import { ConnectProxyAgent } from './proxy-agent';
import { redactUrl } from './urls';

/** gorilla/websocket's default, which Piko's clients use. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

// Frames from a Piko server are at most one yamux window (256 KiB) plus a
// header; the limit only guards against a peer that is not Piko at all.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
// Enough for any error body Piko writes; the rest is not read.
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * RFC 6455 masks client frames so that a script in a browser cannot choose
 * the bytes a transparent proxy on the path reads, and poison its cache
 * (section 10.3). Our clients are agents, not browsers, but they relay bytes
 * that downstream clients can influence, so the mask stays wherever a
 * plain-text intermediary could read them. Where none can (inside TLS, or on
 * loopback with no proxy) a zero key lets ws write the payload as it is: no
 * copy into a masked buffer and no XOR per byte; the server's unmasking of a
 * zero key leaves the bytes as they are, so any server reads them the same.
 */
function unmaskable(url: string, secure: boolean, proxied: boolean): boolean {
  if (secure) return true;
  if (proxied) return false;
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}

const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

export interface HandshakeOptions {
  headers: Record<string, string>;
  tls?: tls.ConnectionOptions | undefined;
  /** HTTP proxy reached with CONNECT. */
  proxyUrl?: string | undefined;
  handshakeTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** Where the WebSocket's TCP connection ends on the server side. */
export interface PeerAddress {
  address: string | undefined;
  port: number | undefined;
  /** Where clients reach the endpoint, if the server said (ENDPOINT_URL_HEADER on the 101). */
  endpointUrl?: string | undefined;
}

/** Longer than any URL a server of ours sends; a longer value is ignored, not printed. */
const MAX_ENDPOINT_URL = 2048;

function endpointUrlOf(res: IncomingMessage): string | undefined {
  const value = res.headers[ENDPOINT_URL_HEADER];
  if (typeof value !== 'string' || value.length > MAX_ENDPOINT_URL || !/^https?:\/\/[\x21-\x7e]+$/.test(value)) return undefined;
  return value;
}

/**
 * Opens a WebSocket as Piko's Go clients do: no compression, no
 * subprotocol, no Origin header. A non-101 answer rejects with
 * `ERR_CLIENT_HTTP_STATUS` carrying the status and the `error` field of a
 * JSON body; no answer at all rejects with `ERR_CLIENT_CONNECT`.
 *
 * `onOpen` runs synchronously in the open event: ws drops messages that
 * arrive while nobody listens, and the server may send its first frame in
 * the same packet as the 101, so the caller must attach its reader before
 * this function returns control to the event loop.
 */
export function openWebSocket<T>(url: string, options: HandshakeOptions, onOpen: (ws: WebSocket, peer: PeerAddress) => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal } = options;
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const secure = url.startsWith('wss:');
    let agent: ConnectProxyAgent | undefined;
    try {
      agent = options.proxyUrl ? new ConnectProxyAgent(options.proxyUrl, secure ? (options.tls ?? {}) : undefined) : undefined;
    } catch (err) {
      reject(err);
      return;
    }
    const clientOptions: WebSocket.ClientOptions = {
      perMessageDeflate: false,
      handshakeTimeout: options.handshakeTimeoutMs,
      headers: options.headers,
      followRedirects: false,
      maxPayload: MAX_MESSAGE_BYTES,
      // ws hands these to tls.connect; the proxy agent applies them itself inside the tunnel.
      ...(secure && !agent ? (options.tls as WebSocket.ClientOptions | undefined) : undefined),
      ...(agent ? { agent } : {}),
      ...(unmaskable(url, secure, agent !== undefined) ? { generateMask: zeroMask } : {}),
    };
    const ws = new WebSocket(url, clientOptions);
    const where = redactUrl(url);
    let peer: PeerAddress = { address: undefined, port: undefined };
    let settled = false;

    const settle = (err: Error | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      ws.removeListener('upgrade', onUpgrade);
      ws.removeListener('open', onOpenEvent);
      ws.removeListener('unexpected-response', onUnexpectedResponse);
      if (err) {
        // ws reports the teardown of an abandoned handshake as one more error; it is already accounted for.
        ws.on('error', () => undefined);
        if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
        reject(err);
      } else {
        ws.removeListener('error', onError);
        resolve(value as T);
      }
    };

    const onAbort = (): void => settle(abortError(signal as AbortSignal));
    const onUpgrade = (res: IncomingMessage): void => {
      peer = { address: res.socket.remoteAddress, port: res.socket.remotePort, endpointUrl: endpointUrlOf(res) };
    };
    const onOpenEvent = (): void => {
      if (settled) return;
      let value: T;
      try {
        value = onOpen(ws, peer);
      } catch (err) {
        settle(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      settle(undefined, value);
    };
    const onError = (err: Error): void => {
      settle(new ClientError('ERR_CLIENT_CONNECT', `connect ${where}: ${err.message}`, { cause: err }));
    };
    const onUnexpectedResponse = (_req: ClientRequest, res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      readErrorBody(res).then(
        (serverError) => settle(statusError(status, serverError)),
        () => settle(statusError(status, undefined)),
      );
    };

    signal?.addEventListener('abort', onAbort, { once: true });
    ws.on('upgrade', onUpgrade);
    ws.once('open', onOpenEvent);
    ws.on('error', onError);
    ws.once('unexpected-response', onUnexpectedResponse);
  });
}

function abortError(signal: AbortSignal): ClientError {
  const reason: unknown = signal.reason;
  return reason instanceof ClientError ? reason : new ClientError('ERR_CLIENT_ABORTED', 'aborted', { cause: reason });
}

/**
 * The `error` field of a JSON body, as Piko's Go client reads it; failing
 * that, a short plain-text body, so a proxy's or load balancer's own error
 * page still says something.
 */
function readErrorBody(res: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (): void => {
      const text = Buffer.concat(chunks).toString('utf8');
      const type = String(res.headers['content-type'] ?? '');
      if (type.startsWith('application/json')) {
        try {
          const parsed: unknown = JSON.parse(text);
          if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string') {
            resolve((parsed as { error: string }).error);
            return;
          }
        } catch {
          // Not JSON after all: fall through to the text form.
        }
      }
      const trimmed = text.trim();
      resolve(trimmed === '' || trimmed.length > 200 ? undefined : trimmed);
    };
    res.on('data', (chunk: Buffer) => {
      if (size >= MAX_ERROR_BODY_BYTES) return;
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_ERROR_BODY_BYTES) {
        finish();
        res.destroy();
      }
    });
    res.once('end', finish);
    res.once('error', reject);
    res.once('close', finish);
  });
}

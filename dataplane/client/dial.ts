import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { createWebSocketStream } from 'ws';
import { ClientError } from './errors';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, openWebSocket } from './websocket-connect';
import { DEFAULT_PROXY_URL, tcpUrl } from './urls';

export interface DialOptions {
  /** Base URL of the server's PROXY port; `/_piko/v1/tcp/<id>` is appended. Default http://localhost:8000. */
  url?: string;
  /** JWT sent as `Authorization: Bearer`. */
  token?: string;
  /** For https/wss URLs: CA, client certificate (mTLS), servername, rejectUnauthorized. */
  tls?: tls.ConnectionOptions;
  /** HTTP proxy to reach the server through (CONNECT). Piko's dialer has none; ours does. */
  proxyUrl?: string;
  /** Limit on the WebSocket handshake. Default 60 s, as Piko's Go client. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Opens a raw TCP connection to the endpoint through the server's proxy
 * port: one WebSocket per connection, bytes as binary messages. No retry,
 * as in Piko: a non-101 answer (401, 502 `no available upstreams`) rejects
 * with ERR_CLIENT_HTTP_STATUS carrying the status and the server's message.
 *
 * The Duplex has no half-close, like the WebSocket under it: ending it
 * closes the whole connection, and the peer's end ends it.
 */
export async function dial(endpointId: string, options: DialOptions = {}): Promise<Duplex> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return openWebSocket(
    tcpUrl(options.url ?? DEFAULT_PROXY_URL, endpointId),
    {
      headers,
      tls: options.tls,
      proxyUrl: options.proxyUrl,
      handshakeTimeoutMs: options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      signal: options.signal,
    },
    (ws) => {
      // Registered before the stream's own listener so a text message never
      // reaches the reader: Piko's peers treat one as a broken connection.
      // Messages come from the event loop, after `duplex` below exists.
      ws.on('message', (_data, isBinary) => {
        if (!isBinary) duplex.destroy(new ClientError('ERR_CLIENT_PROTOCOL', 'text message on a binary tcp connection'));
      });
      const duplex: Duplex = createWebSocketStream(ws, { allowHalfOpen: false });
      return duplex;
    },
  );
}

import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { Session } from '../../dataplane/tunnel/session';
import { WebSocketTransport } from '../../dataplane/tunnel/ws-transport';

/**
 * An upstream built straight from the tunnel pieces, independent of the SDK
 * and agent: a yamux client session over a WebSocket to the upstream port,
 * whose streams are served by a Node http.Server.
 */
export interface RawUpstream {
  session: Session;
  ws: WebSocket;
  close(): Promise<void>;
}

type StreamHandler = (stream: import('node:stream').Duplex) => void;

/** An upstream whose streams an http.Server serves with `handler`. */
export function connectRawUpstream(
  upstreamUrl: string,
  endpointId: string,
  handler: http.RequestListener,
  headers: Record<string, string> = {},
): Promise<RawUpstream> {
  const server = http.createServer(handler);
  return connectRawStreamUpstream(upstreamUrl, endpointId, (s) => server.emit('connection', s), headers);
}

/** An upstream that hands each stream to `onStream` as raw bytes. */
export async function connectRawStreamUpstream(
  upstreamUrl: string,
  endpointId: string,
  onStream: StreamHandler,
  headers: Record<string, string> = {},
): Promise<RawUpstream> {
  const ws = new WebSocket(`${upstreamUrl.replace(/^http/, 'ws')}/piko/v1/upstream/${endpointId}`, {
    perMessageDeflate: false,
    headers,
  });
  // The session attaches inside the 'open' handler: frames may arrive in the
  // same read as the 101, and ws drops messages nobody listens for.
  const opened = new Promise<Session>((resolve) =>
    ws.once('open', () => {
      const session = new Session(new WebSocketTransport(ws), { role: 'client', keepaliveIntervalMs: 0 });
      session.on('stream', (s) => onStream(s));
      resolve(session);
    }),
  );
  const failed = once(ws, 'unexpected-response').then(async ([, res]) => {
    const response = res as http.IncomingMessage;
    let body = '';
    for await (const chunk of response) body += String(chunk);
    throw new Error(`upstream rejected with ${response.statusCode}: ${body}`);
  });
  const session = await Promise.race([opened, failed]);
  return {
    session,
    ws,
    close: async () => {
      if (session.closed) return;
      const closed = once(ws, 'close');
      session.close();
      await closed;
    },
  };
}

/** A plain HTTP server on 127.0.0.1:0, for the service behind an agent. */
export async function startHttpService(
  handler: http.RequestListener,
): Promise<{ server: http.Server; port: number; url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

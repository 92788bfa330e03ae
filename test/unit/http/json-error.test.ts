import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { writeJsonErrorToSocket } from '../../../dataplane/http/json-error';

const UPGRADE_HEAD =
  'GET /_piko/v1/tcp/db HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer bad\r\n\r\n';

/**
 * An HTTP server that refuses every upgrade, as the proxy and upstream ports
 * refuse a bad token. Resolves with the server side of the next refusal.
 */
async function refusingServer(): Promise<{ port: number; nextRefused(): Promise<net.Socket>; close(): void }> {
  const server = http.createServer();
  const waiting: ((s: net.Socket) => void)[] = [];
  server.on('upgrade', (_req, socket: net.Socket) => {
    socket.on('error', () => socket.destroy());
    writeJsonErrorToSocket(socket, 401, 'invalid token');
    waiting.shift()?.(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    nextRefused: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Resolves when `socket` closes; rejects after `ms`. */
function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('writeJsonErrorToSocket', () => {
  let srv: Awaited<ReturnType<typeof refusingServer>>;
  beforeEach(async () => {
    srv = await refusingServer();
  });
  afterEach(() => srv.close());

  it('sends the status and lets go of the socket once the client closes, even with bytes it sent after it left unread', async () => {
    const refused = srv.nextRefused();
    const client = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    client.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    // On our answer, a last frame and its own close, as a client that does not wait for the 101 would.
    client.once('end', () => client.end('late frame'));
    client.write(UPGRADE_HEAD);
    const serverSide = await refused;
    await once(client, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer.endsWith('\r\n\r\n{"error":"invalid token"}\n')).toBe(true);
    await closedWithin(serverSide, 1_000);
  });

  it('cuts a client that reads the answer and never closes, so refusals cannot pile up sockets', async () => {
    const refused = srv.nextRefused();
    const client = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => undefined);
    client.resume();
    client.write(UPGRADE_HEAD);
    const serverSide = await refused;
    await once(client, 'end');
    try {
      await closedWithin(serverSide, 5_000);
    } finally {
      client.destroy();
    }
  });
});

import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { PeerAgent } from '../../../dataplane/proxy/remote/peer-pool';

/**
 * Another node's proxy port that resets the first connection once told to,
 * as a node shutting down resets what it holds, and answers on the others.
 */
async function peerNode(): Promise<{ port: number; connections: net.Socket[]; close(): void }> {
  const connections: net.Socket[] = [];
  const server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', (socket: net.Socket) => connections.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The next client socket this process opens, as net publishes it. */
function nextClientSocket(): Promise<net.Socket> {
  const channel = diagnostics.channel('net.client.socket');
  return new Promise((resolve) => {
    const onSocket = (message: unknown): void => {
      channel.unsubscribe(onSocket);
      resolve((message as { socket: net.Socket }).socket);
    };
    channel.subscribe(onSocket);
  });
}

describe('a spare connection to another node', () => {
  it('that the node resets before any request takes it is dropped, not an unhandled error that ends the process', async () => {
    const peer = await peerNode();
    const agent = new PeerAgent(`127.0.0.1:${peer.port}`, undefined, 2_000);
    try {
      const client = nextClientSocket();
      await agent.prepare();
      const spare = await client;
      expect(peer.connections).toHaveLength(1);
      // Not events.once, which would listen for 'error' itself.
      const closed = new Promise((resolve) => spare.once('close', resolve));
      (peer.connections[0] as net.Socket).resetAndDestroy();
      // Without an owner listening, this 'error' would be thrown out of the event loop.
      await closed;
      // The next request does not get the dead connection: it opens a fresh one and is answered.
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.get({ agent: agent.agent, host: agent.host, port: agent.port, path: '/' }, (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (body += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
      expect(res).toEqual({ status: 200, body: 'ok' });
      expect(peer.connections).toHaveLength(2);
    } finally {
      agent.destroy();
      peer.close();
    }
  });
});

import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { PeerAgent } from '../../../dataplane/proxy/remote/peer-pool';
import { proxyHttp } from '../../../dataplane/http/reverse-proxy';
import { request } from '../../helpers/http-client';

/**
 * Another node that answers the first request on each connection and then,
 * on the second, reads the whole request and resets the connection: the
 * keep-alive race, as a node that closed an idle connection just as we
 * reused it, with the request already read.
 */
async function resettingPeer(): Promise<{ port: number; seen: string[]; close(): void }> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let served = 0;
    let buffered = '';
    socket.on('data', (c: Buffer) => {
      buffered += c.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        seen.push(head.split(' ', 2).join(' '));
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst');
        else socket.resetAndDestroy();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A proxy port whose every request goes to `peer`, as the router sends requests to the node holding the upstream. */
async function proxyTo(peer: PeerAgent): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    void proxyHttp(req, res, {
      connect: () => Promise.resolve({ pool: peer }),
      path: req.url ?? '/',
      headers: { ...req.headers },
      retries: 2,
      timeoutMs: 5_000,
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('replaying a request after a pooled connection to another node breaks', () => {
  let peer: Awaited<ReturnType<typeof resettingPeer>>;
  let agent: PeerAgent;
  let proxy: Awaited<ReturnType<typeof proxyTo>>;

  beforeEach(async () => {
    peer = await resettingPeer();
    agent = new PeerAgent(`127.0.0.1:${peer.port}`, undefined, 2_000);
    proxy = await proxyTo(agent);
    // The first request leaves one idle keep-alive connection in the pool.
    expect(await request(`${proxy.url}/warm`)).toMatchObject({ status: 200, body: 'first' });
    expect(agent.hasIdle()).toBe(true);
  });

  afterEach(() => {
    proxy.close();
    agent.destroy();
    peer.close();
  });

  it('never sends a bodiless POST twice: the client gets 502 and the peer saw it once', async () => {
    const res = await request(`${proxy.url}/charge`, { method: 'POST' });
    expect(res.status).toBe(502);
    expect(peer.seen.filter((r) => r === 'POST /charge')).toHaveLength(1);
  });

  it('sends a GET again on a fresh connection, where it succeeds', async () => {
    const res = await request(`${proxy.url}/read`);
    expect(res).toMatchObject({ status: 200, body: 'first' });
    expect(peer.seen.filter((r) => r === 'GET /read')).toHaveLength(2);
  });

  it('sends a POST with an Idempotency-Key again, as the client allowed', async () => {
    const res = await request(`${proxy.url}/charge`, { method: 'POST', headers: { 'idempotency-key': 'k-1' } });
    expect(res).toMatchObject({ status: 200, body: 'first' });
    expect(peer.seen.filter((r) => r === 'POST /charge')).toHaveLength(2);
  });
});

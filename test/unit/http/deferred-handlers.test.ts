import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { deferHandlers } from '../../../dataplane/http/deferred-handlers';

describe('deferHandlers', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function bound(upgrades: boolean): Promise<{ server: http.Server; port: number; serve: ReturnType<typeof deferHandlers> }> {
    const server = http.createServer();
    servers.push(server);
    const serve = deferHandlers(server, { upgrades });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, serve, port: (server.address() as AddressInfo).port };
  }

  function get(port: number, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  }

  it('holds requests that arrive before serve and hands them over in order', async () => {
    const { server, port, serve } = await bound(false);
    const arrived: string[] = [];
    const seen = new Promise<void>((resolve) => {
      server.on('request', (req: http.IncomingMessage) => {
        arrived.push(req.url ?? '');
        if (arrived.length === 2) resolve();
      });
    });
    const first = get(port, '/a');
    await new Promise<void>((r) => server.once('request', () => r()));
    const second = get(port, '/b');
    await seen;
    serve({ request: (req, res) => res.end(`served ${req.url}`) });
    expect(await first).toEqual({ status: 200, body: 'served /a' });
    expect(await second).toEqual({ status: 200, body: 'served /b' });
    expect(await get(port, '/c')).toEqual({ status: 200, body: 'served /c' });
    expect(server.listenerCount('request')).toBe(2); // ours and the test's observer, not the holder
  });

  it('holds an upgrade and gives it to the upgrade handler', async () => {
    const { server, port, serve } = await bound(true);
    const sock = net.connect(port, '127.0.0.1');
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\nearly');
    await once(server, 'upgrade');
    serve({
      request: (_req, res) => res.end(),
      upgrade: (_req, socket, head) =>
        socket.end(`HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n${head.toString()}`),
    });
    let got = '';
    sock.setEncoding('utf8').on('data', (c: string) => (got += c));
    await once(sock, 'end');
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    expect(got.endsWith('early')).toBe(true);
    sock.destroy();
  });

  it('cannot serve twice', async () => {
    const { serve } = await bound(false);
    serve({ request: (_req, res) => res.end() });
    expect(() => serve({ request: (_req, res) => res.end() })).toThrow(/twice/);
  });
});

import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  freeLoopbackPorts,
  goPikoBinary,
  startGoPikoAgent,
  startGoPikoServer,
  stopAllGoPiko,
  waitForGoPikoEndpoint,
} from '../helpers/go-piko';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, headers: http.OutgoingHttpHeaders): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    // agent: false so no keep-alive socket outlives the test.
    const req = http.get(url, { headers, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

describe('Go Piko harness', () => {
  let app: http.Server;
  let appPort: number;

  beforeAll(async () => {
    // A cold build of Go Piko takes about a minute; later runs reuse the cached binary.
    goPikoBinary();
    app = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          forward: req.headers['x-piko-forward'] ?? null,
        }),
      );
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appPort = (app.address() as AddressInfo).port;
  }, 10 * 60_000);

  afterAll(async () => {
    await stopAllGoPiko();
    app.closeAllConnections();
    await new Promise<void>((resolve) => app.close(() => resolve()));
  });

  it('routes a request through a Go server and a Go agent to a local HTTP service', async () => {
    const server = await startGoPikoServer();
    const agent = await startGoPikoAgent(['http', 'smoke', `127.0.0.1:${appPort}`, '--connect.url', server.upstreamUrl]);
    await agent.waitForLog(/"msg":"starting reverse proxy"/, 10_000);
    await waitForGoPikoEndpoint(server.adminUrl, 'smoke', { timeoutMs: 10_000 });

    const reply = await get(`${server.proxyUrl}/hello?x=1`, { 'x-piko-endpoint': 'smoke' });

    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ method: 'GET', url: '/hello?x=1', forward: 'true' });
  });

  it('answers 502 no available upstreams for an endpoint nobody serves', async () => {
    const server = await startGoPikoServer();

    const reply = await get(`${server.proxyUrl}/`, { 'x-piko-endpoint': 'nobody' });

    expect(reply.status).toBe(502);
    expect(reply.body).toBe('{"error":"no available upstreams"}\n');
  });

  it('stops a server with SIGTERM and reports its exit', async () => {
    const server = await startGoPikoServer();

    await server.stop();

    const exit = await server.exited;
    expect(exit.code === 0 || exit.signal !== null).toBe(true);
    expect(server.logs()).toContain('"msg":"shutdown complete"');
  });

  it('rejects waitForLog with the output when the process exits first', async () => {
    const [closedPort] = await freeLoopbackPorts(1);
    const agent = await startGoPikoAgent([
      'http',
      'orphan',
      `127.0.0.1:${appPort}`,
      '--connect.url',
      `http://127.0.0.1:${closedPort}`,
      '--connect.timeout',
      '300ms',
    ]);

    await expect(agent.waitForLog(/never printed/, 10_000)).rejects.toMatchObject({
      code: 'GO_PIKO_EXITED',
      message: expect.stringContaining('connect: context deadline exceeded'),
    });
  });
});

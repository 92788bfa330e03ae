import { once } from 'node:events';
import net from 'node:net';
import { dial } from '../../dataplane/client';
import {
  freeLoopbackPorts,
  goPikoBinary,
  goPikoServerPorts,
  startGoPikoForward,
  startGoPikoServer,
  stopAllGoPiko,
  waitForGoPikoEndpoint,
  waitForTcpPort,
  type GoPikoServer,
} from '../helpers/go-piko';
import { request } from '../helpers/http-client';
import { startPikoProcess, stopAllPikoProcesses, type PikoProcess } from '../helpers/piko-process';
import {
  closeWebSocket,
  echoRoundTrip,
  GO_BUILD_TIMEOUT_MS,
  hashedRequest,
  MIB,
  nextMessage,
  openWebSocket,
  patternSha256,
  patternStream,
  startInteropService,
  startTcpEcho,
  type InteropService,
  type TcpEcho,
} from './support';

/**
 * Our `piko agent` (the built CLI, as users run it) against the original Go
 * server: the Go server opens the streams and writes the requests, our
 * agent answers them from local services.
 */
describe('our agent CLI against the Go server', () => {
  let go: GoPikoServer;
  let service: InteropService;
  let echo: TcpEcho;
  let httpAgent: PikoProcess;
  let tcpAgent: PikoProcess;

  beforeAll(async () => {
    goPikoBinary();
    [go, service, echo] = await Promise.all([startGoPikoServer(), startInteropService(), startTcpEcho()]);
    const common = ['--connect.url', go.upstreamUrl, '--log.level', 'warn'];
    httpAgent = startPikoProcess(['agent', 'http', 'ts-http', String(service.port), '--timeout', '60s', ...common]);
    tcpAgent = startPikoProcess(['agent', 'tcp', 'ts-tcp', `127.0.0.1:${echo.port}`, ...common]);
    await Promise.all([waitForGoPikoEndpoint(go.adminUrl, 'ts-http'), waitForGoPikoEndpoint(go.adminUrl, 'ts-tcp')]);
  }, GO_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllPikoProcesses();
    await stopAllGoPiko();
    await Promise.all([service?.close(), echo?.close()]);
  });

  const headers = { 'x-piko-endpoint': 'ts-http' };

  it('answers GET and POST the Go server routes to it', async () => {
    const get = await request(`${go.proxyUrl}/hello?q=1`, { headers });
    const post = await request(`${go.proxyUrl}/echo`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'text/plain' },
      body: 'ping through go',
    });

    expect(get.status).toBe(200);
    expect(get.body).toBe('hello from the service');
    expect(post.status).toBe(200);
    expect(post.body).toBe('ping through go');
    const seen = service.seen.find((r) => r.url === '/hello?q=1');
    expect(seen?.headers['x-piko-forward']).toBe('true');
    expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
  });

  it('carries a WebSocket the Go server upgrades through our agent', async () => {
    const ws = await openWebSocket(`${go.proxyUrl.replace('http', 'ws')}/ws`, headers);
    try {
      const reply = nextMessage(ws);
      ws.send(Buffer.from('binary through go and our agent'));
      expect(await reply).toEqual({ data: Buffer.from('binary through go and our agent'), isBinary: true });
    } finally {
      await closeWebSocket(ws);
    }
  });

  it('moves 16 MiB each way and 100 concurrent streams through the Go server', async () => {
    const up = await hashedRequest(`${go.proxyUrl}/digest?reply=0`, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(16 * MIB) },
      body: patternStream(16 * MIB, 71),
    });
    const down = await hashedRequest(`${go.proxyUrl}/pattern?size=${16 * MIB}&seed=72`, { headers });
    const many = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        hashedRequest(`${go.proxyUrl}/digest?reply=${300 * 1024}&seed=${700 + i}`, {
          method: 'POST',
          headers: { ...headers, 'content-length': String(300 * 1024) },
          body: patternStream(300 * 1024, 800 + i),
        }),
      ),
    );

    expect(up.headers['x-request-sha256']).toBe(patternSha256(16 * MIB, 71));
    expect(down.body).toEqual({ bytes: 16 * MIB, sha256: patternSha256(16 * MIB, 72) });
    const bad = many
      .map((r, i) => ({ r, i }))
      .filter(
        ({ r, i }) =>
          r.status !== 200 ||
          r.headers['x-request-sha256'] !== patternSha256(300 * 1024, 800 + i) ||
          r.body.sha256 !== patternSha256(300 * 1024, 700 + i),
      )
      .map(({ r, i }) => `#${i}: ${r.status}`);
    expect(bad).toEqual([]);
  }, 60_000);

  it('echoes TCP through our tcp agent for our SDK dial and for Go piko forward', async () => {
    const [port] = (await freeLoopbackPorts(1)) as [number];
    await startGoPikoForward(['tcp', `127.0.0.1:${port}`, 'ts-tcp', '--connect.url', go.proxyUrl, '--log.level', 'warn']);
    await waitForTcpPort(port, 10_000);
    const viaDial = await dial('ts-tcp', { url: go.proxyUrl, timeoutMs: 10_000 });
    const viaForward = net.connect({ port, host: '127.0.0.1' });
    await once(viaForward, 'connect', { signal: AbortSignal.timeout(5000) });
    try {
      const payload = Buffer.alloc(600 * 1024, 0x77);
      expect((await echoRoundTrip(viaDial, payload)).equals(payload)).toBe(true);
      expect((await echoRoundTrip(viaForward, Buffer.from('forwarded'))).toString()).toBe('forwarded');
    } finally {
      viaDial.destroy();
      viaForward.destroy();
    }
  });

  it('reconnects by itself when the Go server is killed and started again on the same ports', async () => {
    await go.kill();
    go = await startGoPikoServer({ ports: goPikoServerPorts(go) });
    await Promise.all([
      waitForGoPikoEndpoint(go.adminUrl, 'ts-http', { timeoutMs: 15_000 }),
      waitForGoPikoEndpoint(go.adminUrl, 'ts-tcp', { timeoutMs: 15_000 }),
    ]);

    const reply = await request(`${go.proxyUrl}/hello`, { headers });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello from the service');
    const conn = await dial('ts-tcp', { url: go.proxyUrl, timeoutMs: 10_000 });
    try {
      expect((await echoRoundTrip(conn, Buffer.from('after restart'))).toString()).toBe('after restart');
    } finally {
      conn.destroy();
    }
    expect(httpAgent.child.exitCode).toBeNull();
    expect(tcpAgent.child.exitCode).toBeNull();
  }, 30_000);
});

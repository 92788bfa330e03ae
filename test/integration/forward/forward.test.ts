import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { SignJWT } from 'jose';
import { listen, type Listener } from '../../../dataplane/client';
import { joinStreams } from '../../../dataplane/net/join-streams';
import { loadForwardConfig, type ForwardConfig } from '../../../dataplane/config/forward-config';
import { Forwarder } from '../../../dataplane/forward/forwarder';
import { silentLogger } from '../../../dataplane/log/logger';
import { waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { agentConfig, capturingLogger, startAgent, stopAllAgents } from '../agent/agent-harness';
import { readBytes } from '../../helpers/streams';

/** A forward config for `endpointId` on an ephemeral local port (the config itself refuses port 0). */
function forwardConfig(proxyUrl: string, endpointId: string, token?: string): ForwardConfig {
  const base = loadForwardConfig({
    flags: { 'connect.url': proxyUrl, ...(token ? { 'connect.token': token } : {}) },
    port: { addr: '127.0.0.1:1', endpointId },
  });
  return { ...base, ports: [{ addr: '127.0.0.1:0', endpointId }] };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

describe('forward', () => {
  let srv: TestServer;
  let echo: net.Server;
  let echoPort: number;
  const forwarders: Forwarder[] = [];
  const listeners: Listener[] = [];
  const sockets = new Set<net.Socket>();

  beforeEach(async () => {
    srv = await startTestServer();
    echo = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as net.AddressInfo).port;
  });

  afterEach(async () => {
    await Promise.all(forwarders.splice(0).map((f) => f.close()));
    for (const l of listeners.splice(0)) l.destroy();
    for (const s of sockets) s.destroy();
    sockets.clear();
    echo.close();
    await stopAllAgents();
    await stopAllTestServers();
  });

  async function startForwarder(config: ForwardConfig): Promise<number> {
    const forwarder = new Forwarder(config, { logger: silentLogger() });
    forwarders.push(forwarder);
    const [address] = await forwarder.start();
    return address!.port;
  }

  it('carries a TCP echo end to end: forward, proxy port, agent, echo service', async () => {
    await startAgent(agentConfig(srv.upstreamUrl, { protocol: 'tcp', endpointId: 'echo', addr: `127.0.0.1:${echoPort}` }), silentLogger());
    await waitForUpstreams(srv.server.upstreams, 'echo', 1);
    const port = await startForwarder(forwardConfig(srv.proxyUrl, 'echo'));

    const client = await connect(port);
    sockets.add(client);
    client.write('hello through piko');
    expect((await readBytes(client, 18)).toString()).toBe('hello through piko');
    const big = Buffer.alloc(512 * 1024, 7);
    client.write(big);
    expect((await readBytes(client, big.length)).equals(big)).toBe(true);
    const closed = once(client, 'close');
    client.end();
    await closed;
  });

  it('forwards many connections at once to an SDK listener', async () => {
    const listener = await listen('many', { url: srv.upstreamUrl });
    listeners.push(listener);
    listener.on('connection', (conn) => void joinStreams(conn, net.connect(echoPort, '127.0.0.1')));
    await waitForUpstreams(srv.server.upstreams, 'many', 1);
    const port = await startForwarder(forwardConfig(srv.proxyUrl, 'many'));

    const replies = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const client = await connect(port);
        sockets.add(client);
        client.write(`conn-${String(i).padStart(2, '0')}`);
        return (await readBytes(client, 7)).toString();
      }),
    );
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => `conn-${String(i).padStart(2, '0')}`));
  });

  it('closes the local connection when the endpoint has no upstream', async () => {
    const port = await startForwarder(forwardConfig(srv.proxyUrl, 'nobody'));
    const client = await connect(port);
    sockets.add(client);
    client.on('error', () => undefined);
    client.resume();
    await once(client, 'close');
  });

  it('authenticates with connect.token on the proxy port', async () => {
    const secret = 'proxy-secret-0123456789abcdef';
    const secured = await startTestServer({ 'proxy.auth.hmac_secret_key': secret });
    const listener = await listen('private', { url: secured.upstreamUrl });
    listeners.push(listener);
    listener.on('connection', (conn) => void joinStreams(conn, net.connect(echoPort, '127.0.0.1')));
    await waitForUpstreams(secured.server.upstreams, 'private', 1);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(secret));

    const withToken = await connect(await startForwarder(forwardConfig(secured.proxyUrl, 'private', token)));
    sockets.add(withToken);
    withToken.write('ok');
    expect((await readBytes(withToken, 2)).toString()).toBe('ok');

    const without = await connect(await startForwarder(forwardConfig(secured.proxyUrl, 'private')));
    sockets.add(without);
    without.on('error', () => undefined);
    without.resume();
    await once(without, 'close');
  });

  it("takes each connection's token from connect.token_file as last read", async () => {
    const secret = 'proxy-secret-0123456789abcdef';
    const secured = await startTestServer({ 'proxy.auth.hmac_secret_key': secret });
    const listener = await listen('filed', { url: secured.upstreamUrl });
    listeners.push(listener);
    listener.on('connection', (conn) => void joinStreams(conn, net.connect(echoPort, '127.0.0.1')));
    await waitForUpstreams(secured.server.upstreams, 'filed', 1);
    const signWith = (key: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
        .sign(new TextEncoder().encode(key));
    const dir = mkdtempSync(join(tmpdir(), 'piko-forward-token-'));
    try {
      const tokenPath = join(dir, 'token');
      writeFileSync(tokenPath, await signWith('not-the-proxy-secret-0123456789'));
      const base = loadForwardConfig({
        flags: { 'connect.url': secured.proxyUrl, 'connect.token_file': tokenPath },
        port: { addr: '127.0.0.1:1', endpointId: 'filed' },
      });
      const { logger, waitFor } = capturingLogger();
      const forwarder = new Forwarder({ ...base, ports: [{ addr: '127.0.0.1:0', endpointId: 'filed' }] }, { logger });
      forwarders.push(forwarder);
      const [address] = await forwarder.start();

      const refused = await connect(address!.port);
      sockets.add(refused);
      refused.on('error', () => undefined);
      refused.resume();
      await once(refused, 'close');

      writeFileSync(tokenPath, await signWith(secret));
      await waitFor((r) => r.message === 'token file changed');
      const accepted = await connect(address!.port);
      sockets.add(accepted);
      accepted.write('ok');
      expect((await readBytes(accepted, 2)).toString()).toBe('ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() stops listening and closes forwarded connections', async () => {
    const listener = await listen('closing', { url: srv.upstreamUrl });
    listeners.push(listener);
    listener.on('connection', (conn) => void joinStreams(conn, net.connect(echoPort, '127.0.0.1')));
    await waitForUpstreams(srv.server.upstreams, 'closing', 1);
    const forwarder = new Forwarder(forwardConfig(srv.proxyUrl, 'closing'), { logger: silentLogger() });
    const [address] = await forwarder.start();
    const client = await connect(address!.port);
    sockets.add(client);
    client.write('x');
    await readBytes(client, 1);
    const closed = once(client, 'close');
    await forwarder.close();
    await closed;
    await expect(connect(address!.port)).rejects.toThrow(/ECONNREFUSED/);
  });
});

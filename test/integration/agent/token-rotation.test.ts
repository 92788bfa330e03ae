import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { ReconnectInfo } from '../../../dataplane/client';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startHttpService } from '../../helpers/raw-upstream';
import { agentConfig, capturingLogger, startAgent, stopAllAgents } from './agent-harness';

const SECRET = 'rotation-secret-0123456789abcdef';
const TOKEN_LIFETIME_S = 5;
const ROTATE_EVERY_MS = 1_500;
const ROTATIONS = 4;

function sign(expSeconds: number): Promise<string> {
  return new SignJWT({ piko: { endpoints: ['rot'] } })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds)
    .sign(new TextEncoder().encode(SECRET));
}

/** As the kubelet does: the new token lands whole, never half-written. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

describe('agent with --connect.token-file', () => {
  let srv: TestServer;
  let dir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'piko-token-'));
    // The server closes a tunnel when its token expires, as Piko does.
    srv = await startTestServer({ 'upstream.auth.hmac_secret_key': SECRET });
  });

  afterEach(async () => {
    await stopAllAgents();
    await stopAllTestServers();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A local service and an agent serving it as `rot`, its token in a file, registered. */
  async function startWithTokenFile(token: string) {
    const service = await startHttpService((_req, res) => res.end('ok'));
    const tokenPath = join(dir, 'token');
    writeAtomically(tokenPath, token);
    const { logger, records, waitFor } = capturingLogger();
    const listener = { protocol: 'http' as const, endpointId: 'rot', addr: String(service.port) };
    const agent = await startAgent(agentConfig(srv.upstreamUrl, listener, { 'connect.token_file': tokenPath }), logger);
    await waitForUpstreams(srv.server.upstreams, 'rot', 1);
    return { service, tokenPath, agent, records, waitFor };
  }

  it('moves to a new session before each short-lived token expires, and loses no request', async () => {
    const { service, tokenPath, agent, records } = await startWithTokenFile(`${await sign(TOKEN_LIFETIME_S)}\n`);
    const reconnects: ReconnectInfo[] = [];
    agent.endpointListeners[0]?.on('reconnecting', (info) => reconnects.push(info));

    // Requests run back to back while the token is replaced several times, each
    // new one valid for less time than the test lasts: only rotation keeps the tunnel.
    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stop) statuses.push((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'rot' } })).status);
    })();
    for (let i = 0; i < ROTATIONS; i++) {
      await new Promise((r) => setTimeout(r, ROTATE_EVERY_MS));
      writeAtomically(tokenPath, await sign(TOKEN_LIFETIME_S));
    }
    // Past the lifetime of every token but the last two.
    await new Promise((r) => setTimeout(r, ROTATE_EVERY_MS));
    stop = true;
    await load;

    process.stderr.write(
      `token rotation: ${statuses.length} requests back to back across ${ROTATIONS} rotations of ${TOKEN_LIFETIME_S} s tokens, ` +
        `${statuses.filter((s) => s !== 200).length} failed\n`,
    );
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Every change was a rotation: no session ended by expiry, nothing to reconnect.
    expect(reconnects).toEqual([]);
    expect(records().filter((r) => r.message === 'session rotated; draining the previous one').length).toBe(ROTATIONS);
    expect(records().some((r) => r.message === 'upstream token expired')).toBe(false);
    // The drained sessions are gone: one tunnel remains.
    await waitForUpstreams(srv.server.upstreams, 'rot', 1);
    await service.close();
  });

  it('keeps the current session when the new token is refused, and says so', async () => {
    const { service, tokenPath, agent, waitFor } = await startWithTokenFile(await sign(3600));
    const wrongKey = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-0123456789abcdef'));
    writeAtomically(tokenPath, wrongKey);
    const failed = await waitFor((r) => r.message === 'session rotation failed; the current session carries on');
    expect(String(failed.error)).toMatch(/401/);
    expect(agent.endpointListeners[0]?.connected).toBe(true);
    expect((await request(`${srv.proxyUrl}/`, { headers: { 'x-piko-endpoint': 'rot' } })).status).toBe(200);
    await service.close();
  });

  it('refuses to start when the file is missing or empty, naming the key', async () => {
    const listener = { protocol: 'http' as const, endpointId: 'rot', addr: '8080' };
    const missing = join(dir, 'absent');
    await expect(
      startAgent(agentConfig(srv.upstreamUrl, listener, { 'connect.token_file': missing }), capturingLogger().logger),
    ).rejects.toThrow(/connect\.token_file: cannot read token file .*absent: ENOENT/);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    await expect(
      startAgent(agentConfig(srv.upstreamUrl, listener, { 'connect.token_file': empty }), capturingLogger().logger),
    ).rejects.toThrow(/token file .*empty is empty/);
  });

  it('refuses connect.token and connect.token_file together', () => {
    expect(() =>
      agentConfig(
        srv.upstreamUrl,
        { protocol: 'http', endpointId: 'rot', addr: '8080' },
        { 'connect.token': 'x', 'connect.token_file': '/t' },
      ),
    ).toThrow('connect.token and connect.token_file are mutually exclusive');
  });
});

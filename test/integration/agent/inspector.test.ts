/**
 * The agent's request inspector over real sockets: a request from a client through the server
 * and the agent to a local service shows up in /api/requests with its status, timing, headers
 * (credentials redacted) and bodies; a replay reaches the local service again and is a new entry.
 */
import type http from 'node:http';
import type { Agent } from '../../../dataplane/agent/agent';
import type { CapturedRequest } from '../../../dataplane/agent/inspector/request-log';
import { silentLogger } from '../../../dataplane/log/logger';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startHttpService } from '../../helpers/raw-upstream';
import { agentConfig, startAgent, stopAllAgents } from './agent-harness';

let srv: TestServer;
let service: Awaited<ReturnType<typeof startHttpService>>;
const seen: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  srv = await startTestServer();
  service = await startHttpService((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.headers });
      res.setHeader('set-cookie', 'session=secret');
      res.writeHead(req.url === '/missing' ? 404 : 201, { 'content-type': 'text/plain' });
      res.end(`got ${body.length} bytes`);
    });
  });
});

afterEach(async () => {
  await stopAllAgents();
  seen.length = 0;
});

afterAll(async () => {
  await stopAllTestServers();
  await service.close();
});

async function inspectedAgent(flags: Record<string, string | number | boolean> = {}): Promise<{ agent: Agent; base: string }> {
  const agent = await startAgent(
    agentConfig(
      srv.upstreamUrl,
      { protocol: 'http', endpointId: 'shop', addr: String(service.port) },
      { 'inspect.bind_addr': '127.0.0.1:0', ...flags },
    ),
    silentLogger(),
  );
  await waitForUpstreams(srv.server.upstreams, 'shop', 1);
  return { agent, base: `http://127.0.0.1:${agent.inspectorAddress!.port}` };
}

const viaProxy = (path: string, body: string, headers: Record<string, string> = {}) =>
  request(`${srv.proxyUrl}${path}`, { method: 'POST', headers: { 'x-piko-endpoint': 'shop', ...headers }, body });

async function requests(base: string): Promise<CapturedRequest[]> {
  return (JSON.parse((await request(`${base}/api/requests`)).body) as { requests: CapturedRequest[] }).requests;
}

describe('the request inspector', () => {
  it('is off unless --inspect.bind-addr is set, and refuses a non-loopback address without inspect.allow_remote', async () => {
    const agent = await startAgent(
      agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'plain', addr: String(service.port) }),
      silentLogger(),
    );
    expect(agent.inspectorAddress).toBeUndefined();
    expect(() => agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'x', addr: '1' }, { 'inspect.bind_addr': ':4040' })).toThrow(
      /inspect.bind_addr ":4040" is not a loopback address/,
    );
  });

  it('records each request with its status, timing, redacted headers and bodies', async () => {
    const { base } = await inspectedAgent();
    const res = await viaProxy('/orders?x=1', 'hello', { authorization: 'Bearer tok', cookie: 'id=1', 'x-piko-authorization': 'Bearer p' });
    expect(res.status).toBe(201);
    const [entry, ...others] = await requests(base);
    expect(others).toEqual([]);
    expect(entry).toMatchObject({
      endpointId: 'shop',
      method: 'POST',
      path: '/orders?x=1',
      status: 201,
      durationMs: expect.any(Number),
      requestHeaders: { Authorization: ['[REDACTED]'], Cookie: ['[REDACTED]'] },
      responseHeaders: { 'Set-Cookie': ['[REDACTED]'], 'Content-Type': ['text/plain'] },
      requestBody: { base64: Buffer.from('hello').toString('base64'), bytes: 5, truncated: false },
      responseBody: { base64: Buffer.from('got 5 bytes').toString('base64'), bytes: 11, truncated: false },
    });
    // The Piko token, forwarded as is when the proxy port has no auth, is redacted too.
    expect(entry!.requestHeaders['X-Piko-Authorization']).toEqual(['[REDACTED]']);
    expect(JSON.stringify(entry)).not.toMatch(/Bearer|id=1|session=secret/);
    const one = JSON.parse((await request(`${base}/api/requests/${entry!.id}`)).body) as CapturedRequest;
    expect(one.id).toBe(entry!.id);
  });

  it('replays a request to the local service as it was sent, credentials included, as a new entry', async () => {
    const { base } = await inspectedAgent();
    await viaProxy('/orders', 'again', { authorization: 'Bearer tok' });
    const [original] = await requests(base);
    const replay = await request(`${base}/api/requests/${original!.id}/replay`, {
      method: 'POST',
      headers: { 'x-piko-inspector': 'replay' },
    });
    expect(replay.status).toBe(201);
    const replayed = JSON.parse(replay.body) as CapturedRequest;
    expect(replayed).toMatchObject({ replayOf: original!.id, status: 201, method: 'POST', path: '/orders' });
    expect(seen.map((s) => [s.url, s.body, s.headers.authorization])).toEqual([
      ['/orders', 'again', 'Bearer tok'],
      ['/orders', 'again', 'Bearer tok'],
    ]);
    expect((await requests(base)).map((r) => r.id)).toEqual([replayed.id, original!.id]);
  });

  it('refuses what another web page could make a browser send, and a request it cannot replay whole', async () => {
    const { base } = await inspectedAgent({ 'inspect.max_body_bytes': 4 });
    await viaProxy('/big', 'more than four bytes');
    const [entry] = await requests(base);
    expect(entry!.requestBody).toMatchObject({ bytes: 20, truncated: true, base64: Buffer.from('more').toString('base64') });
    // No custom header: what a cross-origin form could send.
    expect((await request(`${base}/api/requests/${entry!.id}/replay`, { method: 'POST' })).status).toBe(403);
    expect(
      (await request(`${base}/api/requests/${entry!.id}/replay`, { method: 'POST', headers: { 'x-piko-inspector': 'replay' } })).status,
    ).toBe(409);
    // DNS rebinding: a name that is not the inspector's own.
    expect((await request(`${base}/api/requests`, { headers: { host: 'evil.example.com' } })).status).toBe(421);
    expect((await request(`${base}/api/requests/nope`)).status).toBe(404);
  });

  it('keeps at most inspect.max_requests, newest first', async () => {
    const { base } = await inspectedAgent({ 'inspect.max_requests': 3 });
    for (let i = 0; i < 5; i++) await viaProxy(`/n/${i}`, '');
    expect((await requests(base)).map((r) => r.path)).toEqual(['/n/4', '/n/3', '/n/2']);
  });
});

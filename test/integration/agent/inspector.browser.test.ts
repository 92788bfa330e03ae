/**
 * The agent's inspector page in a real browser: a request through the tunnel shows up with its
 * status and redacted headers, and Replay reaches the local service and appears as a new entry.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '../../../dataplane/agent/agent';
import { silentLogger } from '../../../dataplane/log/logger';
import { launchBrowser } from '../../helpers/browser';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startHttpService } from '../../helpers/raw-upstream';
import { agentConfig, startAgent, stopAllAgents } from './agent-harness';

const SCREENSHOTS =
  process.env['PIKO_UPDATE_SCREENSHOTS'] === '1'
    ? path.resolve(__dirname, '..', '..', '..', 'docs', 'images')
    : fs.mkdtempSync(path.join(os.tmpdir(), 'piko-screenshots-'));

let browser: Browser;
let srv: TestServer;
let agent: Agent;
let page: Page;
let service: Awaited<ReturnType<typeof startHttpService>>;
const served: string[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
  srv = await startTestServer();
  service = await startHttpService((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      served.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, order: 42 }));
    });
  });
  agent = await startAgent(
    agentConfig(
      srv.upstreamUrl,
      { protocol: 'http', endpointId: 'shop', addr: String(service.port) },
      { 'inspect.bind_addr': '127.0.0.1:0' },
    ),
    silentLogger(),
  );
  await waitForUpstreams(srv.server.upstreams, 'shop', 1);
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto(`http://127.0.0.1:${agent.inspectorAddress!.port}/`);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 5_000 });
}, 120_000);

afterAll(async () => {
  await page?.close();
  await browser?.close();
  await stopAllAgents();
  await stopAllTestServers();
  await service?.close();
});

describe('the inspector page', () => {
  it('shows a request with its status and redacted headers, and replays it to the local service as a new entry', async () => {
    await page.locator('#requests-empty').waitFor({ state: 'visible' });
    const res = await request(`${srv.proxyUrl}/orders`, {
      method: 'POST',
      headers: { 'x-piko-endpoint': 'shop', authorization: 'Bearer secret-token', 'content-type': 'application/json' },
      body: '{"item":"book"}',
    });
    expect(res.status).toBe(200);
    const first = page.locator('#requests li').first();
    await first.waitFor({ timeout: 3_000 });
    expect(await first.locator('.method').textContent()).toBe('POST');
    expect(await first.locator('.status').textContent()).toBe('200');
    // The newest request is shown in detail.
    await page.locator('#detail-title').getByText('POST /orders → 200').waitFor();
    const authorization = page.locator('#request-headers tr', { hasText: 'Authorization' });
    expect(await authorization.locator('td').nth(1).textContent()).toBe('[REDACTED]');
    expect(await page.locator('#request-body').textContent()).toBe('{"item":"book"}');
    expect(await page.locator('#response-body').textContent()).toBe('{"ok":true,"order":42}');
    expect(await page.content()).not.toContain('secret-token');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'inspector.png'), fullPage: true });

    await page.getByRole('button', { name: 'Replay' }).click();
    await page.locator('#requests li').nth(1).waitFor({ timeout: 5_000 });
    expect(await page.locator('#requests li').first().locator('.tag').textContent()).toBe('replay');
    expect(served).toEqual(['POST /orders {"item":"book"}', 'POST /orders {"item":"book"}']);
    await page.locator('#detail-meta', { hasText: 'replay' }).waitFor();
  });
});

/**
 * The status page in a real browser against a real server: what a person sees when agents come
 * and go, searching, and a narrow screen. Screenshots go to docs/images for the README.
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '../../../dataplane/agent/agent';
import { LONG_POLL_MS } from '../../../dataplane/admin/status-overview';
import { silentLogger } from '../../../dataplane/log/logger';
import { launchBrowser } from '../../helpers/browser';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { agentConfig, startAgent, stopAllAgents } from '../agent/agent-harness';

/** PIKO_UPDATE_SCREENSHOTS=1 writes the README's screenshots; otherwise they go to a scratch directory. */
const SCREENSHOTS =
  process.env['PIKO_UPDATE_SCREENSHOTS'] === '1'
    ? path.resolve(__dirname, '..', '..', '..', 'docs', 'images')
    : fs.mkdtempSync(path.join(os.tmpdir(), 'piko-screenshots-'));
/** What "appears within a second" allows, from the registration to the row on screen. */
const VISIBLE_WITHIN_MS = 1_000;

let browser: Browser;
let srv: TestServer;
let page: Page;

beforeAll(async () => {
  browser = await launchBrowser();
  // A fixed node ID, so the screenshots in the docs do not change from run to run.
  srv = await startTestServer({ 'cluster.node_id': 'piko-0' });
}, 120_000);

afterAll(async () => {
  await stopAllAgents();
  await stopAllTestServers();
  await browser?.close();
});

beforeEach(async () => {
  page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  await page.goto(srv.adminUrl);
  await page.getByText('live', { exact: true }).waitFor({ timeout: 5_000 });
});

afterEach(async () => {
  await page.close();
  await stopAllAgents();
});

const row = (endpoint: string) => page.locator(`#endpoints tbody tr[data-endpoint="${endpoint}"]`);

async function agentFor(endpoint: string): Promise<Agent> {
  const agent = await startAgent(
    agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: endpoint, addr: '127.0.0.1:9' }),
    silentLogger(),
  );
  await waitForUpstreams(srv.server.upstreams, endpoint, 1);
  return agent;
}

describe('the status page', () => {
  it('shows an endpoint within a second of its agent connecting, and drops it when the agent leaves', async () => {
    await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
    const agent = await agentFor('my-service');
    await row('my-service').waitFor({ timeout: VISIBLE_WITHIN_MS });
    expect(await row('my-service').locator('td').nth(1).textContent()).toBe('1');
    expect(await row('my-service').locator('.pod').textContent()).toBe(`${srv.server.nodeId} ×1`);
    expect(await page.locator('#tunnels').textContent()).toBe('1');

    await agent.shutdown(100);
    await waitForUpstreams(srv.server.upstreams, 'my-service', 0);
    await row('my-service').waitFor({ state: 'detached', timeout: VISIBLE_WITHIN_MS + 1_000 });
    await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
  });

  it("shows each endpoint's request rate, 5xx share and latency from the requests just sent", async () => {
    // A local service answering 503 for one request in ten, and slowly for /slow.
    const service = http.createServer((req, res) => {
      const fail = req.url === '/fail';
      const answer = () => {
        res.statusCode = fail ? 503 : 200;
        res.end('ok');
      };
      if (req.url === '/slow') setTimeout(answer, 200);
      else answer();
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    try {
      const port = (service.address() as AddressInfo).port;
      const agent = await startAgent(
        agentConfig(srv.upstreamUrl, { protocol: 'http', endpointId: 'orders', addr: `127.0.0.1:${port}` }),
        silentLogger(),
      );
      await waitForUpstreams(srv.server.upstreams, 'orders', 1);
      await agentFor('payments');
      await row('orders').waitFor({ timeout: VISIBLE_WITHIN_MS });
      // Nothing sent yet: dashes, not zeros.
      expect(await row('orders').locator('td.rps').textContent()).toBe('–');
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        const path = i % 10 === 0 ? '/fail' : i === 5 ? '/slow' : '/';
        statuses.push((await request(`${srv.proxyUrl}${path}`, { headers: { 'x-piko-endpoint': 'orders' } })).status);
      }
      expect(statuses.filter((s) => s === 503)).toHaveLength(4);
      // The page is told at its next poll, within a slot of the traffic window.
      await row('orders')
        .locator('td.errors', { hasText: /^10\.0%$/ })
        .waitFor({ timeout: LONG_POLL_MS + 3_000 });
      expect(await row('orders').locator('td.errors').getAttribute('class')).toContain('bad');
      const rps = Number(await row('orders').locator('td.rps').textContent());
      expect(rps).toBeGreaterThan(0);
      expect(rps).toBeLessThanOrEqual(40);
      // p50 / p95 / p99: the 200 ms request is the top 2.5%, so it is p99's.
      const [, , p99] = ((await row('orders').locator('td.latency').textContent()) ?? '').split(' / ');
      expect(p99).toMatch(/^\d+ms$/);
      expect(Number(p99?.replace('ms', ''))).toBeGreaterThanOrEqual(100);
      expect(await row('payments').locator('td.rps').textContent()).toBe('–');
      expect(await page.locator('#traffic-note').textContent()).toBe('Requests that came in through piko-0, over the last 30s.');
      // The in-memory registry has no Leases to age.
      expect(await page.locator('#nodes tbody td').nth(5).textContent()).toBe('–');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'status-page.png'), fullPage: true });
      await agent.shutdown(100);
    } finally {
      service.close();
    }
  });

  it('filters endpoints by what is typed in the search box', async () => {
    await agentFor('billing-api');
    await agentFor('search-api');
    await row('search-api').waitFor({ timeout: VISIBLE_WITHIN_MS });
    await row('billing-api').waitFor({ timeout: VISIBLE_WITHIN_MS });
    await page.getByRole('searchbox', { name: 'Search endpoints' }).fill('bill');
    await row('search-api').waitFor({ state: 'detached', timeout: VISIBLE_WITHIN_MS });
    expect(await page.locator('#endpoints tbody tr').count()).toBe(1);
    await page.getByRole('searchbox', { name: 'Search endpoints' }).fill('');
    await row('search-api').waitFor({ timeout: VISIBLE_WITHIN_MS });
  });

  it('shows an endpoint ID as text, never as markup', async () => {
    // Endpoint IDs are agents' to choose; the server allows only [A-Za-z0-9._~-], but the page must not rely on it.
    await agentFor('x-img-src-onerror');
    await row('x-img-src-onerror').waitFor({ timeout: VISIBLE_WITHIN_MS });
    expect(await page.locator('#endpoints img').count()).toBe(0);
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.reload();
    await row('x-img-src-onerror').waitFor({ timeout: 5_000 });
    expect(violations).toEqual([]);
  });

  it('fits a narrow screen without sideways scrolling', async () => {
    await agentFor('a-rather-long-endpoint-name-for-a-phone-screen');
    await page.setViewportSize({ width: 390, height: 800 });
    await row('a-rather-long-endpoint-name-for-a-phone-screen').waitFor({ timeout: VISIBLE_WITHIN_MS });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'status-page-narrow.png'), fullPage: true });
  });
});

describe('the status page with admin auth', () => {
  const SECRET = 'admin-secret-0123456789abcdef';
  const sign = (secret: string): Promise<string> =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
      .sign(new TextEncoder().encode(secret));

  it('asks for the token, refuses a wrong one, and shows the cluster with the right one', async () => {
    const guarded = await startTestServer({ 'admin.auth.hmac_secret_key': SECRET });
    // The data stays behind the token; only the page's own files are open.
    expect((await request(`${guarded.adminUrl}/status/overview`)).status).toBe(401);
    await page.goto(guarded.adminUrl);
    const token = page.locator('#token');
    await token.waitFor({ state: 'visible', timeout: 5_000 });
    expect(await page.locator('#connection').textContent()).toBe('sign in');

    await token.fill(await sign('some-other-secret-0123456789abcdef'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('token refused', { exact: true }).waitFor({ timeout: 5_000 });
    expect(await token.isVisible()).toBe(true);

    await token.fill(await sign(SECRET));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('live', { exact: true }).waitFor({ timeout: 5_000 });
    expect(await token.isVisible()).toBe(false);
    expect(await page.locator('#node-id').textContent()).toBe(guarded.server.nodeId);
    // Kept for the tab, not in the address: a reload stays signed in.
    expect(page.url()).not.toContain('ey');
    await page.reload();
    await page.getByText('live', { exact: true }).waitFor({ timeout: 5_000 });
  });
});

/**
 * The status page in a real browser against a real server: what a person sees when agents come
 * and go, searching, and a narrow screen. Screenshots go to docs/images for the README.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '../../../dataplane/agent/agent';
import { silentLogger } from '../../../dataplane/log/logger';
import { launchBrowser } from '../../helpers/browser';
import { waitForUpstreams } from '../../helpers/http-client';
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
    await page.screenshot({ path: path.join(SCREENSHOTS, 'status-page.png'), fullPage: true });

    await agent.shutdown(100);
    await waitForUpstreams(srv.server.upstreams, 'my-service', 0);
    await row('my-service').waitFor({ state: 'detached', timeout: VISIBLE_WITHIN_MS + 1_000 });
    await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
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

/**
 * Faults on the tunnel between an upstream and the server, injected by
 * toxiproxy (test/helpers/toxiproxy.ts): latency, a slow link, connections
 * reset mid-stream, a link that freezes half-open, a slow close. Each
 * asserts what users see: no request lost that was not in flight on the
 * broken connection, a reconnect within the backoff bound, no stream left
 * open afterwards. Measured outcomes are printed with PIKO_FAULT_REPORT=1.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { listen, type Listener } from '../../../dataplane/client';
import { request, waitForUpstreams } from '../../helpers/http-client';
import { recordedGet, type Fetched } from '../../helpers/recorded-get';
import { startTestServer, stopAllTestServers, type TestServer } from '../../helpers/piko-server';
import { startToxiproxy, type ToxiProxy, type ToxiproxyServer } from '../../helpers/toxiproxy';

const KEEPALIVE = { keepaliveIntervalMs: 500, keepaliveTimeoutMs: 1_000 };
const BACKOFF = { minReconnectBackoffMs: 100, maxReconnectBackoffMs: 1_000 };
const MiB = 1024 * 1024;
const BIG = Buffer.from(Array.from({ length: 2 * MiB }, (_, i) => (i * 7) & 0xff));
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

function report(line: string): void {
  if (process.env['PIKO_FAULT_REPORT']) process.stdout.write(`fault: ${line}\n`);
}

/** Tunnel connections the service holds, each until it closes. */
const openConns = new Set<import('node:stream').Duplex>();
function serve(conn: import('node:stream').Duplex): void {
  openConns.add(conn);
  conn.once('close', () => openConns.delete(conn));
  app.emit('connection', conn);
}

/** The service behind the tunnel. */
const app = http.createServer((req, res) => {
  if (req.url === '/big') {
    res.setHeader('content-length', BIG.length);
    res.end(BIG);
  } else {
    res.end('ok');
  }
});

/** A request through the proxy that records how it ended, never rejecting; `onFirstByte` when the body starts. */
function fetchThrough(srv: TestServer, path: string, onFirstByte?: () => void): Promise<Fetched> {
  return recordedGet(`${srv.proxyUrl}${path}`, { 'x-piko-endpoint': 'svc' }, onFirstByte);
}

describe('faults between an upstream and the server', () => {
  let toxiproxy: ToxiproxyServer;
  let srv: TestServer;
  let proxy: ToxiProxy;
  let listener: Listener | undefined;
  let proxyCount = 0;

  beforeAll(
    async () => {
      toxiproxy = await startToxiproxy();
    },
    10 * 60 * 1000,
  );

  afterAll(async () => {
    await toxiproxy?.stop();
  });

  beforeEach(async () => {
    srv = await startTestServer({
      'proxy.timeout': 5_000,
      'upstream.session.keepalive_interval': KEEPALIVE.keepaliveIntervalMs,
      'upstream.session.keepalive_timeout': KEEPALIVE.keepaliveTimeoutMs,
    });
    proxy = await toxiproxy.createProxy(`tunnel-${++proxyCount}`, new URL(srv.upstreamUrl).host);
    listener = await listen('svc', { url: proxy.url(), ...KEEPALIVE, ...BACKOFF });
    listener.on('connection', serve);
    await waitForUpstreams(srv.server.upstreams, 'svc', 1);
  });

  afterEach(async () => {
    listener?.destroy();
    await proxy?.setEnabled(false).catch(() => undefined);
    await stopAllTestServers();
  });

  /**
   * Every stream of every session gone: nothing left holding a stream slot
   * or a socket. Over a slow link the last FINs may still be crossing, so
   * each connection's close is awaited first, within a bound.
   */
  async function expectNoStreams(): Promise<void> {
    await Promise.all([...openConns].map((c) => once(c, 'close', { signal: AbortSignal.timeout(5_000) })));
    const res = await request(`${srv.adminUrl}/status/upstream/endpoints`);
    expect(JSON.parse(res.body)).toEqual({ svc: 1 });
    for (const s of (listener as unknown as { sessions: Set<{ streamCount: number }> }).sessions) expect(s.streamCount).toBe(0);
  }

  it('serves every request intact over 50 ms of latency each way', async () => {
    await proxy.addToxic('lag-down', { type: 'latency', attributes: { latency: 50 } }, 'downstream');
    await proxy.addToxic('lag-up', { type: 'latency', attributes: { latency: 50 } }, 'upstream');
    const started = performance.now();
    const small = await Promise.all(Array.from({ length: 20 }, () => fetchThrough(srv, '/')));
    const smallMs = performance.now() - started;
    const big = await fetchThrough(srv, '/big');
    const bigMs = performance.now() - started - smallMs;
    report(`latency 50 ms each way: 20 concurrent small requests in ${smallMs.toFixed(0)} ms, 2 MiB in ${bigMs.toFixed(0)} ms`);
    for (const r of small) expect(r).toMatchObject({ status: 200, complete: true, bytes: 2 });
    expect(big).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    // One round trip across the tunnel at least: the toxic was in the path.
    expect(smallMs).toBeGreaterThanOrEqual(100);
    await expectNoStreams();
  });

  it('delivers a large response intact over a slow link, and small requests beside it', async () => {
    // The upstream's responses cross toxiproxy's upstream direction (client → server).
    await proxy.addToxic('slow', { type: 'bandwidth', attributes: { rate: 1_000 } }, 'upstream');
    const started = performance.now();
    const [big, ...small] = await Promise.all([fetchThrough(srv, '/big'), ...Array.from({ length: 5 }, () => fetchThrough(srv, '/'))]);
    const ms = performance.now() - started;
    report(`bandwidth 1,000 KB/s: 2 MiB in ${ms.toFixed(0)} ms (${((BIG.length / 1024 / ms) * 1000).toFixed(0)} KB/s)`);
    expect(big).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    for (const r of small) expect(r).toMatchObject({ status: 200, complete: true });
    expect(ms).toBeGreaterThanOrEqual(1_500);
    await expectNoStreams();
  });

  it('fails only the request in flight when the connection is reset mid-stream, and reconnects within the backoff bound', async () => {
    await proxy.addToxic('slow', { type: 'bandwidth', attributes: { rate: 500 } }, 'upstream');
    let firstByte!: () => void;
    const bodyStarted = new Promise<void>((resolve) => (firstByte = resolve));
    const inFlight = fetchThrough(srv, '/big', firstByte);
    // Some of the body has crossed: the reset lands mid-stream.
    await bodyStarted;
    const disconnected = once(listener as Listener, 'reconnecting');
    const resetAt = performance.now();
    await proxy.addToxic('reset', { type: 'reset_peer', attributes: { timeout: 0 } }, 'upstream');
    await disconnected;
    await proxy.removeToxic('reset');
    await proxy.removeToxic('slow');
    const cut = await inFlight;
    // Cut, never passed off as complete with other bytes.
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    expect(cut.bytes).toBeLessThan(BIG.length);
    await once(listener as Listener, 'connected');
    const reconnectMs = performance.now() - resetAt;
    await waitForUpstreams(srv.server.upstreams, 'svc', 1);
    report(
      `reset mid-stream: in-flight ${cut.complete ? 'completed' : `cut after ${cut.bytes} bytes (${cut.error})`}, reconnected in ${reconnectMs.toFixed(0)} ms`,
    );
    // The first retry comes after the minimum backoff; 1 s cap, plus a handshake.
    expect(reconnectMs).toBeLessThan(BACKOFF.maxReconnectBackoffMs + 2_000);
    const after = await Promise.all(Array.from({ length: 10 }, () => fetchThrough(srv, '/big')));
    for (const r of after) expect(r).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    await expectNoStreams();
  });

  it('finds a link frozen half-open by keepalive on both sides, answers 502 meanwhile, and recovers when it thaws', async () => {
    const frozenAt = performance.now();
    // Data stops both ways; both connections stay open.
    await proxy.addToxic('freeze-down', { type: 'timeout', attributes: { timeout: 0 } }, 'downstream');
    await proxy.addToxic('freeze-up', { type: 'timeout', attributes: { timeout: 0 } }, 'upstream');
    await waitForUpstreams(srv.server.upstreams, 'svc', 0, 10_000);
    const serverNoticedMs = performance.now() - frozenAt;
    await once(listener as Listener, 'reconnecting');
    const agentNoticedMs = performance.now() - frozenAt;
    // Nothing to route to now: a clear 502, not a hang.
    const during = await fetchThrough(srv, '/');
    expect(during.status).toBe(502);
    await proxy.removeToxic('freeze-down');
    await proxy.removeToxic('freeze-up');
    await waitForUpstreams(srv.server.upstreams, 'svc', 1, 10_000);
    const recoveredMs = performance.now() - frozenAt;
    report(
      `half-open: server dropped the upstream after ${serverNoticedMs.toFixed(0)} ms, the agent gave up after ${agentNoticedMs.toFixed(0)} ms ` +
        `(keepalive 0.5 s + 1 s), served again ${recoveredMs.toFixed(0)} ms after the freeze`,
    );
    // One interval and one timeout, plus a sweep of slack.
    expect(serverNoticedMs).toBeLessThan(KEEPALIVE.keepaliveIntervalMs + KEEPALIVE.keepaliveTimeoutMs + 1_500);
    expect(agentNoticedMs).toBeLessThan(KEEPALIVE.keepaliveIntervalMs + KEEPALIVE.keepaliveTimeoutMs + 1_500);
    expect(await fetchThrough(srv, '/big')).toMatchObject({ status: 200, complete: true, sha: BIG_SHA });
    await expectNoStreams();
  });

  it('routes away at once from an upstream that leaves gracefully over a slow close', async () => {
    const direct = await listen('svc', { url: srv.upstreamUrl, ...KEEPALIVE, ...BACKOFF });
    direct.on('connection', serve);
    await waitForUpstreams(srv.server.upstreams, 'svc', 2);
    await proxy.addToxic('slow-close', { type: 'slow_close', attributes: { delay: 3_000 } }, 'downstream');
    await proxy.addToxic('slow-close-up', { type: 'slow_close', attributes: { delay: 3_000 } }, 'upstream');
    const leaving = listener as Listener;
    const closed = leaving.close({ timeoutMs: 5_000 });
    // GoAway reaches the server long before the close does.
    await waitForUpstreams(srv.server.upstreams, 'svc', 1, 2_000);
    const results = await Promise.all(Array.from({ length: 20 }, () => fetchThrough(srv, '/')));
    for (const r of results) expect(r).toMatchObject({ status: 200, complete: true });
    await closed;
    listener = direct;
    await expectNoStreams();
  });
});

/**
 * What the status page and the inspector cost the process: `ts-node --transpile-only bench/pages.ts`.
 *
 * 1. Inspector: requests/s through server and agent to a local service, with the agent's
 *    inspector off and on, alternating (ABAB…) in one run, so the ratio is what this machine's
 *    noise leaves comparable. 1 KiB bodies both ways, 20 concurrent keep-alive clients.
 * 2. Status page: the same throughput with no page open and with a page's long poll parked, and
 *    the time one /status/overview answer takes to build at 100, 1,000 and 10,000 endpoints (with
 *    traffic figures for each), and what recording a request in the traffic window costs.
 * Everything runs in this process on loopback; the numbers are for ratios, not absolutes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent as PikoAgent } from '../dataplane/agent/agent';
import { buildOverview } from '../dataplane/admin/status-overview';
import type { StatusProvider } from '../dataplane/admin/status-provider';
import { loadAgentConfig } from '../dataplane/config/agent-config';
import { loadServerConfig } from '../dataplane/config/server-config';
import { EndpointTraffic } from '../dataplane/metrics/endpoint-traffic';
import { silentLogger } from '../dataplane/log/logger';
import { Server } from '../dataplane/server/server';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const CONCURRENCY = 20;
const BODY = Buffer.alloc(1024, 'x');

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Requests/s over SECONDS with CONCURRENCY keep-alive loops. */
async function load(url: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const deadline = Date.now() + SECONDS * 1000;
  let done = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'POST', agent, headers: { 'x-piko-endpoint': 'bench', 'content-length': BODY.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve());
        },
      );
      req.on('error', reject);
      req.end(BODY);
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        await one();
        done++;
      }
    }),
  );
  agent.destroy();
  return done / SECONDS;
}

async function main(): Promise<void> {
  const service = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(BODY));
  });
  const servicePort = await listen(service);
  const server = await Server.start(
    loadServerConfig({
      flags: { 'proxy.bind_addr': '127.0.0.1:0', 'upstream.bind_addr': '127.0.0.1:0', 'admin.bind_addr': '127.0.0.1:0' },
    }),
    { logger: silentLogger() },
  );
  const proxyUrl = `http://127.0.0.1:${server.addresses.proxy.port}/`;
  const upstreamUrl = `http://127.0.0.1:${server.addresses.upstream.port}`;
  const startAgent = async (inspect: boolean): Promise<PikoAgent> => {
    const agent = new PikoAgent(
      loadAgentConfig({
        flags: { 'connect.url': upstreamUrl, ...(inspect ? { 'inspect.bind_addr': '127.0.0.1:0' } : {}) },
        listener: { protocol: 'http', endpointId: 'bench', addr: String(servicePort) },
      }),
      { logger: silentLogger() },
    );
    await agent.start();
    return agent;
  };

  const rates: Record<string, number[]> = { off: [], on: [] };
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of rep % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const agent = await startAgent(mode === 'on');
      await load(proxyUrl); // warm-up
      rates[mode]!.push(await load(proxyUrl));
      await agent.shutdown(100);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`inspector off: ${median(rates['off']!).toFixed(0)} req/s (runs ${rates['off']!.map((r) => r.toFixed(0)).join(', ')})`);
  console.log(`inspector on:  ${median(rates['on']!).toFixed(0)} req/s (runs ${rates['on']!.map((r) => r.toFixed(0)).join(', ')})`);
  console.log(`inspector on / off: ${(median(rates['on']!) / median(rates['off']!)).toFixed(2)}x`);

  // The status page: nobody watching vs a long poll parked (woken at each endpoint change).
  const agent = await startAgent(false);
  const watched: Record<string, number[]> = { nobody: [], page: [] };
  const adminUrl = `http://127.0.0.1:${server.addresses.admin.port}`;
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of rep % 2 === 0 ? (['nobody', 'page'] as const) : (['page', 'nobody'] as const)) {
      let stop = false;
      const watcher =
        mode === 'page'
          ? (async () => {
              let version: number | undefined;
              while (!stop) {
                const res = await fetch(`${adminUrl}/status/overview${version === undefined ? '' : `?since=${version}`}`);
                version = ((await res.json()) as { version: number }).version;
              }
            })()
          : Promise.resolve();
      await load(proxyUrl);
      watched[mode]!.push(await load(proxyUrl));
      stop = true;
      // Wake the parked poll so the watcher ends.
      if (mode === 'page') {
        const extra = await startAgent(false);
        await extra.shutdown(100);
      }
      await watcher;
    }
  }
  console.log(
    `status page: nobody ${median(watched['nobody']!).toFixed(0)} req/s, page open ${median(watched['page']!).toFixed(0)} req/s, ratio ${(median(watched['page']!) / median(watched['nobody']!)).toFixed(2)}x`,
  );
  await agent.shutdown(100);

  // The traffic window records every proxied request, watched or not: its cost per request.
  {
    const traffic = new EndpointTraffic();
    const ids = Array.from({ length: 1_000 }, (_, i) => `endpoint-${i}`);
    const n = 2_000_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) traffic.record(ids[i % ids.length]!, i % 50 === 0 ? 502 : 200, (i % 97) * 0.7);
    const ns = ((performance.now() - t0) * 1e6) / n;
    console.log(`traffic window: ${ns.toFixed(0)} ns per request recorded, over 1,000 endpoints`);
  }

  for (const endpoints of [100, 1_000, 10_000]) {
    const table: Record<string, number> = {};
    // Every endpoint busy, as far as the window tracks them.
    const traffic = new EndpointTraffic();
    for (let i = 0; i < endpoints; i++) {
      table[`endpoint-${i}`] = 1 + (i % 3);
      for (let r = 0; r < 20; r++) traffic.record(`endpoint-${i}`, 200, r);
    }
    const nodes = ['piko-0', 'piko-1', 'piko-2'];
    const status: StatusProvider = {
      localEndpoints: () => table,
      traffic: (id) => traffic.summary(id),
      nodes: () => nodes.map((id) => ({ id, status: 'active', proxyAddr: '', adminAddr: '', endpoints, upstreams: endpoints * 2 })),
      node: (id) => ({ id: id === 'local' ? 'piko-0' : id, status: 'active', proxyAddr: '', adminAddr: '', endpoints: table }),
      localNodeId: () => 'piko-0',
      tunnels: () => endpoints,
      limitsTripped: () => Promise.resolve({}),
      onChange: () => () => undefined,
    };
    const runs = 20;
    let bytes = 0;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) bytes = JSON.stringify(await buildOverview(status, '', 1)).length;
    console.log(
      `overview of ${endpoints} endpoints on 3 nodes: ${((performance.now() - t0) / runs).toFixed(2)} ms to build, ${(bytes / 1024).toFixed(1)} KiB`,
    );
  }
  await server.shutdown(100);
  service.close();
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

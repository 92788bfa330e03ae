import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createAdminHandler, type AdminDeps } from '../../../dataplane/admin/admin-server';
import type { NodeDetail, StatusProvider } from '../../../dataplane/admin/status-provider';
import { silentLogger } from '../../../dataplane/log/logger';
import type { TrafficSummary } from '../../../dataplane/metrics/endpoint-traffic';

/** Shared by the admin tests: a two-node status fixture and a real server. */

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface AdminUnderTest {
  port: number;
  ready: { value: boolean };
  registry: Registry;
  close(): Promise<void>;
}

export const LOCAL: NodeDetail = {
  id: 'node-a',
  status: 'active',
  proxyAddr: '10.0.0.1:8000',
  adminAddr: '10.0.0.1:8002',
  endpoints: { 'my-endpoint': 2, other: 1 },
};

export const REMOTE: NodeDetail = {
  id: 'node-b',
  status: 'unreachable',
  proxyAddr: '10.0.0.2:8000',
  adminAddr: '10.0.0.2:8002',
  endpoints: {},
};

export const MY_ENDPOINT_TRAFFIC: TrafficSummary = { rps: 12.5, error_rate: 0.02, p50_ms: 3.1, p95_ms: 20, p99_ms: 41, requests: 375 };

export const status: StatusProvider = {
  localEndpoints: () => ({ 'my-endpoint': 2, other: 1 }),
  traffic: (id) => (id === 'my-endpoint' ? MY_ENDPOINT_TRAFFIC : undefined),
  nodes: () => [
    {
      id: 'node-a',
      status: 'active',
      proxyAddr: '10.0.0.1:8000',
      adminAddr: '10.0.0.1:8002',
      endpoints: 2,
      upstreams: 3,
      leaseRenewedAtMs: Date.now() - 4_000,
    },
    { id: 'node-b', status: 'unreachable', proxyAddr: '10.0.0.2:8000', adminAddr: '10.0.0.2:8002', endpoints: 0, upstreams: 0 },
  ],
  node: (id) => (id === 'local' || id === LOCAL.id ? LOCAL : id === REMOTE.id ? REMOTE : undefined),
  localNodeId: () => LOCAL.id,
  tunnels: () => 3,
  limitsTripped: () => Promise.resolve({ 'proxy.max_connections': 0, 'upstream.max_connections': 2 }),
  onChange: () => () => undefined,
};

export async function startAdmin(overrides: Partial<AdminDeps> = {}): Promise<AdminUnderTest> {
  const registry = new Registry();
  const ready = { value: false };
  const server = http.createServer(
    createAdminHandler({
      registry,
      isReady: () => ready.value,
      status,
      logger: silentLogger(),
      ...overrides,
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    ready,
    registry,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export function request(port: number, path: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

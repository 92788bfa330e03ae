import type { LeafValue } from '../../dataplane/config/schema';
import { loadServerConfig } from '../../dataplane/config/server-config';
import { silentLogger, createLogger, type Logger } from '../../dataplane/log/logger';
import { Server, type ServerDeps } from '../../dataplane/server/server';

export interface TestServer {
  server: Server;
  proxyUrl: string;
  upstreamUrl: string;
  adminUrl: string;
  stop(gracePeriodMs?: number): Promise<void>;
}

const running = new Set<Server>();

/** Logs to stderr when PIKO_TEST_LOG is set (e.g. PIKO_TEST_LOG=debug), silent otherwise. */
export function testLogger(): Logger {
  const level = process.env.PIKO_TEST_LOG;
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error'
    ? createLogger({ level, format: 'console' })
    : silentLogger();
}

/**
 * Starts a real server on 127.0.0.1 with ephemeral ports. `flags` are
 * YAML-path keyed values as `piko server` flags would give them; a YAML file
 * (`configPath`) carries what flags cannot, such as lists.
 */
export async function startTestServer(
  flags: Record<string, LeafValue> = {},
  deps: Partial<ServerDeps> = {},
  options: { configPath?: string } = {},
): Promise<TestServer> {
  const config = loadServerConfig({
    ...options,
    flags: {
      'proxy.bind_addr': '127.0.0.1:0',
      'upstream.bind_addr': '127.0.0.1:0',
      'admin.bind_addr': '127.0.0.1:0',
      ...flags,
    },
  });
  const server = await Server.start(config, { logger: testLogger(), ...deps });
  const addrs = server.addresses;
  running.add(server);
  const scheme = config.proxy.tls.cert ? 'https' : 'http';
  const upScheme = config.upstream.tls.cert ? 'https' : 'http';
  const adminScheme = config.admin.tls.cert ? 'https' : 'http';
  return {
    server,
    proxyUrl: `${scheme}://127.0.0.1:${addrs.proxy.port}`,
    upstreamUrl: `${upScheme}://127.0.0.1:${addrs.upstream.port}`,
    adminUrl: `${adminScheme}://127.0.0.1:${addrs.admin.port}`,
    stop: async (gracePeriodMs = 1000) => {
      running.delete(server);
      await server.shutdown(gracePeriodMs);
    },
  };
}

export async function stopAllTestServers(): Promise<void> {
  const servers = [...running];
  running.clear();
  await Promise.all(servers.map((s) => s.shutdown(100)));
}

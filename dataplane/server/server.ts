import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminHandler } from '../admin/admin-server';
import type { StatusProvider } from '../admin/status-provider';
import { authEnabled } from '../auth/auth-config';
import { createTenantVerifiers } from '../auth/tenant-verifiers';
import { createVerifier, type TokenVerifier } from '../auth/verifier';
import type { ServerConfig } from '../config/server-config';
import { createAccessLogger } from '../log/access-log';
import type { Logger } from '../log/logger';
import { createLimitMetrics, type LimitName, type LimitTripped } from '../metrics/limit-metrics';
import { createProxyMetrics } from '../metrics/proxy-metrics';
import { createMetricsRegistry } from '../metrics/registry';
import { createUpstreamMetrics } from '../metrics/upstream-metrics';
import { advertisedAddress, listen } from '../net/listen';
import { clientTlsOptions, createHttpServer } from '../net/tls';
import { ForwardAuth } from '../proxy/remote/forward-auth';
import { createRemoteDialer, type RemoteDialer } from '../proxy/remote/remote-dialer';
import { answerClientError } from '../http/json-error';
import { httpServerOptions } from '../http/server-options';
import { ProxyServer } from '../proxy/proxy-server';
import { Router, type Route } from '../proxy/router';
import type { ClusterRegistry } from '../registry/cluster-registry';
import { LocalUpstreams } from '../registry/local-upstreams';
import { MemoryRegistry } from '../registry/memory-registry';
import { UpstreamServer } from '../upstream/upstream-server';
import type { Registry } from 'prom-client';
import { parseListenAddr } from '../net/host-port';

export interface ServerDeps {
  logger: Logger;
  /** Builds the cluster registry once the listeners' addresses are known; memory by default. */
  createRegistry?: (addrs: { nodeId: string; proxyAddr: string; adminAddr: string }) => ClusterRegistry;
}

export interface ServerAddresses {
  proxy: AddressInfo;
  upstream: AddressInfo;
  admin: AddressInfo;
}

/**
 * One data-plane node: the proxy, upstream and admin listeners around a
 * local upstream table and a cluster registry.
 */
export class Server {
  readonly metricsRegistry: Registry;
  readonly upstreams = new LocalUpstreams();
  private readonly proxyHttp: http.Server;
  private readonly upstreamHttp: http.Server;
  private readonly adminHttp: http.Server;
  private readonly proxy: ProxyServer;
  private readonly upstreamServer: UpstreamServer;
  private readonly verifiers: { close(): void }[] = [];
  private registry: ClusterRegistry | undefined;
  private remoteDialer: RemoteDialer | undefined;
  private ready = false;
  private bound: ServerAddresses | undefined;
  private shuttingDown: Promise<void> | undefined;

  constructor(
    private readonly config: ServerConfig,
    private readonly deps: ServerDeps,
  ) {
    const { logger } = deps;
    this.metricsRegistry = createMetricsRegistry();
    const upstreamMetrics = createUpstreamMetrics(this.metricsRegistry);
    const onLimit = createLimitMetrics(this.metricsRegistry);
    this.upstreams.on('change', (endpointId, count) => {
      upstreamMetrics.registeredEndpoints.set(this.upstreams.endpointCount);
      this.registry?.setLocalEndpoint(endpointId, count);
    });

    const proxyVerifier = this.verifier(config.proxy.auth, 'proxy.auth');
    const adminVerifier = this.verifier(config.admin.auth, 'admin.auth');
    const upstreamAuth = createTenantVerifiers(config.upstream.auth, config.upstream.tenants);
    if (upstreamAuth) this.verifiers.push(upstreamAuth);

    // Requests cross to other nodes only in a cluster, and only signed.
    const forwardAuth = config.cluster.secret ? new ForwardAuth(config.cluster.secret) : undefined;
    let remote: ((endpointId: string, dedicated: boolean) => Promise<Route | undefined>) | undefined;
    if (forwardAuth) {
      const tlsClient = config.proxy.tls.cert ? clientTlsOptions(config.proxy.tls.client, 'proxy.tls.client') : undefined;
      this.remoteDialer = createRemoteDialer({
        registry: { lookup: (id) => this.registry?.lookup(id) ?? [] },
        nodeId: config.cluster.nodeId,
        auth: forwardAuth,
        ...(tlsClient ? { tls: tlsClient } : {}),
      });
      remote = this.remoteDialer.dial;
    }
    const router = new Router(this.upstreams, {
      holdTimeoutMs: config.proxy.upstreamWaitMs,
      ...(remote ? { remote } : {}),
      onRemoteChange: (listener) => this.registry?.onChange(listener) ?? (() => undefined),
    });
    this.proxy = new ProxyServer({
      router,
      ...(proxyVerifier ? { verifier: proxyVerifier } : {}),
      timeoutMs: config.proxy.timeoutMs,
      writeTimeoutMs: config.proxy.http.writeTimeoutMs,
      maxTcpMessageBytes: config.proxy.tcp.maxMessageBytes,
      onLimit,
      proto: config.proxy.tls.cert ? 'https' : 'http',
      logger: logger.child({ subsystem: 'proxy' }),
      ...(config.proxy.accessLog.disable
        ? {}
        : { accessLog: createAccessLogger(logger.child({ subsystem: 'proxy.access' }), config.proxy.accessLog) }),
      metrics: createProxyMetrics(this.metricsRegistry, { prefix: 'piko_proxy', endpointLabel: false }),
      upstreamMetrics,
      ...(forwardAuth ? { verifyForwarded: (req: http.IncomingMessage) => forwardAuth.verify(req.headers) !== undefined } : {}),
    });
    this.upstreamServer = new UpstreamServer({
      upstreams: this.upstreams,
      ...(upstreamAuth ? { auth: upstreamAuth } : {}),
      disconnectOnExpiry: !(config.upstream.auth.disableDisconnectOnExpiry ?? false),
      logger: logger.child({ subsystem: 'upstream' }),
      metrics: upstreamMetrics,
      maxMessageBytes: config.upstream.maxMessageBytes,
      session: config.upstream.session,
      onLimit,
    });

    this.proxyHttp = createHttpServer(
      config.proxy.tls,
      (req, res) => this.proxy.handleRequest(req, res),
      httpServerOptions(config.proxy.http),
      'proxy.tls',
    );
    this.proxyHttp.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => this.proxy.handleUpgrade(req, socket, head));
    this.proxyHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => this.proxy.handleClientError(err, socket));
    capConnections(this.proxyHttp, config.proxy.maxConnections, 'proxy.max_connections', onLimit);

    this.upstreamHttp = createHttpServer(
      config.upstream.tls,
      (req, res) => this.upstreamServer.handleRequest(req, res),
      httpServerOptions({ readTimeoutMs: 10_000, readHeaderTimeoutMs: 10_000, idleTimeoutMs: 5_000, maxHeaderBytes: 64 * 1024 }),
      'upstream.tls',
    );
    this.upstreamHttp.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) =>
      this.upstreamServer.handleUpgrade(req, socket, head),
    );
    this.upstreamHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket));
    capConnections(this.upstreamHttp, config.upstream.maxConnections, 'upstream.max_connections', onLimit);

    this.adminHttp = createHttpServer(
      config.admin.tls,
      createAdminHandler({
        registry: this.metricsRegistry,
        isReady: () => this.ready,
        ...(adminVerifier ? { verifier: adminVerifier } : {}),
        status: this.statusProvider(),
        logger: logger.child({ subsystem: 'admin' }),
      }),
      httpServerOptions({ readTimeoutMs: 30_000, readHeaderTimeoutMs: 10_000, idleTimeoutMs: 5_000, maxHeaderBytes: 64 * 1024 }),
      'admin.tls',
    );
    this.adminHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket));
    capConnections(this.adminHttp, config.admin.maxConnections, 'admin.max_connections', onLimit);
  }

  get nodeId(): string {
    return this.config.cluster.nodeId;
  }

  get addresses(): ServerAddresses {
    if (!this.bound) throw new Error('server not started');
    return this.bound;
  }

  get isReady(): boolean {
    return this.ready;
  }

  async start(): Promise<ServerAddresses> {
    const { config, deps } = this;
    const admin = await listen(this.adminHttp, parseListenAddr(config.admin.bindAddr, 'admin.bind-addr'), 'admin.bind-addr');
    const proxy = await listen(this.proxyHttp, parseListenAddr(config.proxy.bindAddr, 'proxy.bind-addr'), 'proxy.bind-addr');
    const upstream = await listen(this.upstreamHttp, parseListenAddr(config.upstream.bindAddr, 'upstream.bind-addr'), 'upstream.bind-addr');
    this.bound = { proxy, upstream, admin };
    const addrs = {
      nodeId: config.cluster.nodeId,
      proxyAddr: advertisedAddress(proxy, config.proxy.advertiseAddr || undefined),
      adminAddr: advertisedAddress(admin, config.admin.advertiseAddr || undefined),
    };
    this.registry = deps.createRegistry ? deps.createRegistry(addrs) : new MemoryRegistry(addrs.nodeId, addrs);
    await this.registry.start();
    for (const [endpointId, count] of Object.entries(this.upstreams.snapshot())) {
      this.registry.setLocalEndpoint(endpointId, count);
    }
    this.ready = true;
    deps.logger.info('server started', {
      nodeId: config.cluster.nodeId,
      proxyAddr: `${proxy.address}:${proxy.port}`,
      upstreamAddr: `${upstream.address}:${upstream.port}`,
      adminAddr: `${admin.address}:${admin.port}`,
    });
    return this.bound;
  }

  /**
   * Shuts down in an order that loses no request:
   * 1. not ready, so load balancers stop sending new work here;
   * 2. no new upstream tunnels, and GoAway on those we have, so our agents
   *    connect to another node at once while requests in flight finish here;
   * 3. our endpoints leave the cluster registry, so other nodes stop
   *    forwarding to us before our tunnels close;
   * 4. the proxy stops accepting and drains in-flight requests within the
   *    grace period;
   * 5. tunnels and remaining connections close;
   * 6. the admin port last, so probes and metrics see the whole shutdown.
   */
  shutdown(gracePeriodMs = this.config.gracePeriodMs): Promise<void> {
    this.shuttingDown ??= this.doShutdown(gracePeriodMs);
    return this.shuttingDown;
  }

  private async doShutdown(gracePeriodMs: number): Promise<void> {
    const log = this.deps.logger;
    const deadline = Date.now() + gracePeriodMs;
    log.info('shutting down', { gracePeriodMs });
    this.ready = false;

    this.upstreamServer.stopAccepting();
    this.upstreamHttp.close();
    this.upstreamServer.goAwayAll();

    await this.registry?.stop().catch((err: unknown) => log.warn('registry stop failed', { error: String(err) }));

    this.proxyHttp.close();
    this.proxyHttp.closeIdleConnections();
    const drained = await this.proxy.drain(Math.max(0, deadline - Date.now()));
    if (!drained) log.warn('grace period over with requests in flight', { inFlight: this.proxy.activeRequests });
    this.proxy.closeUpgraded();
    this.proxyHttp.closeAllConnections();

    this.upstreamServer.closeAll();
    this.upstreamHttp.closeAllConnections();
    this.remoteDialer?.close();

    for (const v of this.verifiers) v.close();
    this.adminHttp.close();
    this.adminHttp.closeAllConnections();
    log.info('shutdown complete');
  }

  private verifier(cfg: ServerConfig['proxy']['auth'], field: string): TokenVerifier | undefined {
    if (!authEnabled(cfg)) return undefined;
    const verifier = createVerifier(cfg, { field });
    this.verifiers.push(verifier);
    return verifier;
  }

  private statusProvider(): StatusProvider {
    const toStatus = (n: ReturnType<ClusterRegistry['nodes']>[number]) => ({
      id: n.id,
      status: n.status,
      proxyAddr: n.proxyAddr,
      adminAddr: n.adminAddr,
      endpoints: Object.keys(n.endpoints).length,
      upstreams: Object.values(n.endpoints).reduce((a, b) => a + b, 0),
    });
    return {
      localEndpoints: () => this.upstreams.snapshot(),
      nodes: () => (this.registry?.nodes() ?? []).map(toStatus),
      node: (id) => {
        const want = id === 'local' ? this.config.cluster.nodeId : id;
        const n = this.registry?.nodes().find((x) => x.id === want);
        if (!n) return undefined;
        const endpoints = n.id === this.config.cluster.nodeId ? this.upstreams.snapshot() : { ...n.endpoints };
        return { id: n.id, status: n.status, proxyAddr: n.proxyAddr, adminAddr: n.adminAddr, endpoints };
      },
    };
  }
}

/**
 * Caps a port's open connections (0 = none). Node closes each connection
 * over the cap as it is accepted, before a byte is read, as nginx does past
 * worker_connections: an answer would cost what the cap is there to save.
 */
function capConnections(server: http.Server, max: number, limit: LimitName, onLimit: LimitTripped): void {
  if (max <= 0) return;
  server.maxConnections = max;
  server.on('drop', () => onLimit(limit));
}

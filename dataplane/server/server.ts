import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminHandler } from '../admin/admin-server';
import type { StatusProvider } from '../admin/status-provider';
import { authEnabled } from '../auth/auth-config';
import { createTenantVerifiers } from '../auth/tenant-verifiers';
import { createServiceAccountVerifier, type ServiceAccountAuthConfig } from '../auth/service-account-verifier';
import { createVerifier, type TokenVerifier } from '../auth/verifier';
import { ENDPOINT_PLACEHOLDER, type ServerConfig } from '../config/server-config';
import type { TlsConfig } from '../config/tls-config';
import { createAccessLogger } from '../log/access-log';
import type { Logger } from '../log/logger';
import { EndpointTraffic } from '../metrics/endpoint-traffic';
import { createLimitMetrics, type LimitName, type LimitTripped } from '../metrics/limit-metrics';
import { createProxyMetrics } from '../metrics/proxy-metrics';
import { createMetricsRegistry } from '../metrics/registry';
import { createUpstreamMetrics } from '../metrics/upstream-metrics';
import { advertisedAddress, listen } from '../net/listen';
import https from 'node:https';
import { createHttpServer, serverTlsOptions } from '../net/tls';
import { TlsReloader } from '../net/tls-reload';
import { ForwardingTls } from '../proxy/remote/forwarding-tls';
import { ForwardAuth } from '../proxy/remote/forward-auth';
import { createRemoteDialer, type RemoteDialer } from '../proxy/remote/remote-dialer';
import { answerClientError } from '../http/json-error';
import { deferHandlers, type HttpHandlers } from '../http/deferred-handlers';
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
  /** Builds the cluster registry once the listeners are bound; memory by default. */
  createRegistry?: (node: RegistryContext) => ClusterRegistry;
  /** The apiserver that reviews ServiceAccount tokens; default KUBECONFIG, ~/.kube/config, in-cluster. */
  kubeconfigPath?: string;
  /** How often TLS files are checked for renewal (tests); 10 s by default. */
  tlsReloadIntervalMs?: number;
}

/** What a registry is built from: this node and the addresses other nodes reach it at. */
export interface RegistryContext {
  nodeId: string;
  proxyAddr: string;
  adminAddr: string;
  /** The node's metrics registry, where the registry's metrics go. */
  metricsRegistry: Registry;
}

export interface ServerAddresses {
  proxy: AddressInfo;
  upstream: AddressInfo;
  admin: AddressInfo;
}

type Port = 'proxy' | 'upstream' | 'admin';

/** The three ports, bound, waiting for their handlers. */
interface BoundPorts {
  servers: Record<Port, http.Server>;
  addresses: ServerAddresses;
  serve: Record<Port, (handlers: HttpHandlers) => void>;
}

/**
 * One data-plane node: the proxy, upstream and admin listeners around a
 * local upstream table and a cluster registry. Built by Server.start(),
 * which binds the ports first: the registry needs their addresses and
 * everything else needs the registry.
 */
export class Server {
  readonly metricsRegistry: Registry;
  readonly upstreams = new LocalUpstreams();
  readonly addresses: ServerAddresses;
  private readonly proxyHttp: http.Server;
  private readonly upstreamHttp: http.Server;
  private readonly adminHttp: http.Server;
  private readonly proxy: ProxyServer;
  private readonly upstreamServer: UpstreamServer;
  private readonly verifiers: { close(): void }[] = [];
  private readonly registry: ClusterRegistry;
  private readonly remoteDialer: RemoteDialer | undefined;
  private readonly tlsReloaders: { stop(): void }[] = [];
  private readonly traffic = new EndpointTraffic();
  private ready = false;
  private shuttingDown: Promise<void> | undefined;

  /**
   * Binds the ports, builds the node and its registry, serves, and resolves
   * once the registry has started (the node is then ready). A failure on
   * the way closes whatever was opened.
   */
  static async start(config: ServerConfig, deps: ServerDeps): Promise<Server> {
    const ports = await bindPorts(config);
    const metricsRegistry = createMetricsRegistry();
    const node = {
      nodeId: config.cluster.nodeId,
      proxyAddr: advertisedAddress(ports.addresses.proxy, config.proxy.advertiseAddr || undefined),
      adminAddr: advertisedAddress(ports.addresses.admin, config.admin.advertiseAddr || undefined),
    };
    let registry: ClusterRegistry;
    let server: Server;
    try {
      registry = deps.createRegistry ? deps.createRegistry({ ...node, metricsRegistry }) : new MemoryRegistry(node.nodeId, node);
      server = new Server(config, deps, ports, registry, metricsRegistry);
    } catch (err) {
      closePorts(ports.servers);
      throw err;
    }
    try {
      await registry.start();
    } catch (err) {
      await server.shutdown(0);
      throw err;
    }
    server.ready = true;
    const { proxy, upstream, admin } = ports.addresses;
    deps.logger.info('server started', {
      nodeId: config.cluster.nodeId,
      proxyAddr: `${proxy.address}:${proxy.port}`,
      upstreamAddr: `${upstream.address}:${upstream.port}`,
      adminAddr: `${admin.address}:${admin.port}`,
    });
    return server;
  }

  private constructor(
    private readonly config: ServerConfig,
    private readonly deps: ServerDeps,
    ports: BoundPorts,
    registry: ClusterRegistry,
    metricsRegistry: Registry,
  ) {
    const { logger } = deps;
    this.addresses = ports.addresses;
    this.registry = registry;
    this.metricsRegistry = metricsRegistry;
    this.proxyHttp = ports.servers.proxy;
    this.upstreamHttp = ports.servers.upstream;
    this.adminHttp = ports.servers.admin;
    const upstreamMetrics = createUpstreamMetrics(this.metricsRegistry);
    const onLimit = createLimitMetrics(this.metricsRegistry);
    this.upstreams.on('change', (endpointId, count) => {
      upstreamMetrics.registeredEndpoints.set(this.upstreams.endpointCount);
      registry.setLocalEndpoint(endpointId, count);
    });

    // Certificates renewed on disk (a Secret the kubelet updates) are served without a restart.
    const reloadEvery = deps.tlsReloadIntervalMs === undefined ? {} : { intervalMs: deps.tlsReloadIntervalMs };
    for (const port of ['proxy', 'upstream', 'admin'] as const) {
      const cfg = config[port].tls;
      const server = ports.servers[port];
      if (!(server instanceof https.Server)) continue;
      const field = `${port}.tls`;
      this.tlsReloaders.push(
        new TlsReloader({
          files: [cfg.cert, cfg.key, cfg.clientCas],
          // TLS is on for the port, so the options are defined.
          load: () => serverTlsOptions(cfg, field)!,
          apply: (o) => server.setSecureContext(o),
          what: field,
          logger,
          ...reloadEvery,
        }).start(),
      );
    }

    const proxyVerifier = this.verifier(config.proxy.auth, 'proxy.auth');
    const adminVerifier = this.verifier(config.admin.auth, 'admin.auth');
    const upstreamAuth = createTenantVerifiers(config.upstream.auth, config.upstream.tenants, {
      serviceAccounts: this.serviceAccountVerifier(config.upstream.serviceAccounts),
    });
    if (upstreamAuth) this.verifiers.push(upstreamAuth);

    // Requests cross to other nodes only in a cluster, and only signed.
    const forwardAuth = config.cluster.secret ? new ForwardAuth(config.cluster.secret) : undefined;
    let remote: ((endpointId: string, dedicated: boolean) => Promise<Route | undefined>) | undefined;
    if (forwardAuth) {
      const tlsClient = config.proxy.tls.cert ? new ForwardingTls(config.proxy.tls.client) : undefined;
      if (tlsClient !== undefined) {
        this.tlsReloaders.push(
          new TlsReloader({
            files: tlsClient.files,
            load: () => tlsClient.load(),
            apply: (o) => tlsClient.apply(o),
            what: 'proxy.tls.client',
            logger,
            ...reloadEvery,
          }).start(),
        );
      }
      this.remoteDialer = createRemoteDialer({
        registry,
        nodeId: config.cluster.nodeId,
        auth: forwardAuth,
        tls: tlsClient,
      });
      remote = this.remoteDialer.dial;
    }
    const router = new Router(this.upstreams, {
      holdTimeoutMs: config.proxy.upstreamWaitMs,
      remote,
      onRemoteChange: (listener) => registry.onChange(listener),
    });
    this.proxy = new ProxyServer({
      router,
      verifier: proxyVerifier,
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
      traffic: this.traffic,
      verifyForwarded: forwardAuth && ((req: http.IncomingMessage) => forwardAuth.verify(req.headers) !== undefined),
    });
    this.upstreamServer = new UpstreamServer({
      upstreams: this.upstreams,
      auth: upstreamAuth,
      disconnectOnExpiry: !(config.upstream.auth.disableDisconnectOnExpiry ?? false),
      logger: logger.child({ subsystem: 'upstream' }),
      metrics: upstreamMetrics,
      maxMessageBytes: config.upstream.maxMessageBytes,
      session: config.upstream.session,
      onLimit,
      endpointUrl: endpointUrlTemplate(config, ports.addresses.proxy, registry instanceof MemoryRegistry),
    });

    ports.serve.proxy({
      request: (req, res) => this.proxy.handleRequest(req, res),
      upgrade: (req, socket, head) => this.proxy.handleUpgrade(req, socket, head),
    });
    this.proxyHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => this.proxy.handleClientError(err, socket));
    capConnections(this.proxyHttp, config.proxy.maxConnections, 'proxy.max_connections', onLimit);

    ports.serve.upstream({
      request: (req, res) => this.upstreamServer.handleRequest(req, res),
      upgrade: (req, socket, head) => this.upstreamServer.handleUpgrade(req, socket, head),
    });
    this.upstreamHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket));
    capConnections(this.upstreamHttp, config.upstream.maxConnections, 'upstream.max_connections', onLimit);

    ports.serve.admin({
      request: createAdminHandler({
        registry: this.metricsRegistry,
        isReady: () => this.ready,
        verifier: adminVerifier,
        status: this.statusProvider(),
        logger: logger.child({ subsystem: 'admin' }),
      }),
    });
    this.adminHttp.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket));
    capConnections(this.adminHttp, config.admin.maxConnections, 'admin.max_connections', onLimit);
  }

  get nodeId(): string {
    return this.config.cluster.nodeId;
  }

  get isReady(): boolean {
    return this.ready;
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

    await this.registry.stop().catch((err: unknown) => log.warn('registry stop failed', { error: String(err) }));

    this.proxyHttp.close();
    this.proxyHttp.closeIdleConnections();
    const drained = await this.proxy.drain(Math.max(0, deadline - Date.now()));
    if (!drained) log.warn('grace period over with requests in flight', { inFlight: this.proxy.activeRequests });
    this.proxy.closeUpgraded();
    this.proxyHttp.closeAllConnections();

    this.upstreamServer.closeAll();
    this.upstreamHttp.closeAllConnections();
    this.remoteDialer?.close();
    for (const r of this.tlsReloaders) r.stop();

    for (const v of this.verifiers) v.close();
    this.adminHttp.close();
    this.adminHttp.closeAllConnections();
    log.info('shutdown complete');
  }

  /**
   * ServiceAccount tokens, judged by the apiserver of the kubeconfig (in a pod: its own). The
   * verifier owns its apiserver client; both go when the upstream verifiers close.
   */
  private serviceAccountVerifier(cfg: ServiceAccountAuthConfig): { audience: string; verifier: TokenVerifier } | undefined {
    if (cfg.rules.length === 0) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const reviews = (require('../auth/token-review') as typeof import('../auth/token-review')).openTokenReviewer(this.deps.kubeconfigPath);
    const verifier = createServiceAccountVerifier(cfg, { review: reviews.review });
    return {
      audience: cfg.audience,
      verifier: {
        verify: (token) => verifier.verify(token),
        close: () => {
          verifier.close();
          void reviews.close();
        },
      },
    };
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
      ...(n.leaseRenewedAtMs !== undefined ? { leaseRenewedAtMs: n.leaseRenewedAtMs } : {}),
    });
    return {
      localNodeId: () => this.config.cluster.nodeId,
      tunnels: () => this.upstreamServer.sessionCount,
      limitsTripped: async () => {
        const metric = this.metricsRegistry.getSingleMetric('piko_limits_tripped_total');
        const out: Record<string, number> = {};
        for (const v of metric === undefined ? [] : (await metric.get()).values) out[String(v.labels['limit'])] = v.value;
        return out;
      },
      onChange: (listener) => {
        const unsubscribe = this.registry.onChange(listener);
        this.upstreams.on('change', listener);
        return () => {
          unsubscribe();
          this.upstreams.off('change', listener);
        };
      },
      localEndpoints: () => this.upstreams.snapshot(),
      traffic: (endpointId) => this.traffic.summary(endpointId),
      nodes: () => this.registry.nodes().map(toStatus),
      node: (id) => {
        const want = id === 'local' ? this.config.cluster.nodeId : id;
        const n = this.registry.nodes().find((x) => x.id === want);
        if (!n) return undefined;
        const endpoints = n.id === this.config.cluster.nodeId ? this.upstreams.snapshot() : { ...n.endpoints };
        return { id: n.id, status: n.status, proxyAddr: n.proxyAddr, adminAddr: n.adminAddr, endpoints };
      },
    };
  }
}

/**
 * proxy.public_url, or on a single node the proxy port under `<endpoint>.localhost`, which
 * browsers and curl resolve to loopback; in a cluster without it nothing, as no pod knows what
 * load balancer or DNS name stands in front of it.
 */
function endpointUrlTemplate(
  config: ServerConfig,
  proxy: AddressInfo,
  single: boolean,
): ((endpointId: string) => string | undefined) | undefined {
  const template =
    config.proxy.publicUrl ||
    (single ? `${config.proxy.tls.cert ? 'https' : 'http'}://${ENDPOINT_PLACEHOLDER}.localhost:${proxy.port}` : '');
  if (template === '') return undefined;
  // An ID with a dot or underscore cannot be a host's first label: no URL reaches it by Host.
  const inHost = new URL(template.replaceAll(ENDPOINT_PLACEHOLDER, 'x-endpoint-x')).hostname.includes('x-endpoint-x');
  return (endpointId) => (inHost && !DNS_LABEL.test(endpointId) ? undefined : template.replaceAll(ENDPOINT_PLACEHOLDER, endpointId));
}

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

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

const PORT_OPTIONS: Record<Exclude<Port, 'proxy'>, Parameters<typeof httpServerOptions>[0]> = {
  upstream: { readTimeoutMs: 10_000, readHeaderTimeoutMs: 10_000, idleTimeoutMs: 5_000, maxHeaderBytes: 64 * 1024 },
  admin: { readTimeoutMs: 30_000, readHeaderTimeoutMs: 10_000, idleTimeoutMs: 5_000, maxHeaderBytes: 64 * 1024 },
};

/** Binds admin, proxy and upstream, in that order; closes those bound when one fails. */
async function bindPorts(config: ServerConfig): Promise<BoundPorts> {
  const bound: Partial<Record<Port, http.Server>> = {};
  const bind = async (port: Port, tls: TlsConfig, options: http.ServerOptions, bindAddr: string, upgrades: boolean) => {
    const server = createHttpServer(tls, undefined, options, `${port}.tls`);
    const serve = deferHandlers(server, { upgrades });
    bound[port] = server;
    const address = await listen(server, parseListenAddr(bindAddr, `${port}.bind-addr`), `${port}.bind-addr`);
    return { server, serve, address };
  };
  try {
    const admin = await bind('admin', config.admin.tls, httpServerOptions(PORT_OPTIONS.admin), config.admin.bindAddr, false);
    const proxy = await bind('proxy', config.proxy.tls, httpServerOptions(config.proxy.http), config.proxy.bindAddr, true);
    const upstream = await bind('upstream', config.upstream.tls, httpServerOptions(PORT_OPTIONS.upstream), config.upstream.bindAddr, true);
    return {
      servers: { proxy: proxy.server, upstream: upstream.server, admin: admin.server },
      serve: { proxy: proxy.serve, upstream: upstream.serve, admin: admin.serve },
      addresses: { proxy: proxy.address, upstream: upstream.address, admin: admin.address },
    };
  } catch (err) {
    closePorts(bound);
    throw err;
  }
}

function closePorts(servers: Partial<Record<Port, http.Server>>): void {
  for (const s of Object.values(servers)) {
    s.close();
    s.closeAllConnections();
  }
}
